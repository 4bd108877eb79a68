"""The original and oracle models an unlearning run starts from and compares with.

Each is loaded from a user's checkpoint or trained with a :class:`TrainingRecipe` and cached by
a hash of (data, split, model, initial weights, recipe), so a second run reuses it.
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import nn

from unlearn_pl.references.cache import cache_lock, default_cache_dir
from unlearn_pl.references.checkpoints import (
    check_finite,
    load_file,
    load_state,
    load_weights,
)
from unlearn_pl.references.recipe import TrainingRecipe
from unlearn_pl.references.training import ReferenceData, train_classifier
from unlearn_pl.utils.describe import content_hash, fingerprint
from unlearn_pl.utils.io import atomic_write

if TYPE_CHECKING:
    from unlearn_pl.protocols import SplitName, UnlearningData

#: Which data each reference model is trained on.
REFERENCE_DATA: dict[str, SplitName] = {"original": "train", "oracle": "retain"}

#: Revision of the reference-training procedure, part of every cache key. Bump it whenever a code
#: change alters what training produces for the same inputs (e.g. loader order, dropping a
#: last incomplete batch), so caches made by older code are retrained instead of reused.
TRAINING_REVISION = 3


class ReferenceModels:
    """Provides the *original* model (trained on retain ∪ forget) and the *oracle* (retrained
    on retain only, same recipe and initial weights).

    Args:
        recipe: how to train them when no checkpoint is given.
        original: checkpoint of the original model; ``None`` trains it (or reuses the cache).
        oracle: checkpoint of the oracle, ``True`` to train it (or reuse the cache), ``False``
            for none (no oracle row or gaps in the results).
        cache_dir: where trained models are cached (default :func:`default_cache_dir`).
        progress_bar: show Lightning's progress bar while training them (off for banks of
            shadow models, where it would print once per model).
    """

    def __init__(
        self,
        recipe: TrainingRecipe | None = None,
        original: str | None = None,
        oracle: bool | str = True,
        cache_dir: str | None = None,
        progress_bar: bool = True,
    ) -> None:
        self.recipe = recipe or TrainingRecipe()
        self.progress_bar = progress_bar
        self.original = original
        self.oracle = oracle
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()
        #: Each trained reference model's training curve (:attr:`~unlearn_pl.references.recipe.ClassifierModule.history`),
        #: from this run's training or its cache entry; absent for a model loaded from a checkpoint,
        #: trained on several devices, or cached before curves were recorded.
        self.histories: dict[str, dict[str, list[float]]] = {}

    def names(self) -> list[str]:
        """The reference models this configuration provides."""
        return ["original"] + (["oracle"] if self.oracle is not False else [])

    def cache_key(self, initial: nn.Module, datamodule: UnlearningData, which: str) -> str:
        """Hash of everything that determines a trained reference model (the recipe's
        :meth:`~TrainingRecipe.weight_settings`, not where or how fast it trains)."""
        return content_hash(
            {
                "which": which,
                "data": datamodule.fingerprint(REFERENCE_DATA[which]),
                "architecture": fingerprint(initial),
                "init": content_hash(initial),
                "recipe": self.recipe.weight_settings(),
                "revision": TRAINING_REVISION,
            }
        )

    def cache_path(self, initial: nn.Module, datamodule: UnlearningData, which: str) -> Path:
        return self.cache_dir / f"{which}-{self.cache_key(initial, datamodule, which)}.pt"

    def _provide(
        self, which: str, source: str | bool | None, initial: nn.Module, datamodule: UnlearningData
    ) -> nn.Module:
        network = copy.deepcopy(initial)
        if isinstance(source, (str, os.PathLike)):
            rank_zero_info(f"Loaded the {which} model from {os.fspath(source)}")
            return load_weights(network, source).eval()
        path = self.cache_path(initial, datamodule, which)
        # Concurrent runs (a study's workers) that need the same model: the first trains and
        # writes it while the others wait on the lock, then load it from the cache.
        with cache_lock(path):
            return self._load_or_train(which, network, path, datamodule)

    def _load_or_train(self, which: str, network: nn.Module, path: Path, datamodule: UnlearningData) -> nn.Module:
        """The sound cache entry at ``path`` if there is one, else ``network`` trained (and cached if possible)."""
        cached = self._load_cached(network, path, which)
        if cached is not None:
            return cached
        rank_zero_info(f"Training the {which} model on {REFERENCE_DATA[which]} ({self.recipe.epochs} epochs)")
        data = ReferenceData(datamodule, REFERENCE_DATA[which], self.recipe)
        history: dict[str, list[float]] = {}
        train_classifier(network, data, self.recipe, progress_bar=self.progress_bar, history=history)
        state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
        # Never cache (or use) a diverged model: the next run would reuse it without a word.
        check_finite(
            state,
            f"the {which} model trained on {REFERENCE_DATA[which]} (recipe lr={self.recipe.lr}, "
            f"{self.recipe.epochs} epochs)",
            "a learning rate too high for this network (lower references.recipe.lr), or NaN/infinite values in the data",
        )
        try:
            entry = {"state_dict": state, "key": path.stem, "history": history}
            atomic_write(path, lambda tmp: torch.save(entry, tmp))
        except OSError as e:  # an unwritable cache must not lose the model just trained
            rank_zero_warn(
                f"Could not cache the {which} model in {str(self.cache_dir)!r} ({e}); continuing without caching it"
            )
        if history:
            self.histories[which] = history
        return network.eval()

    def _load_cached(self, network: nn.Module, path: Path, which: str) -> nn.Module | None:
        """The cached model at ``path`` if it is a sound entry for this key, else ``None`` (retrain).

        An entry must be a file, name its own key (an entry copied onto another key's name is
        another model) and hold finite weights that fit ``network``.
        """
        if not path.exists():
            return None
        try:
            if not path.is_file():
                raise ValueError("it is not a file")
            obj = load_file(path, "cache entry")
            key = obj.get("key") if isinstance(obj, dict) else None
            if key != path.stem:
                raise ValueError(f"it was saved under key {key!r}, not {path.stem!r}")
            load_state(network, obj, path)
        except ValueError as e:  # an unusable cache entry is retrained, never trusted
            rank_zero_warn(f"Ignoring unusable cache entry {str(path)!r} for the {which} model: {e}")
            return None
        if obj.get("history"):
            self.histories[which] = obj["history"]
        rank_zero_info(f"Reusing the cached {which} model: {path}")
        return network.eval()

    def prepare(self, initial: nn.Module, datamodule: UnlearningData) -> dict[str, nn.Module]:
        """Return ``{"original": ..., "oracle": ...}`` (oracle only if configured), each a new
        module built from ``initial``'s architecture and initial weights."""
        datamodule.setup("fit")
        check_network_fits(initial, datamodule)  # before training references on data the network cannot fit
        out = {"original": self._provide("original", self.original, initial, datamodule)}
        if self.original is not None and self.oracle is True:
            r = self.recipe
            rank_zero_info(
                f"The oracle is retrained with references.recipe ({r.epochs} epochs, lr {r.lr}, batch size "
                f"{r.batch_size}), not with whatever trained {self.original}: make the recipe match it, "
                "or pass the oracle's weights as references.oracle"
            )
        if self.oracle is not False:
            out["oracle"] = self._provide("oracle", self.oracle, initial, datamodule)
        return out


@torch.no_grad()
def check_network_fits(network: nn.Module, datamodule: UnlearningData) -> None:
    """Raise ``ValueError`` unless ``network`` takes the data's inputs and has one output per class.

    Without this check a network with too few outputs fails deep inside the loss
    (``IndexError: Target 8 is out of bounds``) and one with too many trains silently. One
    example goes through the network in eval mode, so nothing (BatchNorm statistics, RNG
    streams) changes.
    """
    _, x, _ = datamodule.split_dataset("train")[0]
    was_training = network.training
    network.eval()
    try:
        logits = network(x.unsqueeze(0))
    except RuntimeError as e:
        takes = getattr(network, "in_channels", None)
        channels = f" (the network takes in_channels={takes}, the data has {x.shape[0]} channels)" if takes else ""
        raise ValueError(
            f"the network ({type(network).__name__}) cannot process {datamodule.data_name}'s inputs of shape "
            f"{tuple(x.shape)}{channels}: configure its input size/channels for this data (e.g. in_channels="
            f"{x.shape[0]}), or the data's (ImageFolder(channels=...))\n{e}"
        ) from e
    finally:
        network.train(was_training)
    outputs = logits.shape[-1] if logits.ndim == 2 else None
    if outputs != datamodule.num_classes:
        raise ValueError(
            f"the network ({type(network).__name__}) outputs {outputs if outputs is not None else tuple(logits.shape)} "
            f"classes but the data ({datamodule.data_name}) has {datamodule.num_classes}; set the network's "
            f"num_classes={datamodule.num_classes}"
        )

"""The original and oracle models an unlearning run starts from and compares with.

Each is loaded from a user's checkpoint or trained with a :class:`TrainingRecipe` and cached by
a hash of (data, split, model, initial weights, recipe), so a second run reuses it.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import nn

from unlearn_pl._io import atomic_write
from unlearn_pl.classifier import TrainingRecipe, train_classifier

if TYPE_CHECKING:
    from unlearn_pl.data.datamodule import UnlearningDataModule

#: Which data each reference model is trained on.
REFERENCE_DATA = {"original": "train", "oracle": "retain"}


def default_cache_dir() -> Path:
    """``$UNLEARN_PL_CACHE`` if set, else ``~/.cache/unlearn_pl``."""
    return Path(os.environ.get("UNLEARN_PL_CACHE", Path.home() / ".cache" / "unlearn_pl"))


def state_hash(module: nn.Module) -> str:
    """Hash of a module's parameters and buffers (its initial weights, in a cache key)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def load_weights(network: nn.Module, path: str | Path) -> nn.Module:
    """Load weights into ``network`` from ``path`` safely (``weights_only=True``).

    Accepts a plain state dict, this package's cache files, and Lightning checkpoints of a
    :class:`~unlearn_pl.UnlearningModule` or ``ClassifierModule`` (``network.`` prefix).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {str(path)!r} does not exist")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — any unpickling failure means the file is unusable
        raise ValueError(f"checkpoint {str(path)!r} is corrupt or not a weights file: {e}") from e
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds no state dict")
    if any(k.startswith("network.") for k in state):
        state = {k[len("network."):]: v for k, v in state.items() if k.startswith("network.")}
    try:
        network.load_state_dict(state)
    except RuntimeError as e:
        raise ValueError(
            f"checkpoint {str(path)!r} does not fit the configured network "
            f"({type(network).__name__}): another architecture or number of classes?\n{e}"
        ) from e
    return network


class ReferenceModels:
    """Provides the *original* model (trained on retain ∪ forget) and the *oracle* (retrained
    on retain only, same recipe and initial weights).

    Args:
        recipe: how to train them when no checkpoint is given.
        original: checkpoint of the original model; ``None`` trains it (or reuses the cache).
        oracle: checkpoint of the oracle, ``True`` to train it (or reuse the cache), ``False``
            for none (no oracle row or gaps in the results).
        cache_dir: where trained models are cached (default :func:`default_cache_dir`).
    """

    def __init__(
        self,
        recipe: TrainingRecipe | None = None,
        original: str | None = None,
        oracle: bool | str = True,
        cache_dir: str | None = None,
    ) -> None:
        self.recipe = recipe or TrainingRecipe()
        self.original = original
        self.oracle = oracle
        self.cache_dir = Path(cache_dir) if cache_dir else default_cache_dir()

    def names(self) -> list[str]:
        """The reference models this configuration provides."""
        return ["original"] + (["oracle"] if self.oracle is not False else [])

    def cache_key(self, initial: nn.Module, datamodule: UnlearningDataModule, which: str) -> str:
        """Hash of everything that determines a trained reference model."""
        recipe = {k: v for k, v in asdict(self.recipe).items() if k != "accelerator"}
        parts: dict[str, Any] = {
            "which": which,
            "data": datamodule.fingerprint(REFERENCE_DATA[which]),  # type: ignore[arg-type]
            "architecture": f"{type(initial).__module__}.{type(initial).__qualname__}\n{initial!r}",
            "init": state_hash(initial),
            "recipe": recipe,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]

    def cache_path(self, initial: nn.Module, datamodule: UnlearningDataModule, which: str) -> Path:
        return self.cache_dir / f"{which}-{self.cache_key(initial, datamodule, which)}.pt"

    def _provide(self, which: str, source: str | bool | None, initial: nn.Module, datamodule: UnlearningDataModule) -> nn.Module:
        network = copy.deepcopy(initial)
        if isinstance(source, (str, os.PathLike)):
            return load_weights(network, source).eval()
        path = self.cache_path(initial, datamodule, which)
        if path.exists():
            try:
                rank_zero_info(f"Reusing the cached {which} model: {path}")
                return load_weights(network, path).eval()
            except ValueError as e:  # a corrupt cache entry is retrained, never trusted
                rank_zero_info(f"Ignoring unusable cache entry {path}: {e}")
        rank_zero_info(f"Training the {which} model on {REFERENCE_DATA[which]} ({self.recipe.epochs} epochs)")
        # drop_last: a tiny last batch gives BatchNorm meaningless batch statistics.
        loader = datamodule.dataloader(
            REFERENCE_DATA[which], shuffle=True, batch_size=self.recipe.batch_size,  # type: ignore[arg-type]
            seed=self.recipe.seed, drop_last=True,
        )
        train_classifier(network, loader, self.recipe)
        state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
        atomic_write(path, lambda tmp: torch.save({"state_dict": state, "key": path.stem}, tmp))
        return network.eval()

    def prepare(self, initial: nn.Module, datamodule: UnlearningDataModule) -> dict[str, nn.Module]:
        """Return ``{"original": ..., "oracle": ...}`` (oracle only if configured), each a new
        module built from ``initial``'s architecture and initial weights."""
        datamodule.setup("fit")
        out = {"original": self._provide("original", self.original, initial, datamodule)}
        if self.oracle is not False:
            out["oracle"] = self._provide("oracle", self.oracle, initial, datamodule)
        return out

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
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from filelock import FileLock
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn

from unlearn_pl._io import atomic_write
from unlearn_pl.classifier import TrainingRecipe, train_classifier

if TYPE_CHECKING:
    from unlearn_pl.data.datamodule import UnlearningDataModule

#: Which data each reference model is trained on.
REFERENCE_DATA = {"original": "train", "oracle": "retain"}

#: Revision of the reference-training procedure, part of every cache key. Bump it whenever a code
#: change alters what training produces for the same inputs (e.g. loader order, dropping a
#: last incomplete batch), so caches made by older code are retrained instead of reused.
TRAINING_REVISION = 2


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


def describe_mismatch(expected: Mapping[str, Tensor], found: Mapping[str, Tensor], limit: int = 5) -> str:
    """What keeps ``found`` (a checkpoint's tensors) from loading into ``expected`` (a network's).

    Returns ``""`` if every key is present on both sides with equal shapes, else a few lines such
    as ``"fc.weight: checkpoint (5, 32), network (10, 32)"``, so a wrong number of classes shows
    up as the two numbers side by side.
    """
    lines = []
    for name in expected:
        if name in found and tuple(found[name].shape) != tuple(expected[name].shape):
            lines.append(f"{name}: checkpoint {tuple(found[name].shape)}, network {tuple(expected[name].shape)}")
    missing = [n for n in expected if n not in found]
    unexpected = [n for n in found if n not in expected]
    if missing:
        lines.append(f"missing in the checkpoint: {missing[:limit]}{' …' if len(missing) > limit else ''}")
    if unexpected:
        lines.append(f"not in the network: {unexpected[:limit]}{' …' if len(unexpected) > limit else ''}")
    return "\n".join(lines[: limit + 2])


def check_state_fits(network: nn.Module, state: Mapping[str, Any], source: str) -> None:
    """Raise ``ValueError`` naming the mismatched tensors unless ``state`` loads into ``network``."""
    problems = describe_mismatch(network.state_dict(), {k: v for k, v in state.items() if isinstance(v, Tensor)})
    if problems:
        raise ValueError(
            f"{source} does not fit the configured network ({type(network).__name__}): another architecture "
            f"or number of classes? Use a checkpoint of this network, or configure the network it was made "
            f"with.\n{problems}"
        )


def _load_file(path: str | Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file and say what to do."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist (or is not a file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 — any unpickling failure means the file is unusable
        # torch's own message suggests weights_only=False, which would run arbitrary code from
        # the file: we never do that, so say plainly that the file is unusable.
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{what} {str(path)!r} is corrupt, truncated or not a weights file (it cannot be loaded with "
            f"torch.load(weights_only=True), the only way this package loads files): {first}"
        ) from e


def load_weights(network: nn.Module, path: str | Path) -> nn.Module:
    """Load weights into ``network`` from ``path`` safely (``weights_only=True``).

    Accepts a plain state dict, this package's cache files, and Lightning checkpoints of a
    :class:`~unlearn_pl.UnlearningModule` or ``ClassifierModule`` (``network.`` prefix).
    """
    obj = _load_file(path, "checkpoint")
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds no state dict (found {type(obj).__name__})")
    if any(k.startswith("network.") for k in state):
        state = {k[len("network."):]: v for k, v in state.items() if k.startswith("network.")}
    check_state_fits(network, state, f"checkpoint {str(path)!r}")
    try:
        network.load_state_dict(state)
    except RuntimeError as e:  # e.g. a dtype the parameter cannot take
        raise ValueError(f"checkpoint {str(path)!r} does not load into {type(network).__name__}: {e}") from e
    return network


def check_lightning_checkpoint(path: str | Path, network: nn.Module | None = None) -> None:
    """Check, before Lightning loads it, that ``path`` is a usable ``--ckpt_path`` (for ``network``, if given).

    Lightning's own errors for these cases are an ``UnpicklingError`` that suggests the unsafe
    ``weights_only=False``, a ``KeyError: 'pytorch-lightning_version'`` or a raw size-mismatch
    dump; this names the file, the problem and what is expected instead.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it is corrupt, not a Lightning checkpoint of an ``UnlearningModule``, or its
            network does not match ``network``.
    """
    obj = _load_file(path, "--ckpt_path checkpoint")
    if not isinstance(obj, dict) or "state_dict" not in obj or "pytorch-lightning_version" not in obj:
        keys = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(
            f"--ckpt_path {str(path)!r} is not a Lightning checkpoint (found {keys}); --ckpt_path takes a "
            "checkpoint written by a run of this module (runs/<name>/version_N/checkpoints/*.ckpt). To start from "
            "pretrained weights, pass them as the original model instead: "
            "--model.init_args.references.init_args.original <file>"
        )
    if network is not None:
        state = {k[len("network."):]: v for k, v in obj["state_dict"].items() if k.startswith("network.")}
        check_state_fits(network, state, f"--ckpt_path {str(path)!r}")


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
            "revision": TRAINING_REVISION,
        }
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:20]

    def cache_path(self, initial: nn.Module, datamodule: UnlearningDataModule, which: str) -> Path:
        return self.cache_dir / f"{which}-{self.cache_key(initial, datamodule, which)}.pt"

    def _provide(self, which: str, source: str | bool | None, initial: nn.Module, datamodule: UnlearningDataModule) -> nn.Module:
        network = copy.deepcopy(initial)
        if isinstance(source, (str, os.PathLike)):
            return load_weights(network, source).eval()
        path = self.cache_path(initial, datamodule, which)
        path.parent.mkdir(parents=True, exist_ok=True)
        # Concurrent runs (a study's workers) that need the same model: the first trains and
        # writes it while the others wait on the lock, then load it from the cache.
        with FileLock(f"{path}.lock"):
            return self._load_or_train(which, network, path, datamodule)

    def _load_or_train(self, which: str, network: nn.Module, path: Path, datamodule: UnlearningDataModule) -> nn.Module:
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

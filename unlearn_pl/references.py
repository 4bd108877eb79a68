"""The original and oracle models an unlearning run starts from and compares with.

Each is loaded from a user's checkpoint or trained with a :class:`TrainingRecipe` and cached by
a hash of (data, split, model, initial weights, recipe), so a second run reuses it.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
from dataclasses import asdict
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from filelock import FileLock
from lightning.fabric.plugins import TorchCheckpointIO
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from torch import Tensor, nn

from unlearn_pl._io import acquire_saying_so, atomic_write
from unlearn_pl.classifier import TrainingRecipe, train_classifier

if TYPE_CHECKING:
    from unlearn_pl.data.datamodule import UnlearningDataModule

#: Which data each reference model is trained on.
REFERENCE_DATA = {"original": "train", "oracle": "retain"}

#: Revision of the reference-training procedure, part of every cache key. Bump it whenever a code
#: change alters what training produces for the same inputs (e.g. loader order, dropping a
#: last incomplete batch), so caches made by older code are retrained instead of reused.
TRAINING_REVISION = 3


def default_cache_dir() -> Path:
    """``$UNLEARN_PL_CACHE`` if set, else ``~/.cache/unlearn_pl``."""
    return Path(os.environ.get("UNLEARN_PL_CACHE", Path.home() / ".cache" / "unlearn_pl"))


@contextlib.contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """Hold a file lock (``filelock``) beside the cache entry ``path`` while it is read or made.

    Where the cache folder cannot be created or written, no lock is taken: no other run can write
    that entry either, and :class:`ReferenceModels` then trains without caching (with a warning).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.lock")
        acquire_saying_so(lock)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()


def state_hash(module: nn.Module) -> str:
    """Hash of a module's parameters and buffers (its initial weights, in a cache key)."""
    h = hashlib.sha256()
    for name, t in module.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def nonfinite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``state`` that hold a NaN or an infinity."""
    return [
        name for name, t in state.items()
        if isinstance(t, Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]


#: What usually makes weights non-finite, for error messages.
DIVERGENCE_CAUSES = "a learning rate too high for this network, or NaN/infinite values in the data"


def check_finite(state: Mapping[str, Any] | nn.Module, what: str, cause: str = DIVERGENCE_CAUSES) -> None:
    """Raise ``ValueError`` if any floating-point tensor of ``state`` (or a module's state dict)
    is NaN or infinite, naming ``what`` and the tensors.

    A diverged model otherwise evaluates like any other (every prediction the same class, losses
    NaN) and ends as a row of plausible-looking numbers in the results table.
    """
    if isinstance(state, nn.Module):
        state = state.state_dict()
    bad = nonfinite_tensors(state)
    if bad:
        raise ValueError(
            f"{what} has NaN or infinite weights ({len(bad)} tensors, e.g. {bad[:3]}); the likely cause is {cause}"
        )


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
        raise ValueError(
            f"{what} {str(path)!r} is corrupt, truncated or not a weights file (it cannot be loaded with "
            f"torch.load(weights_only=True), the only way this package loads files): {_load_failure(e)}"
        ) from e


def _load_failure(error: Exception) -> str:
    """The cause in torch's unpickling error, without its advice.

    torch suggests ``weights_only=False`` or allow-listing the refused global, both of which
    would run code from the file; this package never does that, so the advice is left out.
    """
    text = str(error).strip()
    marker = "WeightsUnpickler error:"
    if marker in text:
        rest = [line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()]
        return (rest[0].split(". Please")[0] if rest else "unsupported content").rstrip(".")
    if text.startswith("Weights only load failed"):
        return "it holds objects other than tensors, numbers, strings and containers"
    return text.splitlines()[0] if text else type(error).__name__


def load_weights(network: nn.Module, path: str | Path) -> nn.Module:
    """Load weights into ``network`` from ``path`` safely (``weights_only=True``).

    Accepts a plain state dict, this package's cache files, and Lightning checkpoints of a
    :class:`~unlearn_pl.UnlearningModule` or ``ClassifierModule`` (``network.`` prefix).
    Weights with NaN or infinite values are refused (``ValueError``).
    """
    return _load_state(network, _load_file(path, "checkpoint"), path)


def _load_state(network: nn.Module, obj: Any, path: str | Path) -> nn.Module:
    """Load the state dict held by ``obj`` (what ``path`` contained) into ``network``."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds no state dict (found {type(obj).__name__})")
    if any(k.startswith("network.") for k in state):
        state = {k[len("network."):]: v for k, v in state.items() if k.startswith("network.")}
    check_state_fits(network, state, f"checkpoint {str(path)!r}")
    check_finite(state, f"checkpoint {str(path)!r}", "that the model it holds diverged in training")
    try:
        network.load_state_dict(state)
    except RuntimeError as e:  # e.g. a dtype the parameter cannot take
        raise ValueError(f"checkpoint {str(path)!r} does not load into {type(network).__name__}: {e}") from e
    return network


def check_lightning_checkpoint(path: str | Path, network: nn.Module | None = None) -> dict[str, Any]:
    """Check, before Lightning loads it, that ``path`` is a usable ``--ckpt_path`` (for ``network``, if given).

    Lightning's own errors for these cases are an ``UnpicklingError`` that suggests the unsafe
    ``weights_only=False``, a ``KeyError: 'pytorch-lightning_version'`` or a raw size-mismatch
    dump; this names the file, the problem and what is expected instead.

    Returns:
        the loaded checkpoint.

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: it is corrupt, not a Lightning checkpoint of an ``UnlearningModule``, its
            network does not match ``network``, or its weights are not finite.
    """
    return _check_checkpoint_contents(_load_file(path, "--ckpt_path checkpoint"), path, network)


def _check_checkpoint_contents(obj: Any, path: str | Path, network: nn.Module | None = None) -> dict[str, Any]:
    """:func:`check_lightning_checkpoint` on a loaded checkpoint."""
    if not isinstance(obj, dict) or "state_dict" not in obj or "pytorch-lightning_version" not in obj:
        keys = sorted(obj)[:8] if isinstance(obj, dict) else type(obj).__name__
        raise ValueError(
            f"--ckpt_path {str(path)!r} is not a Lightning checkpoint (found {keys}); --ckpt_path takes a "
            "checkpoint written by a run of this module (runs/<name>/version_N/checkpoints/*.ckpt). To start from "
            "pretrained weights, pass them as the original model instead: "
            "--model.init_args.references.init_args.original <file>"
        )
    state = {k[len("network."):]: v for k, v in obj["state_dict"].items() if k.startswith("network.")}
    if network is not None:
        check_state_fits(network, state, f"--ckpt_path {str(path)!r}")
    check_finite(state, f"--ckpt_path {str(path)!r}", "that the run that saved it diverged (" + DIVERGENCE_CAUSES + ")")
    return obj


class CheckedCheckpointIO(TorchCheckpointIO):
    """Lightning's checkpoint I/O, loading through :func:`check_lightning_checkpoint`.

    ``--ckpt_path last`` (or ``best``, ``hpc``, …) is resolved by Lightning inside ``fit``, after
    any check the CLI can make on a path; loading through this plugin gives such checkpoints the
    same checks and messages as a file name (never torch's advice to load with
    ``weights_only=False``). Loading is always ``weights_only=True``.
    """

    def load_checkpoint(self, path: Any, map_location: Any = None, weights_only: bool | None = None) -> dict[str, Any]:
        obj = _load_file(path, "checkpoint")
        if isinstance(obj, dict) and obj and all(isinstance(v, Tensor) for v in obj.values()):
            # A bare state dict: what Lightning's spawn launcher (``ddp_spawn``) writes in its
            # worker and loads back in the main process. A user's --ckpt_path file never gets
            # here as such: the CLI checks files with check_lightning_checkpoint first.
            check_finite(obj, f"the weights trained in the worker processes ({path})")
            return obj
        return _check_checkpoint_contents(obj, path)


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
        # Concurrent runs (a study's workers) that need the same model: the first trains and
        # writes it while the others wait on the lock, then load it from the cache.
        with cache_lock(path):
            return self._load_or_train(which, network, path, datamodule)

    def _load_or_train(self, which: str, network: nn.Module, path: Path, datamodule: UnlearningDataModule) -> nn.Module:
        """The sound cache entry at ``path`` if there is one, else ``network`` trained (and cached if possible)."""
        cached = self._load_cached(network, path, which)
        if cached is not None:
            return cached
        rank_zero_info(f"Training the {which} model on {REFERENCE_DATA[which]} ({self.recipe.epochs} epochs)")
        # drop_last: a tiny last batch gives BatchNorm meaningless batch statistics.
        loader = datamodule.dataloader(
            REFERENCE_DATA[which], shuffle=True, batch_size=self.recipe.batch_size,  # type: ignore[arg-type]
            seed=self.recipe.seed, drop_last=True,
        )
        train_classifier(network, loader, self.recipe, progress_bar=self.progress_bar)
        state = {k: v.detach().cpu() for k, v in network.state_dict().items()}
        # Never cache (or use) a diverged model: the next run would reuse it without a word.
        check_finite(
            state, f"the {which} model trained on {REFERENCE_DATA[which]} (recipe lr={self.recipe.lr}, "
            f"{self.recipe.epochs} epochs)",
            "a learning rate too high for this network (lower references.recipe.lr), or NaN/infinite values in the data",
        )
        try:
            atomic_write(path, lambda tmp: torch.save({"state_dict": state, "key": path.stem}, tmp))
        except OSError as e:  # an unwritable cache must not lose the model just trained
            rank_zero_warn(f"Could not cache the {which} model in {str(self.cache_dir)!r} ({e}); continuing without caching it")
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
            obj = _load_file(path, "cache entry")
            key = obj.get("key") if isinstance(obj, dict) else None
            if key != path.stem:
                raise ValueError(f"it was saved under key {key!r}, not {path.stem!r}")
            _load_state(network, obj, path)
        except ValueError as e:  # an unusable cache entry is retrained, never trusted
            rank_zero_warn(f"Ignoring unusable cache entry {str(path)!r} for the {which} model: {e}")
            return None
        rank_zero_info(f"Reusing the cached {which} model: {path}")
        return network.eval()

    def prepare(self, initial: nn.Module, datamodule: UnlearningDataModule) -> dict[str, nn.Module]:
        """Return ``{"original": ..., "oracle": ...}`` (oracle only if configured), each a new
        module built from ``initial``'s architecture and initial weights."""
        datamodule.setup("fit")
        out = {"original": self._provide("original", self.original, initial, datamodule)}
        if self.oracle is not False:
            out["oracle"] = self._provide("oracle", self.oracle, initial, datamodule)
        return out

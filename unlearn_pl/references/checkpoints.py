"""Loading weights safely: ``torch.load(weights_only=True)`` only, with errors that name the file.

Checks shared by every place weights enter a run: a user's original or oracle, the cache, a
``--ckpt_path`` checkpoint, the weights a DDP spawn worker hands back. Non-finite weights are
refused everywhere, so a diverged model never becomes a row of plausible numbers.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.fabric.plugins import TorchCheckpointIO
from torch import Tensor, nn

from unlearn_pl.protocols import UnlearningData, attached_data
from unlearn_pl.utils.describe import fingerprint
from unlearn_pl.utils.errors import DivergenceError

#: Checkpoint key of :func:`run_fingerprint`.
RUN_KEY = "unlearn_pl_run"


def nonfinite_tensors(state: Mapping[str, Any]) -> list[str]:
    """Names of the floating-point tensors in ``state`` that hold a NaN or an infinity."""
    return [
        name
        for name, t in state.items()
        if isinstance(t, Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all())
    ]


#: What usually makes weights non-finite, for error messages.
DIVERGENCE_CAUSES = "a learning rate too high for this network, or NaN/infinite values in the data"


def check_finite(state: Mapping[str, Any] | nn.Module, what: str, cause: str = DIVERGENCE_CAUSES) -> None:
    """Raise :class:`~unlearn_pl.utils.errors.DivergenceError` (a ``ValueError``) if any
    floating-point tensor of ``state`` (or a module's state dict) is NaN or infinite, naming
    ``what`` and the tensors.

    A diverged model otherwise evaluates like any other (every prediction the same class, losses
    NaN) and ends as a row of plausible-looking numbers in the results table.
    """
    if isinstance(state, nn.Module):
        state = state.state_dict()
    bad = nonfinite_tensors(state)
    if bad:
        raise DivergenceError(
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


def load_file(path: str | Path, what: str) -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file and say what to do."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{what} {str(path)!r} does not exist (or is not a file)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # any unpickling failure means the file is unusable
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
    return load_state(network, load_file(path, "checkpoint"), path)


def load_state(network: nn.Module, obj: Any, path: str | Path) -> nn.Module:
    """Load the state dict held by ``obj`` (what ``path`` contained) into ``network``."""
    state = obj.get("state_dict", obj) if isinstance(obj, dict) else None
    if not isinstance(state, dict):
        raise ValueError(f"checkpoint {str(path)!r} holds no state dict (found {type(obj).__name__})")
    if any(k.startswith("network.") for k in state):
        state = {k[len("network.") :]: v for k, v in state.items() if k.startswith("network.")}
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
    return _check_checkpoint_contents(load_file(path, "--ckpt_path checkpoint"), path, network)


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
    state = {k[len("network.") :]: v for k, v in obj["state_dict"].items() if k.startswith("network.")}
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
        obj = load_file(path, "checkpoint")
        if isinstance(obj, dict) and obj and all(isinstance(v, Tensor) for v in obj.values()):
            # A bare state dict: what Lightning's spawn launcher (``ddp_spawn``) writes in its
            # worker and loads back in the main process. A user's --ckpt_path file never gets
            # here as such: the CLI checks files with check_lightning_checkpoint first.
            check_finite(obj, f"the weights trained in the worker processes ({path})")
            return obj
        return _check_checkpoint_contents(obj, path)


def run_fingerprint(trainer: pl.Trainer | None, localizer: Any) -> dict[str, Any]:
    """What a checkpoint of a run may only be resumed with: the split and the localizer's settings.

    The split is the ``trainer``'s data module's
    :meth:`~unlearn_pl.protocols.UnlearningData.split_fingerprint` (data, retain, forget,
    validation, relabels; ``None`` without a trainer or for other data modules); the localizer is
    described by its class and arguments (its mask is computed from them once per run and then
    restored from the checkpoint, so resuming under other settings would keep the old mask silently).
    """
    data = attached_data(trainer) if trainer is not None else None
    split = data.split_fingerprint() if isinstance(data, UnlearningData) else None
    return {"split": split, "localizer": fingerprint(localizer)}


def check_resumable(checkpoint: Mapping[str, Any], network: nn.Module, current: Mapping[str, Any]) -> None:
    """Check a ``--ckpt_path`` checkpoint before Lightning loads it: its network must fit
    ``network``, hold finite weights, and (when it records a :func:`run_fingerprint`) come from the
    same split and localizer settings as ``current``."""
    state = checkpoint.get("state_dict", {})
    network_state = {k[len("network.") :]: v for k, v in state.items() if k.startswith("network.")}
    check_state_fits(network, network_state, "the checkpoint (--ckpt_path)")
    check_finite(
        network_state, "the checkpoint (--ckpt_path)", "that the run that saved it diverged (" + DIVERGENCE_CAUSES + ")"
    )
    saved = checkpoint.get(RUN_KEY)
    if saved is None:
        return  # a checkpoint that records nothing to compare (written by Lightning alone)
    for part, what in (
        ("split", "split (data, forget set, retain set, validation set)"),
        ("localizer", "localizer settings"),
    ):
        if saved.get(part) is not None and current.get(part) is not None and saved[part] != current[part]:
            raise ValueError(
                f"the checkpoint (--ckpt_path) was made with another {what}: checkpoint {saved[part]!r}, "
                f"this run {current[part]!r}. Resuming would keep the checkpoint's weights and mask under this "
                "configuration; resume with the configuration that made it (its config.yaml), or start a new run"
            )

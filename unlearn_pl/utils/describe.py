"""What a configured object is: its description, its fingerprint, and content hashes.

- :func:`describe` gives an object as jsonargparse ``class_path`` configs, so a checkpoint made
  from Python can rebuild its module with ``load_from_checkpoint`` like one made by the CLI.
- :func:`fingerprint` gives the same description for comparing configurations (a resumed run, a
  shadow-model bank): it never fails, describing a network by its architecture and a tensor by
  its content hash.
- :func:`content_hash` is the one hash of the package: cache keys, result files, weights.

The convention is scikit-learn's (``BaseEstimator.get_params``): a component keeps each
constructor argument as an attribute of the same name. Every localizer, unlearner, metric,
model and ``ReferenceModels`` of this package does; a class of yours that does too is described
the same way. An object that does not is not describable, and ``load_from_checkpoint`` then needs
it passed explicitly (``UnlearningModule.load_from_checkpoint(path, network=...)``).
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import inspect
import json
import os
import pkgutil
from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from torch import nn

#: Hex digits of a :func:`content_hash`.
HASH_LENGTH = 20


class NotDescribable(ValueError):
    """An object whose constructor arguments cannot be read back from its attributes."""


#: Deeper nesting than this is taken for a reference cycle.
MAX_DEPTH = 32


def plain(value: Any) -> bool | int | float | str | None:
    """``value`` as a builtin scalar (or its ``repr``). jsonargparse's restricted types
    (``PositiveFloat(0.3)``…) are int/float subclasses that YAML cannot represent and the
    weights-only unpickler refuses, so checkpoints and configs store the builtin value."""
    for kind in (bool, int, float, str):
        if isinstance(value, kind):
            return kind(value)
    return None if value is None else repr(value)


def describe(value: Any, _depth: int = 0, *, _strict: bool = True) -> Any:
    """``value`` as plain data that jsonargparse can instantiate again.

    Numbers, strings, ``None`` and paths stay as they are; lists, tuples and dicts are described
    item by item; dataclasses become dicts of their fields; any other object becomes
    ``{"class_path": "module.Class", "init_args": {...}}`` from its constructor's parameters.

    Raises:
        NotDescribable: for an object missing an attribute named after a constructor parameter,
            a tensor, or an object whose constructor has no inspectable signature.
    """
    if _depth > MAX_DEPTH:
        raise NotDescribable(
            f"nesting deeper than {MAX_DEPTH} levels (a reference cycle?) at {type(value).__qualname__}"
        )
    if isinstance(value, torch.Tensor):
        if _strict:
            raise NotDescribable("a tensor is state, not a constructor argument")
        return content_hash(value)
    if value is None or isinstance(value, (bool, int, float, str)):
        return plain(value)
    if isinstance(value, enum.Enum):
        return describe(value.value, _depth, _strict=_strict)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [describe(v, _depth + 1, _strict=_strict) for v in value]
    if isinstance(value, Mapping):
        items = value.items() if _strict else sorted(value.items(), key=lambda kv: str(kv[0]))
        return {str(k): describe(v, _depth + 1, _strict=_strict) for k, v in items}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {
            f.name: describe(getattr(value, f.name), _depth + 1, _strict=_strict)
            for f in dataclasses.fields(value)
            if f.init
        }
    if not _strict and isinstance(value, nn.Module):
        # A network is its architecture (its printed layers) here, not its weights or arguments.
        return {"class_path": class_path(type(value)), "architecture": repr(value)}
    return {"class_path": class_path(type(value)), "init_args": init_args(value, _depth + 1, _strict=_strict)}


def instantiate(config: Any) -> Any:
    r"""The object a :func:`describe`\ d ``class_path`` block configures (nested blocks, lists and
    dicts built too); anything else is returned as it is."""
    if isinstance(config, Mapping) and "class_path" in config:
        args = {k: instantiate(v) for k, v in (config.get("init_args") or {}).items()}
        return pkgutil.resolve_name(str(config["class_path"]))(**args)
    if isinstance(config, (list, tuple)):
        return type(config)(instantiate(v) for v in config)
    if isinstance(config, Mapping):
        return {k: instantiate(v) for k, v in config.items()}
    return config


def fingerprint(value: Any) -> Any:
    """A JSON-able description of a configured object for comparing configurations.

    Like :func:`describe`, but it never fails: a network is described by its class and
    architecture (``repr``), a tensor by its :func:`content_hash`, dict keys are sorted, and
    constructor arguments without an attribute of their name are left out. It holds no memory
    addresses, so every process computes the same one.
    """
    return describe(value, _strict=False)


def content_hash(value: Any) -> str:
    """A short SHA-256 of ``value``: tensors by their bytes (with dtype and shape), a module by its
    state dict, mappings and sequences item by item (mapping keys in order, with their names),
    anything else as JSON with sorted keys. The one hash of the package (cache keys, result files,
    data and weight fingerprints)."""
    h = hashlib.sha256()
    _feed(h, value)
    return h.hexdigest()[:HASH_LENGTH]


def _feed(h: Any, value: Any) -> None:
    if isinstance(value, nn.Module):
        value = value.state_dict()
    if isinstance(value, torch.Tensor):
        h.update(f"tensor:{value.dtype}:{tuple(value.shape)}:".encode())
        h.update(value.detach().cpu().contiguous().numpy().tobytes())
    elif isinstance(value, Mapping) and any(
        isinstance(v, (torch.Tensor, Mapping, list, tuple)) for v in value.values()
    ):
        for key, item in value.items():
            h.update(f"key:{key}:".encode())
            _feed(h, item)
    elif isinstance(value, (list, tuple)) and any(isinstance(v, (torch.Tensor, Mapping)) for v in value):
        for item in value:
            h.update(b"item:")
            _feed(h, item)
    else:
        h.update(json.dumps(value, sort_keys=True, default=str).encode())


def class_path(cls: type) -> str:
    """``module.QualName`` of a class, by the shortest public module that exports it
    (``unlearn_pl.localizers.DEL`` rather than ``unlearn_pl.localizers.del_.DEL``)."""
    module = cls.__module__
    parts = module.split(".")
    for i in range(1, len(parts)):
        parent = ".".join(parts[:i])
        mod = __import__(parent, fromlist=["_"])
        if getattr(mod, cls.__qualname__, None) is cls:
            return f"{parent}.{cls.__qualname__}"
    return f"{module}.{cls.__qualname__}"


def init_args(obj: Any, _depth: int = 0, *, _strict: bool = True) -> dict[str, Any]:
    """The constructor arguments of ``obj``, read from its attributes of the same names."""
    cls = type(obj)
    args: dict[str, Any] = {}
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError) as e:  # builtins and extension types
        if not _strict:
            return {}
        raise NotDescribable(f"{cls.__qualname__}'s constructor has no inspectable signature") from e
    for name, param in parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if not hasattr(obj, name):
            if not _strict:
                continue
            raise NotDescribable(
                f"{cls.__qualname__} has no attribute {name!r} for its constructor argument of that name; "
                "keep each argument as an attribute of the same name, or pass the object to load_from_checkpoint"
            )
        args[name] = describe(getattr(obj, name), _depth, _strict=_strict)
    return args


#: Lightning's instantiator for ``load_from_checkpoint``: it parses the saved ``class_path``
#: blocks with jsonargparse, exactly as ``LightningCLI`` records them.
CHECKPOINT_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"


def save_arguments(module: LightningModule, arguments: Mapping[str, Any]) -> None:
    """``module.save_hyperparameters`` for constructor ``arguments`` that are objects, so that
    ``load_from_checkpoint`` rebuilds the module.

    Under ``LightningCLI`` the hyperparameters are the parsed config, which Lightning hands over
    itself. From Python, each argument is described as a ``class_path`` block; an argument that
    cannot be described is left out, and ``load_from_checkpoint`` then needs it passed explicitly.
    """
    # LightningCLI sets this context variable while it builds the model (``_InstantiatorFn``
    # in lightning/pytorch/cli.py); Lightning offers no public way to ask for it.
    if _given_hyperparameters.get() is not None:
        module.save_hyperparameters()
        return
    hparams: dict[str, Any] = {"_class_path": class_path(type(module)), "_instantiator": CHECKPOINT_INSTANTIATOR}
    for name, value in arguments.items():
        try:
            hparams[name] = describe(value)
        except NotDescribable:
            pass
    module.save_hyperparameters(hparams)

"""Describe constructed objects as jsonargparse ``class_path`` configs, so a checkpoint made from
Python can rebuild its module with ``load_from_checkpoint`` like one made by the CLI.

The convention is scikit-learn's (``BaseEstimator.get_params``): a component keeps each
constructor argument as an attribute of the same name. Every localizer, unlearner, metric,
model and ``ReferenceModels`` of this package does; a class of yours that does too is described
the same way. An object that does not is not describable, and ``load_from_checkpoint`` then needs
it passed explicitly (``UnlearningModule.load_from_checkpoint(path, network=...)``).
"""

from __future__ import annotations

import dataclasses
import enum
import inspect
import os
from collections.abc import Mapping
from typing import Any

import torch


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


def describe(value: Any, _depth: int = 0) -> Any:
    """``value`` as plain data that jsonargparse can instantiate again.

    Numbers, strings, ``None`` and paths stay as they are; lists, tuples and dicts are described
    item by item; dataclasses become dicts of their fields; any other object becomes
    ``{"class_path": "module.Class", "init_args": {...}}`` from its constructor's parameters.

    Raises:
        NotDescribable: for an object missing an attribute named after a constructor parameter,
            a tensor, or an object whose constructor has no inspectable signature.
    """
    if _depth > MAX_DEPTH:
        raise NotDescribable(f"nesting deeper than {MAX_DEPTH} levels (a reference cycle?) at {type(value).__qualname__}")
    if isinstance(value, torch.Tensor):
        raise NotDescribable("a tensor is state, not a constructor argument")
    if value is None or isinstance(value, (bool, int, float, str)):
        return plain(value)
    if isinstance(value, enum.Enum):
        return describe(value.value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (list, tuple)):
        return [describe(v, _depth + 1) for v in value]
    if isinstance(value, Mapping):
        return {str(k): describe(v, _depth + 1) for k, v in value.items()}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: describe(getattr(value, f.name), _depth + 1) for f in dataclasses.fields(value) if f.init}
    return {"class_path": class_path(type(value)), "init_args": init_args(value, _depth + 1)}


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


def init_args(obj: Any, _depth: int = 0) -> dict[str, Any]:
    """The constructor arguments of ``obj``, read from its attributes of the same names."""
    cls = type(obj)
    args: dict[str, Any] = {}
    try:
        parameters = inspect.signature(cls.__init__).parameters
    except (TypeError, ValueError) as e:  # builtins and extension types
        raise NotDescribable(f"{cls.__qualname__}'s constructor has no inspectable signature") from e
    for name, param in parameters.items():
        if name == "self" or param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            continue
        if not hasattr(obj, name):
            raise NotDescribable(
                f"{cls.__qualname__} has no attribute {name!r} for its constructor argument of that name; "
                "keep each argument as an attribute of the same name, or pass the object to load_from_checkpoint"
            )
        args[name] = describe(getattr(obj, name), _depth)
    return args

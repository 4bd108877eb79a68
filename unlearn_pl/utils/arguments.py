"""Argument ranges, declared once in a signature and checked from the command line and from Python.

An argument's range is its annotation: a jsonargparse restricted type (``LearningRate``,
``PositiveFraction`` …), a ``Literal`` of choices, ``int``/``float``/``bool``/``str``, optional
(``X | None``) or a list/tuple of those. jsonargparse enforces the annotation while it parses a
config (one-line error, range shown in ``--help``); from Python, the annotation is not enforced,
so constructors call :func:`check_arguments` with their arguments, which reads the same
annotations. No range is written twice.

Example::

    class Finetune(Unlearner):
        def __init__(self, lr: LearningRate = 0.01, epochs: PositiveInt | None = None) -> None:
            check_arguments(Finetune.__init__, locals())
"""

from __future__ import annotations

import inspect
import math
import numbers
import operator
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

from jsonargparse.typing import (
    ClosedUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    OpenUnitInterval,
    PositiveFloat,
    PositiveInt,
    register_type,
    restricted_number_type,
)


def _worker_count(value: Any) -> int | str:
    """A worker count from the command line or a config: ``auto`` or an int >= 1 (a ``ValueError`` names anything else)."""
    if isinstance(value, str) and value.strip() == "auto":
        return "auto"
    text = value.strip() if isinstance(value, str) else value
    number = int(text) if isinstance(text, int) or (isinstance(text, str) and text.isdigit()) else None
    if isinstance(value, bool) or number is None or number < 1:
        raise ValueError(f"workers must be a positive int or 'auto'; got {value!r}")
    return number


if TYPE_CHECKING:  # to a type checker, a restricted type is its base type
    PositiveFraction = float
    HalfOpenFraction = float
    IntAtLeastTwo = int
    NetworkWidth = float
    WorkerCount = int | Literal["auto"]
else:
    #: A fraction in (0, 1] (a budget, a top-h share).
    PositiveFraction = restricted_number_type("PositiveFraction", float, [(">", 0.0), ("<=", 1.0)], join="and")
    #: A fraction in [0, 1).
    HalfOpenFraction = restricted_number_type("HalfOpenFraction", float, [(">=", 0.0), ("<", 1.0)], join="and")
    #: An integer ≥ 2 (cross-validation folds, grid points per axis).
    IntAtLeastTwo = restricted_number_type("IntAtLeastTwo", int, (">=", 2))
    # Declared here rather than beside the network: jsonargparse resolves a signature's names
    # from its module's source, where a TYPE_CHECKING alias would read as the plain float.
    #: A width scale of a network's channel counts, in (0, 4] (the overparameterization study uses 1/64 to 1).
    NetworkWidth = restricted_number_type("NetworkWidth", float, [(">", 0.0), ("<=", 4.0)], join="and")

    class WorkerCount(int):
        """Worker processes: a positive int, or ``auto`` (one per GPU of the trials, else one per core)."""

    register_type(WorkerCount, serializer=lambda value: value, deserializer=_worker_count)

#: SGD/Adam learning rate, > 0.
LearningRate = PositiveFloat
#: SGD momentum, in [0, 1].
Momentum = ClosedUnitInterval
#: L2 weight decay, >= 0.
WeightDecay = NonNegativeFloat
#: End of a cosine schedule as a fraction of the peak learning rate, in [0, 1].
LRFraction = ClosedUnitInterval
#: An optimizer an unlearner may be asked to use.
OptimizerName = Literal["sgd", "adam"]
#: Lightning's ``precision`` of a training run: fp32, or mixed precision (autocast; the weights stay fp32) in
#: bfloat16 or float16 (https://lightning.ai/docs/pytorch/stable/common/precision_basic.html).
Precision = Literal["32-true", "bf16-mixed", "16-mixed"]

__all__ = [
    "ClosedUnitInterval",
    "NonNegativeFloat",
    "NonNegativeInt",
    "OpenUnitInterval",
    "PositiveFloat",
    "PositiveInt",
    "PositiveFraction",
    "HalfOpenFraction",
    "IntAtLeastTwo",
    "NetworkWidth",
    "LearningRate",
    "Momentum",
    "WeightDecay",
    "LRFraction",
    "OptimizerName",
    "Precision",
    "WorkerCount",
    "check_arguments",
    "check_value",
    "restricted_number_type",
]

_OPERATORS = {operator.gt: ">", operator.ge: ">=", operator.lt: "<", operator.le: "<="}


def _is_restricted(annotation: Any) -> bool:
    return isinstance(annotation, type) and hasattr(annotation, "_restrictions") and hasattr(annotation, "_type")


def describe_range(annotation: Any) -> str:
    """What a restricted number type allows, in words: ``a number > 0``, ``in (0, 1]``, ``an int >= 1``."""
    bounds = {_OPERATORS[op]: ref for op, ref in annotation._restrictions}
    low = next(((sym, bounds[sym]) for sym in (">", ">=") if sym in bounds), None)
    high = next(((sym, bounds[sym]) for sym in ("<", "<=") if sym in bounds), None)
    kind = "an int" if annotation._type is int else "a number"
    if low and high:
        return f"in {'(' if low[0] == '>' else '['}{low[1]:g}, {high[1]:g}{')' if high[0] == '<' else ']'}"
    bound = low or high
    assert bound is not None  # a restricted number type has at least one bound
    sym, ref = bound
    if annotation._type is int and sym == ">":  # integers: "> 0" reads better as ">= 1"
        sym, ref = ">=", ref + 1
    return f"{kind} {sym} {ref:g}"


def check_value(name: str, value: Any, annotation: Any) -> None:
    """Raise ``ValueError`` naming ``name``, ``value`` and what ``annotation`` allows, unless it fits.

    Annotations this does not know (classes, callables, ``Any``) accept every value: their
    objects check themselves.
    """
    if _fits(value, annotation):
        return
    raise ValueError(f"{name} must be {_allowed(annotation)}; got {value!r}")


def _fits(value: Any, annotation: Any) -> bool:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_fits(value, a) for a in args)
    if annotation is type(None):
        return value is None
    if origin is Literal:
        return any(value == a and isinstance(value, bool) == isinstance(a, bool) for a in args)
    if _is_restricted(annotation):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        if annotation._type is int and not isinstance(value, numbers.Integral):
            return False
        try:
            annotation(value)
        except ValueError:
            return False
        return True
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if annotation is float:
        return isinstance(value, numbers.Real) and not isinstance(value, bool) and not math.isnan(value)
    if annotation is str:
        return isinstance(value, str)
    if origin in (list, tuple, Sequence) and args:
        if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
            return False
        items = args[:1] if origin is not tuple or (len(args) == 2 and args[1] is Ellipsis) else args
        if origin is tuple and items is args and len(value) != len(args):
            return False
        return all(_fits(v, items[0] if len(items) == 1 else items[i]) for i, v in enumerate(value))
    return True


def _allowed(annotation: Any) -> str:
    origin, args = typing.get_origin(annotation), typing.get_args(annotation)
    if origin in (typing.Union, types.UnionType):
        many = [a for a in args if typing.get_origin(a) in (list, tuple, Sequence) and typing.get_args(a)[:1] != ()]
        if len(args) == 2 and len(many) == 1 and typing.get_args(many[0])[0] in args:  # X | list[X]
            return f"one or more of {typing.get_args(typing.get_args(many[0])[0])}"
        return " or ".join(_allowed(a) for a in args)
    if annotation is type(None):
        return "None"
    if origin is Literal:
        return f"one of {args}"
    if _is_restricted(annotation):
        return describe_range(annotation)
    if origin in (list, tuple, Sequence) and args:
        if typing.get_origin(args[0]) is Literal:
            return f"one or more of {typing.get_args(args[0])}"
        return f"a list of ({_allowed(args[0])})"
    return {bool: "true or false", int: "an int", float: "a number", str: "a string"}.get(annotation, str(annotation))


@cache
def _annotations(function: Callable[..., Any]) -> dict[str, Any]:
    # Postponed annotations (``from __future__ import annotations``) are strings, resolved in the
    # function's own module. A signature completed by hand (``SGDUnlearner`` subclasses) keeps the
    # forwarded parameters' annotations already resolved.
    own = typing.get_type_hints(function)
    signature = inspect.signature(function)
    return {
        n: own.get(n, p.annotation)
        for n, p in signature.parameters.items()
        if n in own or not isinstance(p.annotation, str) and p.annotation is not inspect.Parameter.empty
    }


def check_arguments(function: Callable[..., Any], values: Mapping[str, Any]) -> None:
    """Check every value of ``values`` (e.g. a constructor's ``locals()``) whose name is a
    parameter of ``function`` against that parameter's annotation (:func:`check_value`)."""
    for name, annotation in _annotations(function).items():
        if name in values and name != "self":
            check_value(name, values[name], annotation)

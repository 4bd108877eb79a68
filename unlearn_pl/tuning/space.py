"""A study's search space: named axes (their product: the study's *points*) and a grid of dotted
config keys (its product: each point's *candidates*); an axis value's ``grid`` updates the default::

    grid: {trainer.max_epochs: [2]}
    space:
      width: {key: model.init_args.network.init_args.width, values: [0.125, 0.25]}
      method:
        - name: scrub
          set: {model.init_args.unlearner: {class_path: unlearn_pl.unlearners.SCRUB}}
          grid: {model.init_args.unlearner.init_args.lr: [0.0005, 0.005]}

Candidates keep the grid's order (its keys in the order given, each key's values as listed): it
breaks ties between equally good cells. ``no_op`` puts one more candidate first at every point,
the original itself (:class:`~unlearn_pl.unlearners.NoOp`, cell ``no_op=true``): a choice of
unlearning then has to beat doing nothing, and ties go to doing nothing.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def short_key(key: str) -> str:
    """The last component of a dotted key (``model.init_args.unlearner.init_args.lr`` → ``lr``)."""
    return key.rsplit(".", 1)[-1]


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


@dataclass(frozen=True)
class Candidate:
    """One candidate: ``labels`` (axis, value name), ``params`` (grid key, value) and the
    ``overrides`` (dotted key, value) in application order: the axes', then the grid's."""

    labels: tuple[tuple[str, str], ...]
    params: tuple[tuple[str, Any], ...]
    overrides: tuple[tuple[str, Any], ...]

    @property
    def point(self) -> str:
        """``axis=value/axis=value`` (``base`` without axes)."""
        return "/".join(f"{a}={v}" for a, v in self.labels) or "base"

    @property
    def name(self) -> str:
        """The point and the grid cell, e.g. ``method=scrub/lr=0.0005``: unique within a study."""
        cell = ",".join(f"{short_key(k)}={_text(v)}" for k, v in self.params)
        return f"{self.point}/{cell}" if cell else self.point


def _check_grid(grid: Any, where: str) -> dict[str, list[Any]]:
    if not isinstance(grid, Mapping):
        raise ValueError(f"{where} must be a mapping {{dotted key: [values]}}; got {grid!r}")
    for key, values in grid.items():
        if not isinstance(key, str) or not key or any(not p for p in key.split(".")):
            raise ValueError(f"{where}: {key!r} is not a dotted key such as 'trainer.max_epochs'")
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"{where}[{key!r}] must be a non-empty list of values; got {values!r}")
        if len({_text(v) for v in values}) != len(values):
            raise ValueError(f"{where}[{key!r}] lists a value twice: {list(values)}")
    return {k: list(v) for k, v in grid.items()}


def _axis_values(axis: str, spec: Any) -> list[tuple[str, list[tuple[str, Any]], dict[str, list[Any]]]]:
    """``[(value name, overrides, grid update)]`` of one axis, from its short or long form."""
    if isinstance(spec, Mapping) and set(spec) == {"key", "values"}:
        values = spec["values"]
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"space.{axis}.values must be a non-empty list; got {values!r}")
        return [(_text(v), [(str(spec["key"]), v)], {}) for v in values]
    if not isinstance(spec, Sequence) or isinstance(spec, (str, bytes)) or not spec:
        raise ValueError(
            f"space.{axis} must be {{key: dotted.key, values: [...]}} or a non-empty list of "
            f"{{name, set, grid}} entries; got {spec!r}"
        )
    out = []
    for item in spec:
        if not isinstance(item, Mapping) or "name" not in item or set(item) - {"name", "set", "grid"}:
            raise ValueError(f"space.{axis} entries are {{name, set, grid}} mappings; got {item!r}")
        where = f"space.{axis}[{item['name']!r}]"
        if not isinstance(item.get("set") or {}, Mapping):
            raise ValueError(f"{where}.set must be a mapping of dotted keys; got {item['set']!r}")
        out.append(
            (
                str(item["name"]),
                list((item.get("set") or {}).items()),
                _check_grid(item.get("grid") or {}, f"{where}.grid"),
            )
        )
    if len({name for name, _, _ in out}) != len(out):
        raise ValueError(f"space.{axis} names a value twice: {[name for name, _, _ in out]}")
    return out


#: The dotted key of a run's unlearner, and the do-nothing unlearner of a ``no_op`` candidate.
UNLEARNER_KEY = "model.init_args.unlearner"
NO_OP_UNLEARNER = {"class_path": "unlearn_pl.unlearners.NoOp"}
#: The grid parameter that names a point's do-nothing cell (``no_op=true``).
NO_OP_PARAM = "no_op"


def no_op_candidate(labels: tuple[tuple[str, str], ...], axis_overrides: tuple[tuple[str, Any], ...]) -> Candidate:
    """The point's do-nothing candidate: the axes' overrides except the unlearner's, whose settings
    would not fit :class:`~unlearn_pl.unlearners.NoOp`, then the NoOp unlearner."""
    kept = tuple((k, v) for k, v in axis_overrides if k != UNLEARNER_KEY and not k.startswith(f"{UNLEARNER_KEY}."))
    return Candidate(labels, ((NO_OP_PARAM, True),), (*kept, (UNLEARNER_KEY, NO_OP_UNLEARNER)))


def expand_space(
    space: Mapping[str, Any] | None, grid: Mapping[str, Sequence[Any]] | None, no_op: bool = False
) -> list[Candidate]:
    """Every candidate of ``space`` (axes) and ``grid`` (the default grid), points in axis order;
    with ``no_op``, each point's :func:`no_op_candidate` first.

    >>> [c.name for c in expand_space({"w": {"key": "a.w", "values": [1, 2]}}, {"t.e": [3]})]
    ['w=1/e=3', 'w=2/e=3']
    >>> [c.name for c in expand_space({"w": {"key": "a.w", "values": [1]}}, {"t.e": [3]}, no_op=True)]
    ['w=1/no_op=true', 'w=1/e=3']
    """
    base_grid = _check_grid(grid or {}, "grid")
    axes = [(a, _axis_values(a, spec)) for a, spec in (space or {}).items()]
    candidates = []
    for combo in itertools.product(*(values for _, values in axes)):
        point_grid = dict(base_grid)
        for _, _, update in combo:
            point_grid.update(update)
        labels = tuple((a, name) for (a, _), (name, _, _) in zip(axes, combo, strict=True))
        overrides = tuple(kv for _, sets, _ in combo for kv in sets)
        if no_op:
            candidates.append(no_op_candidate(labels, overrides))
        for cell in itertools.product(*point_grid.values()):
            params = tuple(zip(point_grid, cell, strict=True))
            candidates.append(Candidate(labels, params, overrides + params))
    return candidates


def override_args(overrides: Sequence[tuple[str, Any]]) -> list[str]:
    """``--key=value`` CLI arguments: strings as typed on a command line, other values as JSON."""
    return [f"--{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in overrides]

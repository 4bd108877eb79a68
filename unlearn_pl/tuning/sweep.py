"""Sweeps: one experiment config, many variations of it, each tuned (or run once) by :func:`tune`.

A sweep file (YAML) names base experiment configs (normal ``unlearn-pl fit`` configs, composed in
order), overrides for every point, and **axes**: lists of named override sets whose product gives
the sweep's points. Each point is built with the ``unlearn-pl`` CLI's own parser (so every
``class_path`` block works as in ``fit``) and handed to :func:`~unlearn_pl.tuning.runner.tune`
with the point's grid: a one-value grid such as ``{max_epochs: [3]}`` is a single run, a larger
one is validation-based tuning (SPEC §6). The per-point loop is therefore the tuner's, and the
reference models are trained once per distinct (data, split, network, recipe) and then reused
from the cache by every point that shares them.

Sweep file::

    base: [privacy_base.yaml]          # relative to the sweep file (or absolute)
    set:                               # dotted overrides applied to every point
      data.init_args.train_size: 10000
    goal: privacy                      # privacy | privacy_mia | bias
    lambdas: [0.2, 0.4, 0.6]
    grid: {max_epochs: [2]}            # the default grid; an axis value's grid updates it
    output_dir: runs/experiments/width_sweep
    axes:
      width:                           # short form: one dotted key, a list of values
        key: model.init_args.network.init_args.width
        values: [0.125, 0.25]
      method:                          # long form: named override sets, each with its own grid
        - name: scrub
          set: {model.init_args.unlearner: {class_path: unlearn_pl.unlearners.SCRUB}}
          grid: {lr: [0.0005, 0.002], max_epochs: [2]}

Run it with ``python -m unlearn_pl.tuning.sweep configs/experiments/width_sweep.yaml`` (see
:func:`main`), or from Python with :func:`load_sweep` and :func:`run_sweep`.

Override rule: a dotted key replaces the value at that path. When the value is a ``class_path``
block whose class differs from the base's, the whole block is replaced (the old class's
``init_args`` would not fit the new class); with the same class, ``init_args`` are merged.
"""

from __future__ import annotations

import argparse
import copy
import csv
import io
import itertools
import math
import os
import re
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from torch import nn

from unlearn_pl._io import write_json, write_text
from unlearn_pl.tuning.objective import check_goal, check_lambdas
from unlearn_pl.tuning.runner import CandidateResult, TuningResult, tune

#: Keys a sweep file may have.
SWEEP_KEYS: tuple[str, ...] = ("base", "set", "goal", "lambdas", "grid", "output_dir", "axes", "seed")


# ----------------------------------------------------------------------------- config composition
def merge_config(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Deep-merge ``override`` into a copy of ``base`` (mappings merged, everything else replaced).

    A ``class_path`` block naming another class than the base's replaces the base block whole.

    >>> merge_config({"a": {"b": 1, "c": 2}}, {"a": {"c": 3}})
    {'a': {'b': 1, 'c': 3}}
    >>> merge_config({"l": {"class_path": "A", "init_args": {"x": 1}}}, {"l": {"class_path": "B"}})
    {'l': {'class_path': 'B'}}
    """
    out = copy.deepcopy(dict(base))
    for key, value in override.items():
        old = out.get(key)
        if isinstance(value, Mapping) and isinstance(old, Mapping):
            new_class, old_class = value.get("class_path"), old.get("class_path")
            if new_class is not None and new_class != old_class:
                out[key] = copy.deepcopy(dict(value))
            else:
                out[key] = merge_config(old, value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def set_dotted(config: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """A copy of ``config`` with ``value`` at the dotted path ``key`` (see :func:`merge_config`).

    >>> set_dotted({"model": {"init_args": {"w": 1}}}, "model.init_args.w", 2)
    {'model': {'init_args': {'w': 2}}}
    """
    parts = key.split(".")
    if not key or any(not p for p in parts):
        raise ValueError(f"override key {key!r} is not a dotted path such as 'model.init_args.network.init_args.width'")
    nested: Any = value
    for part in reversed(parts):
        nested = {part: nested}
    return merge_config(config, nested)


def load_yaml(path: str | os.PathLike) -> dict[str, Any]:
    """Read a YAML mapping, with an error naming the file if it is missing or not a mapping."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"config file {str(path)!r} does not exist")
    data = yaml.safe_load(path.read_text())
    if not isinstance(data, Mapping):
        raise ValueError(f"{str(path)!r} must hold a YAML mapping; got {type(data).__name__}")
    return dict(data)


def compose(files: Sequence[str | os.PathLike], overrides: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Merge experiment config ``files`` in order, then apply dotted ``overrides`` in order."""
    config: dict[str, Any] = {}
    for f in files:
        config = merge_config(config, load_yaml(f))
    for key, value in (overrides or {}).items():
        config = set_dotted(config, key, value)
    return config


# ----------------------------------------------------------------------------- the sweep spec
@dataclass
class SweepPoint:
    """One point of a sweep.

    Attributes:
        labels: ``{axis: value name}``, the point's coordinates (the tables' first columns).
        overrides: dotted-key overrides of the base config, in application order.
        grid: the tuning grid of this point (a one-value grid is a single run).
    """

    labels: dict[str, str]
    overrides: dict[str, Any]
    grid: dict[str, list[Any]]

    @property
    def name(self) -> str:
        """``axis=value/axis=value``: unique within a sweep."""
        return "/".join(f"{k}={v}" for k, v in self.labels.items()) or "base"

    @property
    def slug(self) -> str:
        """:attr:`name` made safe as a folder name."""
        return re.sub(r"[^A-Za-z0-9._=-]+", "_", self.name.replace("/", "__"))


@dataclass
class Sweep:
    """A parsed sweep file (see the module docstring).

    Attributes:
        base: experiment config files, composed in order.
        overrides: dotted overrides applied to every point (before the axes').
        goal: the tuning goal (``privacy``, ``privacy_mia``, ``bias``).
        lambdas: λ values (``None``: the goal's defaults).
        grid: the default grid.
        axes: ``{axis: [(value name, overrides, grid update)]}``.
        output_dir: where results go (a new ``version_<n>`` folder per run); ``None``: not written.
        source: the sweep file's text, saved with the results.
    """

    base: list[Path]
    overrides: dict[str, Any] = field(default_factory=dict)
    goal: str = "privacy"
    lambdas: list[float] | None = None
    grid: dict[str, list[Any]] = field(default_factory=dict)
    axes: dict[str, list[tuple[str, dict[str, Any], dict[str, list[Any]]]]] = field(default_factory=dict)
    output_dir: str | None = None
    source: str = ""

    def __post_init__(self) -> None:
        check_goal(self.goal)
        check_lambdas(self.lambdas, self.goal)
        if not self.base:
            raise ValueError("a sweep needs at least one base config file (base: [file.yaml])")

    def points(self) -> list[SweepPoint]:
        """The product of the axes, first axis outermost (a sweep without axes has one point)."""
        names = list(self.axes)
        points = []
        for combo in itertools.product(*(self.axes[a] for a in names)):
            labels, overrides, grid = {}, dict(self.overrides), copy.deepcopy(self.grid)
            for axis, (value_name, sets, grid_update) in zip(names, combo):
                labels[axis] = value_name
                overrides.update(sets)
                grid.update(copy.deepcopy(grid_update))
            if not grid:
                raise ValueError(
                    f"point {labels} has an empty grid; give a default grid (grid: {{max_epochs: [3]}}) or one per axis value"
                )
            points.append(SweepPoint(labels, overrides, grid))
        return points

    def config(self, point: SweepPoint) -> dict[str, Any]:
        """The full experiment config of ``point``."""
        return compose(self.base, point.overrides)


def _parse_axis(axis: str, spec: Any) -> list[tuple[str, dict[str, Any], dict[str, list[Any]]]]:
    if isinstance(spec, Mapping):
        unknown = sorted(set(spec) - {"key", "values", "grid"})
        if unknown or "key" not in spec or "values" not in spec:
            raise ValueError(
                f"axis {axis!r}: the short form is {{key: dotted.path, values: [...]}} (optional grid); got keys {sorted(spec)}"
            )
        values = spec["values"]
        if not isinstance(values, list) or not values:
            raise ValueError(f"axis {axis!r}: values must be a non-empty list; got {values!r}")
        return [(str(v), {str(spec["key"]): v}, dict(spec.get("grid") or {})) for v in values]
    if not isinstance(spec, list) or not spec:
        raise ValueError(
            f"axis {axis!r} must be a non-empty list of {{name, set, grid}} entries or {{key, values}}; got {spec!r}"
        )
    out = []
    for k, entry in enumerate(spec):
        if not isinstance(entry, Mapping) or "name" not in entry or set(entry) - {"name", "set", "grid"}:
            raise ValueError(
                f"axis {axis!r} entry {k} must be a mapping with 'name' and optional 'set' (dotted overrides) "
                f"and 'grid'; got {entry!r}"
            )
        out.append((str(entry["name"]), dict(entry.get("set") or {}), dict(entry.get("grid") or {})))
    names = [n for n, _, _ in out]
    duplicated = sorted({n for n in names if names.count(n) > 1})
    if duplicated:
        raise ValueError(f"axis {axis!r} names {duplicated} more than once; give each value a unique name")
    return out


def load_sweep(
    path: str | os.PathLike,
    overrides: Mapping[str, Any] | None = None,
    *,
    extra_base: Sequence[str | os.PathLike] = (),
    only: Mapping[str, Sequence[str]] | None = None,
) -> Sweep:
    """Parse a sweep file.

    Args:
        path: the sweep file.
        overrides: dotted keys of the sweep file itself, changed before it is parsed (e.g.
            ``{"axes.width.values": [0.125]}``, ``{"set.data.init_args.train_size": 2000}``): a
            notebook or a quick test shrinks a sweep this way without a second file.
        extra_base: more experiment config files composed after the sweep's ``base`` (e.g. the
            ``data_digits.yaml`` overlay); relative paths are taken as given (from the caller's
            working directory).
        only: ``{axis: [value names]}``: keep only these values of an axis, in the file's order.

    Raises:
        ValueError: on unknown keys or malformed axes, naming the bad value and the allowed form.
    """
    path = Path(path)
    raw: dict[str, Any] = load_yaml(path)
    for key, value in (overrides or {}).items():
        raw = _set_plain(raw, key, value)
    unknown = sorted(set(raw) - set(SWEEP_KEYS))
    if unknown:
        raise ValueError(f"unknown sweep keys {unknown} in {str(path)!r}; allowed: {list(SWEEP_KEYS)}")
    base = raw.get("base")
    base_list = [base] if isinstance(base, str) else list(base or [])
    files = [p if p.is_absolute() else path.parent / p for p in map(Path, base_list)]
    axes = raw.get("axes") or {}
    if not isinstance(axes, Mapping):
        raise ValueError(f"axes must be a mapping {{axis: values}}; got {axes!r}")
    parsed_axes = {str(a): _parse_axis(str(a), s) for a, s in axes.items()}
    for axis, names in (only or {}).items():
        if axis not in parsed_axes:
            raise ValueError(f"only= names axis {axis!r}, but the sweep's axes are {list(parsed_axes)}")
        known = [n for n, _, _ in parsed_axes[axis]]
        unknown = [n for n in names if n not in known]
        if unknown or not names:
            raise ValueError(f"only[{axis!r}] = {list(names)}: unknown or empty; the axis values are {known}")
        parsed_axes[axis] = [v for v in parsed_axes[axis] if v[0] in names]
    return Sweep(
        base=files + [Path(p) for p in extra_base],
        overrides=dict(raw.get("set") or {}),
        goal=str(raw.get("goal", "privacy")),
        lambdas=raw.get("lambdas"),
        grid=dict(raw.get("grid") or {}),
        axes=parsed_axes,
        output_dir=raw.get("output_dir"),
        source=yaml.safe_dump(raw, sort_keys=False),
    )


def _set_plain(raw: Mapping[str, Any], key: str, value: Any) -> dict[str, Any]:
    """Set a dotted key of the sweep file itself, replacing (not merging) the value.

    ``set.<dotted experiment key>`` addresses one entry of the sweep's ``set`` mapping, whose keys
    are themselves dotted (``set.data.init_args.train_size`` → ``set["data.init_args.train_size"]``).
    """
    out = copy.deepcopy(dict(raw))
    if key.startswith("set."):
        out["set"] = {**(out.get("set") or {}), key[len("set."):]: value}
        return out
    parts = key.split(".")
    node = out
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, Mapping):
            raise ValueError(f"sweep override {key!r}: {part!r} is not a mapping in the sweep file; its keys are {list(node)}")
        node[part] = dict(child)
        node = node[part]
    node[parts[-1]] = value
    return out


# ----------------------------------------------------------------------------- building a point
def build_point(config: Mapping[str, Any]) -> tuple[Any, Any, Any, int]:
    """Instantiate ``config`` with the ``unlearn-pl`` CLI's parser (seeded as the CLI seeds).

    Returns:
        ``(module, datamodule, trainer settings, seed)``.
    """
    import sys
    import warnings

    from unlearn_pl.cli import UnlearningCLI  # the CLI imports this package: import it late

    argv = sys.argv
    try:
        # LightningCLI warns when it sees both `args` and command-line arguments (ours, or a
        # kernel's): the config here is complete, so hide the caller's argv from it.
        sys.argv = argv[:1]
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            cli = UnlearningCLI(args=dict(config), run=False)
    finally:
        sys.argv = argv
    seed = config.get("seed_everything", 0)
    seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
    return cli.model, cli.datamodule, cli.trainer.tuning_settings, seed


# ----------------------------------------------------------------------------- results
@dataclass
class PointResult:
    """A finished sweep point.

    Attributes:
        point: the point.
        tuning: its tuning result (every candidate, the choice per λ, the reference models).
        seconds: wall time of the point (building, reference models if not cached, every candidate).
        networks: ``{candidate index: unlearned network}`` when the sweep keeps models, else empty.
        module: the point's prepared template module (original/oracle inside) when models are kept.
        datamodule: the point's data module when models are kept.
    """

    point: SweepPoint
    tuning: TuningResult
    seconds: float
    networks: dict[int, nn.Module] = field(default_factory=dict)
    module: Any = None
    datamodule: Any = None

    def chosen_network(self, lam: float) -> nn.Module:
        """The unlearned network chosen for ``lam`` (needs ``run_sweep(keep_models=True)``)."""
        index = self.tuning.chosen(lam).index
        if index not in self.networks:
            raise KeyError(f"candidate {index} of {self.point.name} was not kept; run the sweep with keep_models=True")
        return self.networks[index]


@dataclass
class SweepResult:
    """All points of a sweep, with flat tables for plots and files.

    Attributes:
        sweep: the sweep that ran.
        points: one result per point, in order.
        output_dir: where the tables were written (``None`` if not written).
    """

    sweep: Sweep
    points: list[PointResult]
    output_dir: Path | None = None

    def candidate_rows(self) -> list[dict[str, Any]]:
        """One row per trained candidate: axes, grid point, seconds, metrics, goals, J per λ,
        and the λ values it was chosen for (validation only decides)."""
        rows = []
        for pr in self.points:
            chosen: dict[int, list[str]] = {}
            for lam, i in pr.tuning.selection.items():
                chosen.setdefault(i, []).append(f"{lam:g}")
            for c in pr.tuning.candidates:
                rows.append({
                    **pr.point.labels, "candidate": c.index, **{f"param_{k}": v for k, v in c.params.items()},
                    **c.metrics, **{f"goal_{g}": v for g, v in c.goals.items()},
                    **{f"J({lam:g})": v for lam, v in c.objective.items()},
                    "chosen_for_lambda": ";".join(chosen.get(c.index, [])),
                })
        return rows

    def selection_rows(self) -> list[dict[str, Any]]:
        """One row per point and λ: the chosen candidate's grid point, J, goal and all metrics."""
        rows = []
        for pr in self.points:
            t = pr.tuning
            for lam in t.lambdas:
                c: CandidateResult = t.chosen(lam)
                rows.append({
                    **pr.point.labels, "lambda": lam, "candidate": c.index,
                    **{f"param_{k}": v for k, v in c.params.items()}, "J": c.objective[lam],
                    "goal": t.goal, "goal_value": c.goals[t.goal], **c.metrics,
                    **{f"goal_{g}": v for g, v in c.goals.items()},
                })
        return rows

    def reference_rows(self) -> list[dict[str, Any]]:
        """One row per point and reference model (original, oracle): their metrics and goals."""
        rows = []
        for pr in self.points:
            for model, values in pr.tuning.references.items():
                rows.append({
                    **pr.point.labels, "model": model, **values.get("metrics", {}),
                    **{f"goal_{g}": v for g, v in values.get("goals", {}).items()},
                })
        return rows

    def timing_rows(self) -> list[dict[str, Any]]:
        """One row per point: its name, candidates trained and wall seconds."""
        return [{"point": pr.point.name, **pr.point.labels, "candidates": len(pr.tuning.candidates),
                 "seconds": round(pr.seconds, 1)} for pr in self.points]

    def to_dict(self) -> dict[str, Any]:
        """Everything, JSON-ready: the sweep file, and per point its labels, overrides, grid, seconds
        and the full tuning result."""
        return {
            "sweep": self.sweep.source,
            "base": [str(p) for p in self.sweep.base],
            "points": [
                {"name": pr.point.name, "labels": pr.point.labels, "overrides": pr.point.overrides,
                 "grid": pr.point.grid, "seconds": pr.seconds, "tuning": pr.tuning.to_dict()}
                for pr in self.points
            ],
        }

    def write(self, output_dir: str | os.PathLike) -> Path:
        """Write ``candidates.csv``, ``selection.csv``, ``references.csv``, ``timing.csv``,
        ``sweep.json`` and ``sweep.yaml`` into a new ``output_dir/version_<n>`` and return it."""
        target = _new_version_dir(Path(output_dir))
        _write_into(self, target)
        return target


def rows_to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """CSV text of dict rows; the columns are the union of the rows' keys in first-seen order."""
    columns: dict[str, None] = {}
    for r in rows:
        columns.update(dict.fromkeys(r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), restval="")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: (v if isinstance(v, (int, float, str)) or v is None else repr(v)) for k, v in r.items()})
    return buf.getvalue()


def _json_safe(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def _new_version_dir(root: Path) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    version = 0
    while True:
        target = root / f"version_{version}"
        try:
            target.mkdir()  # atomic: fails if another run took this version first
            return target
        except FileExistsError:
            version += 1


# ----------------------------------------------------------------------------- the runner
def run_sweep(
    sweep: Sweep,
    *,
    output_dir: str | os.PathLike | None = None,
    keep_models: bool = False,
    progress: bool = True,
    on_point: Callable[[PointResult], None] | None = None,
    log: Callable[[str], None] | None = print,
) -> SweepResult:
    """Run every point of ``sweep``: build it with the CLI's parser, then :func:`tune` its grid.

    Args:
        sweep: the parsed sweep (:func:`load_sweep`).
        output_dir: where to write the tables (default ``sweep.output_dir``; ``None`` in both:
            nothing is written). Each point's own tuning tables go to ``points/<point>/``.
        keep_models: keep every candidate's unlearned network (on CPU) and each point's template
            module and data module in memory, for plots (:meth:`PointResult.chosen_network`).
        progress: show the tuner's progress bar over each point's candidates.
        on_point: called with each point's result as soon as it finishes.
        log: where to print one line per finished point (``None``: silent).

    Returns:
        The :class:`SweepResult`.
    """
    points = sweep.points()
    out_root = output_dir if output_dir is not None else sweep.output_dir
    target = _new_version_dir(Path(out_root)) if out_root is not None else None
    results: list[PointResult] = []
    for k, point in enumerate(points):
        start = time.perf_counter()
        module, datamodule, settings, seed = build_point(sweep.config(point))
        networks: dict[int, nn.Module] = {}

        def keep(result: CandidateResult, candidate: Any, _networks: dict[int, nn.Module] = networks) -> None:
            _networks[result.index] = copy.deepcopy(candidate.network).cpu().eval()

        tuning = tune(
            module, datamodule, point.grid, goal=sweep.goal, lambdas=sweep.lambdas, trainer=settings, seed=seed,
            output_dir=(target / "points" / point.slug) if target is not None else None,
            progress=progress, on_trained=keep if keep_models else None,
        )
        pr = PointResult(point, tuning, time.perf_counter() - start, networks,
                         module if keep_models else None, datamodule if keep_models else None)
        results.append(pr)
        if log is not None:
            first = tuning.chosen(tuning.lambdas[0])
            log(f"[{k + 1}/{len(points)}] {point.name}: {len(tuning.candidates)} candidate(s) in {pr.seconds:.0f}s; "
                f"chosen for lambda={tuning.lambdas[0]:g}: {first.params} val_acc={first.metrics.get('val_acc', float('nan')):.4f} "
                f"forget_acc={first.metrics.get('forget_acc', float('nan')):.4f} test_acc={first.metrics.get('test_acc', float('nan')):.4f}")
        if on_point is not None:
            on_point(pr)
    result = SweepResult(sweep, results)
    if target is not None:
        _write_into(result, target)
    return result


def _write_into(result: SweepResult, target: Path) -> None:
    # The version folder already exists (point tables were written into it as they finished).
    write_text(target / "candidates.csv", rows_to_csv(result.candidate_rows()))
    write_text(target / "selection.csv", rows_to_csv(result.selection_rows()))
    write_text(target / "references.csv", rows_to_csv(result.reference_rows()))
    write_text(target / "timing.csv", rows_to_csv(result.timing_rows()))
    write_json(target / "sweep.json", _json_safe(result.to_dict()))
    write_text(target / "sweep.yaml", result.sweep.source)
    result.output_dir = target


def _parse_value(text: str) -> Any:
    """A command-line value as YAML (``0.25`` → float, ``[1, 2]`` → list, ``foo`` → str)."""
    return yaml.safe_load(text)


def main(argv: Sequence[str] | None = None) -> SweepResult:
    """``python -m unlearn_pl.tuning.sweep SWEEP.yaml [--sweep-set key=value] [--set key=value]``.

    ``--set`` overrides the experiment config of every point (dotted keys, e.g.
    ``--set data.init_args.train_size=2000``); ``--sweep-set`` changes the sweep file itself
    (e.g. ``--sweep-set axes.width.values=[0.125]``). Prints the choice per point and λ and the
    results folder.
    """
    parser = argparse.ArgumentParser(prog="python -m unlearn_pl.tuning.sweep", description=__doc__.split("\n\n")[0])
    parser.add_argument("sweep", help="the sweep file (YAML), e.g. configs/experiments/width_sweep.yaml")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override of every point's experiment config (dotted key, YAML value)")
    parser.add_argument("--sweep-set", action="append", default=[], metavar="KEY=VALUE",
                        help="override of the sweep file (dotted key, YAML value)")
    parser.add_argument("--output-dir", default=None, help="results folder (default: the sweep file's output_dir)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)

    def pairs(items: list[str], flag: str) -> dict[str, Any]:
        out = {}
        for item in items:
            if "=" not in item:
                parser.error(f"{flag} expects KEY=VALUE; got {item!r}")
            key, value = item.split("=", 1)
            out[key] = _parse_value(value)
        return out

    sweep = load_sweep(args.sweep, pairs(args.sweep_set, "--sweep-set"))
    sweep.overrides.update(pairs(args.set, "--set"))
    result = run_sweep(sweep, output_dir=args.output_dir, progress=not args.no_progress)
    rows = result.selection_rows()
    axes = list(sweep.axes)
    print("\nchosen per point and lambda (validation decides; test is reported only):")
    cols = [*axes, "lambda", "candidate", "val_acc", "goal_value", "forget_acc", "test_acc"]
    print(format_rows(rows, cols))
    print(f"\nresults: {result.output_dir}")
    return result


def format_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A fixed-width text table of ``columns`` of dict rows (floats with 4 decimals)."""
    def cell(v: Any) -> str:
        return f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))

    table = [list(columns)] + [[cell(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


if __name__ == "__main__":
    main()

"""Studies: a base config, a search space and seeds; each trial is one ``unlearn-pl fit`` run.

- The **base config** is ``unlearn-pl fit`` arguments (``--config a.yaml --data.init_args.train_size
  2000``…), composed by the CLI's own parser: every ``class_path`` block and dotted override
  works exactly as in ``fit``.
- The **search space**: named axes (their product: the study's *points*) and a grid of dotted
  keys (its product: each point's *candidates*); an axis value's ``grid`` updates the default::

      grid: {trainer.max_epochs: [2]}
      space:
        width: {key: model.init_args.network.init_args.width, values: [0.125, 0.25]}
        method:
          - name: scrub
            set: {model.init_args.unlearner: {class_path: unlearn_pl.unlearners.SCRUB}}
            grid: {model.init_args.unlearner.init_args.lr: [0.0005, 0.005]}

- **Seeds**: every candidate runs once per seed. A seed sets :data:`SEED_KEYS`: ``seed_everything``
  (the network's initial weights, hence the reference models', and the run's randomness), the
  data's seed (the forget-set draw) and the reference recipe's (their data order); reference
  models are cached per seed by their content hash. Their per-example results are evaluated once
per reference key: every trial gets the study's ``reference_results`` folder
(:class:`~unlearn_pl.reference_results.ReferenceResultsStore`), one file per key.

A trial's metrics are the trainer's ``callback_metrics`` after the run's final validation (as
``EarlyStopping`` reads them); its values are (validation accuracy, goal), both maximized.
The **noise floor** of a point and seed is the gap between its oracle and an independent retrain
(same retain set; model seeds shifted by :data:`NOISE_FLOOR_SEED_OFFSET`), measured by one
validation run without unlearning.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution

from unlearn_pl.tuning.engine import Grid
from unlearn_pl.tuning.objective import check_goal, goal_values

#: The dotted keys a seed sets.
SEED_KEYS: tuple[str, ...] = ("seed_everything", "data.init_args.seed", "model.init_args.references.init_args.recipe.seed")

#: Added to the model seeds (not the data's) for the noise floor's independent retrain.
NOISE_FLOOR_SEED_OFFSET = 1000

#: How a grid study records a trial's seed: any seed in NumPy's range, so a resumed study may add
#: seeds (Optuna refuses to change a categorical parameter's choices within a study).
SEED_DISTRIBUTION = IntDistribution(0, 2**32 - 1)


def stored_seed_choices(study: optuna.Study) -> list[int] | None:
    """The fixed seed choices of a study whose trials drew ``seed`` from a categorical (an open
    search, or a study begun before seeds could be added), or None."""
    for t in study.get_trials(deepcopy=False):
        d = t.distributions.get("seed")
        if d is not None:
            return [int(c) for c in d.choices] if isinstance(d, CategoricalDistribution) else None  # type: ignore[arg-type]
    return None


def claim_run_dir(root: Path, number: int) -> str:
    """A new folder ``root/<number>`` for trial ``number``, or ``<number>.<k>`` when another study
    (an emptied or replaced journal restarts the numbers) left that folder; created here, so two
    processes never share one. Returns the folder's name."""
    root.mkdir(parents=True, exist_ok=True)
    for k in itertools.count():
        name = f"{number}.{k}" if k else str(number)
        try:
            (root / name).mkdir()
            return name
        except FileExistsError:
            continue
    raise AssertionError("unreachable")


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
        raise ValueError(f"space.{axis} must be {{key: dotted.key, values: [...]}} or a non-empty list of "
                         f"{{name, set, grid}} entries; got {spec!r}")
    out = []
    for item in spec:
        if not isinstance(item, Mapping) or "name" not in item or set(item) - {"name", "set", "grid"}:
            raise ValueError(f"space.{axis} entries are {{name, set, grid}} mappings; got {item!r}")
        where = f"space.{axis}[{item['name']!r}]"
        if not isinstance(item.get("set") or {}, Mapping):
            raise ValueError(f"{where}.set must be a mapping of dotted keys; got {item['set']!r}")
        out.append((str(item["name"]), list((item.get("set") or {}).items()), _check_grid(item.get("grid") or {}, f"{where}.grid")))
    if len({name for name, _, _ in out}) != len(out):
        raise ValueError(f"space.{axis} names a value twice: {[name for name, _, _ in out]}")
    return out


def expand_space(space: Mapping[str, Any] | None, grid: Mapping[str, Sequence[Any]] | None) -> list[Candidate]:
    """Every candidate of ``space`` (axes) and ``grid`` (the default grid), points in axis order.

    >>> [c.name for c in expand_space({"w": {"key": "a.w", "values": [1, 2]}}, {"t.e": [3]})]
    ['w=1/e=3', 'w=2/e=3']
    """
    base_grid = _check_grid(grid or {}, "grid")
    axes = [(a, _axis_values(a, spec)) for a, spec in (space or {}).items()]
    candidates = []
    for combo in itertools.product(*(values for _, values in axes)):
        point_grid = dict(base_grid)
        for _, _, update in combo:
            point_grid.update(update)
        labels = tuple((a, name) for (a, _), (name, _, _) in zip(axes, combo))
        overrides = tuple(kv for _, sets, _ in combo for kv in sets)
        for cell in itertools.product(*point_grid.values()):
            params = tuple(zip(point_grid, cell))
            candidates.append(Candidate(labels, params, overrides + params))
    return candidates


def override_args(overrides: Sequence[tuple[str, Any]]) -> list[str]:
    """``--key=value`` CLI arguments: strings as typed on a command line, other values as JSON."""
    return [f"--{key}={value if isinstance(value, str) else json.dumps(value)}" for key, value in overrides]


def run_cli(args: Sequence[str], run: bool = True, **kwargs: Any) -> Any:
    """Run ``unlearn-pl ARGS`` in this process and return the CLI object (its trainer and model).

    With ``run=False``, ``ARGS`` has no subcommand and the CLI only builds the trainer, model and
    data module (``LightningCLI(run=False)``); ``kwargs`` go to the CLI class."""
    from unlearn_pl.cli import UnlearningCLI  # the CLI imports this package

    with warnings.catch_warnings():
        # LightningCLI warns when the process has command-line arguments of its own (the tuner's,
        # a notebook kernel's) besides `args`: these are complete.
        warnings.filterwarnings("ignore", message=".*args parameter is intended to run from within Python.*")
        warnings.filterwarnings("ignore", message=".*LeafSpec.*")
        return UnlearningCLI(args=list(args), run=run, **kwargs)


def callback_metrics(trainer: Any) -> dict[str, float]:
    """The trainer's ``callback_metrics`` as floats, the unlearned model's without their prefix."""
    return {k.removeprefix("unlearned/"): float(v) for k, v in trainer.callback_metrics.items()}


def trial_goals(metrics: Mapping[str, float], loss_attack_on_val: bool) -> dict[str, float]:
    """Every goal computable from a trial's metrics; ``privacy_mia`` needs ``LossAttack(nonmembers=val)``."""
    for need in ("val_acc", "forget_acc"):
        if math.isnan(metrics.get(need, math.nan)):
            raise ValueError(f"the run logged no {need!r} (logged: {sorted(metrics)}); a study needs a validation set "
                             "(data: val_fraction > 0), a forget set and the SplitAccuracy metric")
    attack = metrics.get("mia_loss_acc") if loss_attack_on_val else None
    return goal_values(1.0 - metrics["forget_acc"], 1.0 - metrics["val_acc"], attack)


@dataclass
class StudyObjective:
    """The objective of a study's trials (picklable: worker processes receive it): ``base_args``
    are the base config's ``fit`` arguments, a trial's run folder is ``<folder>/trials/<number>``
    (see :func:`claim_run_dir`), and ``logger_save_dir`` says the base config's logger takes
    ``save_dir``/``name`` (then trials log in the folder too). ``seed_choices``: the categorical
    seeds of a study that has them (:func:`stored_seed_choices`); else seeds are
    :data:`SEED_DISTRIBUTION`'s."""

    base_args: list[str]
    candidates: list[Candidate]
    seeds: list[int]
    goal: str
    folder: str
    seed_keys: list[str] = field(default_factory=lambda: list(SEED_KEYS))
    logger_save_dir: bool = False
    seed_choices: list[int] | None = None

    def __post_init__(self) -> None:
        check_goal(self.goal)
        self.by_name = {c.name: c for c in self.candidates}

    def space(self) -> dict[str, list[Any]]:
        """The Optuna search space: candidate names × seeds."""
        return {"candidate": list(self.by_name), "seed": list(self.seeds)}

    def distributions(self) -> dict[str, BaseDistribution]:
        """How a trial records its candidate and seed."""
        seed = CategoricalDistribution(self.seed_choices) if self.seed_choices is not None else SEED_DISTRIBUTION
        return {"candidate": CategoricalDistribution(list(self.by_name)), "seed": seed}

    def grid(self) -> Grid:
        """Every candidate once per seed, for the engine's queue."""
        return Grid([{"candidate": c, "seed": s} for s in self.seeds for c in self.by_name], self.distributions())

    def suggest_seed(self, trial: optuna.Trial) -> int:
        """The trial's seed."""
        if self.seed_choices is not None:
            return int(trial.suggest_categorical("seed", self.seed_choices))
        return trial.suggest_int("seed", SEED_DISTRIBUTION.low, SEED_DISTRIBUTION.high)

    def suggest(self, trial: optuna.Trial) -> tuple[Candidate, int]:
        """The trial's candidate and seed."""
        return self.by_name[trial.suggest_categorical("candidate", list(self.by_name))], self.suggest_seed(trial)

    def fit_args(self, candidate: Candidate, seed: int, number: int | str, subcommand: str | None = "fit",
                 model_offset: int = 0, subfolder: str = "trials") -> list[str]:
        """The complete ``unlearn-pl`` arguments of one trial (run folder ``<folder>/<subfolder>/<number>``);
        ``subcommand=None`` leaves the subcommand out (for ``run_cli(..., run=False)``)."""
        root = str(Path(self.folder) / subfolder)
        outputs: list[tuple[str, Any]] = [("trainer.default_root_dir", f"{root}/{number}"),
                                          ("model.init_args.reference_results_dir", f"{self.folder}/reference_results")]
        if self.logger_save_dir:
            outputs += [("trainer.logger.init_args.save_dir", root), ("trainer.logger.init_args.name", str(number))]
        seeds = [(k, seed if k.startswith("data.") else seed + model_offset) for k in self.seed_keys]
        return [*([subcommand] if subcommand else []), *self.base_args, *override_args([*candidate.overrides, *seeds, *outputs])]

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        from unlearn_pl.metrics.mia import LossAttack

        candidate, seed = self.suggest(trial)
        run_dir = claim_run_dir(Path(self.folder) / "trials", trial.number)
        trial.set_user_attr("run_dir", f"trials/{run_dir}")
        start = time.perf_counter()
        cli = run_cli(self.fit_args(candidate, seed, run_dir))
        metrics = {**callback_metrics(cli.trainer), "seconds": time.perf_counter() - start}
        on_val = any(isinstance(m, LossAttack) and m.nonmembers == "val" for m in cli.model.metrics)
        if self.goal == "privacy_mia" and not on_val:
            raise ValueError("goal privacy_mia needs the loss attack against validation data: add "
                             "{class_path: unlearn_pl.metrics.LossAttack, init_args: {nonmembers: val}} to model.init_args.metrics")
        goals = trial_goals(metrics, on_val)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("goals", goals)
        return metrics["val_acc"], goals[self.goal]


@dataclass
class NoiseFloorObjective:
    """Noise-floor trials: per point and seed, one validation with the model seeds shifted, whose
    ``oracle/*`` metrics are an independent retrain's (same forget draw and retain set).

    Nothing is unlearned in these runs, so they validate through the trainer directly, with the
    results table off: ``unlearn-pl validate`` rightly refuses to run without an unlearned checkpoint."""

    study: StudyObjective

    def points(self) -> dict[str, Candidate]:
        """One candidate per point (the reference models do not depend on the grid)."""
        return {c.point: c for c in reversed(self.study.candidates)}

    def space(self) -> dict[str, list[Any]]:
        return {"point": sorted(self.points()), "seed": list(self.study.seeds)}

    def grid(self) -> Grid:
        """Every point once per seed, for the engine's queue."""
        d = {"point": CategoricalDistribution(sorted(self.points())), "seed": self.study.distributions()["seed"]}
        return Grid([{"point": p, "seed": s} for s in self.study.seeds for p in sorted(self.points())], d)

    def __call__(self, trial: optuna.Trial) -> float:
        candidate = self.points()[trial.suggest_categorical("point", sorted(self.points()))]
        seed = self.study.suggest_seed(trial)
        run_dir = claim_run_dir(Path(self.study.folder) / "noise_floor", trial.number)
        args = self.study.fit_args(candidate, seed, run_dir, None, NOISE_FLOOR_SEED_OFFSET, "noise_floor")
        cli = run_cli([*args, "--model.init_args.report=false"], run=False)
        cli.model.prepare_models(cli.datamodule)
        cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)
        metrics = {k: v for k, v in callback_metrics(cli.trainer).items() if k.startswith("oracle/")}
        if not metrics:
            raise ValueError("the noise floor needs an oracle (references: oracle true)")
        trial.set_user_attr("metrics", metrics)
        return metrics.get("oracle/val_acc", math.nan)

"""A study's trials: each one ``unlearn-pl fit`` run, started by the trial runner the study is given.

- The **base config** is ``unlearn-pl fit`` arguments (``--config a.yaml --data.init_args.train_size
  2000``…), composed by the CLI's own parser: every ``class_path`` block and dotted override
  works exactly as in ``fit``. The search space is :mod:`~unlearn_pl.tuning.space`'s.
- The **trial runner** (:class:`TrialRunner`) runs ``unlearn-pl ARGS`` in the calling process and
  returns the CLI object; the command line passes its own (:func:`unlearn_pl.cli.run_cli`). It is
  a top-level function: worker processes receive it, pickled with the objective.
- **Seeds**: every candidate runs once per seed. A seed sets :data:`SEED_KEYS`: ``seed_everything``
  (the network's initial weights, hence the reference models', and the run's randomness), the
  data's seed (the forget-set draw) and the reference recipe's (their data order); reference
  models are cached per seed by their content hash. Their per-example results are evaluated once
  per reference key: every trial gets the study's ``reference_results`` folder
  (:class:`~unlearn_pl.references.ReferenceResultsStore`), one file per key.

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
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, cast

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, IntDistribution
from optuna.trial import FrozenTrial

from unlearn_pl.names import FORGET_ACC, MIA_LOSS_ACC, ORACLE, SECONDS, UNLEARNED, VAL_ACC, logged
from unlearn_pl.tuning.engine import Grid
from unlearn_pl.tuning.objective import check_goal, goal_values
from unlearn_pl.tuning.space import Candidate, override_args


class TrialRunner(Protocol):
    """Runs ``unlearn-pl ARGS`` in this process and returns the CLI object (``trainer``, ``model``,
    ``datamodule``, ``parser``, ``config``). With ``run=False`` the arguments have no subcommand and
    it only builds them (``LightningCLI(run=False)``); ``kwargs`` go to the CLI class."""

    def __call__(self, args: Sequence[str], run: bool = True, **kwargs: Any) -> Any: ...


#: The dotted keys a seed sets.
SEED_KEYS: tuple[str, ...] = (
    "seed_everything",
    "data.init_args.seed",
    "model.init_args.references.init_args.recipe.seed",
)

#: Added to the model seeds (not the data's) for the noise floor's independent retrain.
NOISE_FLOOR_SEED_OFFSET = 1000

#: Dotted keys that change only what is unlearned, never a run's oracle or how it is scored: points
#: whose overrides differ only under these keys share one noise-floor run per seed.
UNLEARNING_ONLY_KEYS: tuple[str, ...] = ("model.init_args.localizer", "model.init_args.unlearner", "trainer.max_epochs")


def floor_key(candidate: Candidate) -> str:
    """What a point's noise-floor run depends on: its overrides outside :data:`UNLEARNING_ONLY_KEYS`
    (a key set as a whole mapping, such as ``model.init_args``, counts: sharing only where sure)."""
    kept = [
        (k, v) for k, v in candidate.overrides if not any(k == p or k.startswith(f"{p}.") for p in UNLEARNING_ONLY_KEYS)
    ]
    return json.dumps(kept, sort_keys=True, default=str)


#: How a grid study records a trial's seed: any seed in NumPy's range, so a resumed study may add
#: seeds (Optuna refuses to change a categorical parameter's choices within a study).
SEED_DISTRIBUTION = IntDistribution(0, 2**32 - 1)


def stored_seed_choices(study: optuna.Study) -> list[int] | None:
    """The fixed seed choices of a study whose trials drew ``seed`` from a categorical (an open
    search, or a study begun before seeds could be added), or None."""
    for t in study.get_trials(deepcopy=False):
        d = t.distributions.get("seed")
        if d is not None:
            # A seed's choices are the ints the study was given (Optuna types them as any categorical value).
            return (
                [int(c) for c in cast("tuple[int, ...]", d.choices)] if isinstance(d, CategoricalDistribution) else None
            )
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


def callback_metrics(trainer: Any) -> dict[str, float]:
    """The trainer's ``callback_metrics`` as floats, the unlearned model's without their prefix."""
    return {k.removeprefix(logged(UNLEARNED, "")): float(v) for k, v in trainer.callback_metrics.items()}


def trial_goals(metrics: Mapping[str, float], loss_attack_on_val: bool) -> dict[str, float]:
    """Every goal computable from a trial's metrics; ``privacy_mia`` needs ``LossAttack(nonmembers=val)``."""
    for need in (VAL_ACC, FORGET_ACC):
        if math.isnan(metrics.get(need, math.nan)):
            raise ValueError(
                f"the run logged no {need!r} (logged: {sorted(metrics)}); a study needs a validation set "
                "(data: val_fraction > 0), a forget set and the SplitAccuracy metric"
            )
    attack = metrics.get(MIA_LOSS_ACC) if loss_attack_on_val else None
    return goal_values(1.0 - metrics[FORGET_ACC], 1.0 - metrics[VAL_ACC], attack)


@dataclass
class StudyObjective:
    """The objective of a study's trials (picklable: worker processes receive it): ``base_args``
    are the base config's ``fit`` arguments, a trial's run folder is ``<folder>/trials/<number>``
    (see :func:`claim_run_dir`), and ``logger_save_dir`` says the base config's logger takes
    ``save_dir``/``name`` (then trials log in the folder too). ``seed_choices``: the categorical
    seeds of a study that has them (:func:`stored_seed_choices`); else seeds are
    :data:`SEED_DISTRIBUTION`'s. ``runner`` runs each trial (:class:`TrialRunner`)."""

    base_args: list[str]
    candidates: list[Candidate]
    seeds: list[int]
    goal: str
    folder: str
    seed_keys: list[str] = field(default_factory=lambda: list(SEED_KEYS))
    logger_save_dir: bool = False
    seed_choices: list[int] | None = None
    runner: TrialRunner = field(kw_only=True)

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
        """Every candidate once per seed, for the engine's queue: the seeds of a candidate one after
        another, so that concurrent workers start on different seeds, whose reference models differ
        and train in parallel (the same seed's would wait on one another's cache lock)."""
        return Grid([{"candidate": c, "seed": s} for c in self.by_name for s in self.seeds], self.distributions())

    def suggest_seed(self, trial: optuna.Trial) -> int:
        """The trial's seed."""
        if self.seed_choices is not None:
            return int(trial.suggest_categorical("seed", self.seed_choices))
        return trial.suggest_int("seed", SEED_DISTRIBUTION.low, SEED_DISTRIBUTION.high)

    def suggest(self, trial: optuna.Trial) -> tuple[Candidate, int]:
        """The trial's candidate and seed."""
        return self.by_name[trial.suggest_categorical("candidate", list(self.by_name))], self.suggest_seed(trial)

    def fit_args(
        self,
        candidate: Candidate,
        seed: int,
        number: int | str,
        subcommand: str | None = "fit",
        model_offset: int = 0,
        subfolder: str = "trials",
    ) -> list[str]:
        """The complete ``unlearn-pl`` arguments of one trial (run folder ``<folder>/<subfolder>/<number>``);
        ``subcommand=None`` leaves the subcommand out (for the runner's ``run=False``)."""
        root = str(Path(self.folder) / subfolder)
        outputs: list[tuple[str, Any]] = [
            ("trainer.default_root_dir", f"{root}/{number}"),
            ("model.init_args.reference_results_dir", f"{self.folder}/reference_results"),
        ]
        if self.logger_save_dir:
            outputs += [("trainer.logger.init_args.save_dir", root), ("trainer.logger.init_args.name", str(number))]
        seeds = [(k, seed if k.startswith("data.") else seed + model_offset) for k in self.seed_keys]
        return [
            *([subcommand] if subcommand else []),
            *self.base_args,
            *override_args([*candidate.overrides, *seeds, *outputs]),
        ]

    def __call__(self, trial: optuna.Trial) -> tuple[float, float]:
        from unlearn_pl.metrics.mia import LossAttack

        candidate, seed = self.suggest(trial)
        run_dir = claim_run_dir(Path(self.folder) / "trials", trial.number)
        trial.set_user_attr("run_dir", f"trials/{run_dir}")
        start = time.perf_counter()
        cli = self.runner(self.fit_args(candidate, seed, run_dir))
        metrics = {**callback_metrics(cli.trainer), SECONDS: time.perf_counter() - start}
        on_val = any(isinstance(m, LossAttack) and m.nonmembers == "val" for m in cli.model.metrics)
        if self.goal == "privacy_mia" and not on_val:
            raise ValueError(
                "goal privacy_mia needs the loss attack against validation data: add "
                "{class_path: unlearn_pl.metrics.LossAttack, init_args: {nonmembers: val}} to model.init_args.metrics"
            )
        goals = trial_goals(metrics, on_val)
        trial.set_user_attr("metrics", metrics)
        trial.set_user_attr("goals", goals)
        # The reference models' training curves, so a study's journal shows whether they converged.
        if curves := getattr(getattr(cli.model, "references", None), "histories", None):
            trial.set_user_attr("reference_curves", curves)
        return self.objective_values(metrics, goals)

    def objective_values(self, metrics: dict[str, float], goals: dict[str, float]) -> tuple[float, float]:
        """A trial's objective values: validation accuracy and the study's goal."""
        return metrics[VAL_ACC], goals[self.goal]

    def values_of(self, trial: FrozenTrial) -> tuple[float, float]:
        """A completed trial's objective values from the metrics and goals it recorded: also for a
        trial copied from a study of another goal."""
        return self.objective_values(trial.user_attrs["metrics"], trial.user_attrs["goals"])


@dataclass
class NoiseFloorObjective:
    """Noise-floor trials: per seed and point (one for the points that :meth:`shared` groups), one
    validation with the model seeds shifted, whose ``oracle/*`` metrics are an independent
    retrain's (same forget draw and retain set).

    Nothing is unlearned in these runs, so they validate through the trainer directly, with the
    results table off: ``unlearn-pl validate`` rightly refuses to run without an unlearned checkpoint."""

    study: StudyObjective

    def points(self) -> dict[str, Candidate]:
        """One candidate per point (the reference models do not depend on the grid)."""
        return {c.point: c for c in reversed(self.study.candidates)}

    def shared(self) -> dict[str, str]:
        """Each point → the point whose noise-floor runs it uses: the first, in sorted order, of the
        points with its :func:`floor_key` (DEL and Random at any budget share their retrains)."""
        points, first = self.points(), dict[str, str]()
        return {p: first.setdefault(floor_key(points[p]), p) for p in sorted(points)}

    def grid(self) -> Grid:
        """The points that run, once per seed, for the engine's queue. The distribution lists every
        point, so a study whose floor ran per point resumes and keeps those runs."""
        d = {"point": CategoricalDistribution(sorted(self.points())), "seed": self.study.distributions()["seed"]}
        runs = sorted(set(self.shared().values()))
        return Grid([{"point": p, "seed": s} for s in self.study.seeds for p in runs], d)

    def __call__(self, trial: optuna.Trial) -> float:
        candidate = self.points()[trial.suggest_categorical("point", sorted(self.points()))]
        seed = self.study.suggest_seed(trial)
        run_dir = claim_run_dir(Path(self.study.folder) / "noise_floor", trial.number)
        args = self.study.fit_args(candidate, seed, run_dir, None, NOISE_FLOOR_SEED_OFFSET, "noise_floor")
        cli = self.study.runner([*args, "--model.init_args.report=false"], run=False)
        cli.model.prepare_models(cli.datamodule)
        cli.trainer.validate(cli.model, datamodule=cli.datamodule, verbose=False)
        metrics = {k: v for k, v in callback_metrics(cli.trainer).items() if k.startswith(logged(ORACLE, ""))}
        if not metrics:
            raise ValueError("the noise floor needs an oracle (references: oracle true)")
        trial.set_user_attr("metrics", metrics)
        return metrics.get(logged(ORACLE, VAL_ACC), math.nan)

"""Run a study (:mod:`unlearn_pl.tuning.study`) on the engine and write its results.

:func:`run_study` creates or resumes the Optuna study, runs its trials (and the noise floor's) with
:func:`~unlearn_pl.tuning.engine.run_trials`, then writes into the study folder:

- ``study.log``: the Optuna journal storage (unless ``storage`` names another), which
  ``optuna-dashboard study.log`` opens;
- ``trials.csv``: every trial (state, axes, grid params, seed, duration, metrics, goals, J(λ), error);
- ``selection.csv``: per point and λ, the choice per seed and every metric's mean with its 95%
  t-interval over seeds (n given), the noise floor next to the gaps to the oracle;
- ``differences.csv``: paired differences along each axis with their 95% CIs;
- ``pareto.png`` and ``differences.png`` (also sent to the Lightning logger, if one takes figures);
- ``study.json``: the study's settings and trial counts per state.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from unlearn_pl._io import write_json, write_text
from unlearn_pl.metrics.report import format_rows, jsonable, rows_to_csv
from unlearn_pl.tuning import results as res
from unlearn_pl.tuning.engine import journal_storage, open_storage, run_trials
from unlearn_pl.tuning.objective import check_goal, check_lambdas
from unlearn_pl.tuning.study import SEED_KEYS, NoiseFloorObjective, StudyObjective, expand_space

#: Study user attr holding the candidate names: a resumed study must have the same.
CANDIDATES_ATTR = "candidates"


@dataclass
class StudyResult:
    """A finished study: its folder, the Optuna study and the tables' rows."""

    folder: Path
    study: optuna.Study
    trials: list[dict[str, Any]]
    selection: list[dict[str, Any]]
    differences: list[dict[str, Any]]
    files: list[Path] = field(default_factory=list)


def _create(name: str, storage: Any, sampler: Any, directions: Sequence[str], names: list[str]) -> None:
    study = optuna.create_study(study_name=name, storage=storage, sampler=sampler, directions=list(directions),
                                load_if_exists=True)
    known = study.user_attrs.get(CANDIDATES_ATTR)
    if known is None:
        study.set_user_attr(CANDIDATES_ATTR, names)
    elif known != names:
        raise ValueError(f"study {name!r} in this storage was created with another search space "
                         f"({len(known)} candidates, now {len(names)}); give another --study_name or output_dir")


def run_study(
    base_args: Sequence[str],
    *,
    space: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    seeds: Sequence[int] = (0,),
    goal: str = "privacy",
    lambdas: Sequence[float] | None = None,
    search: str = "grid",
    n_trials: int | None = None,
    workers: int = 1,
    storage: str | os.PathLike | optuna.storages.BaseStorage | None = None,
    study_name: str = "study",
    output_dir: str | os.PathLike = "runs/studies",
    seed_keys: Sequence[str] = SEED_KEYS,
    noise_floor: bool = True,
    logger_save_dir: bool = False,
    logger: Any = None,
    quiet: bool = False,
) -> StudyResult:
    """Run (or resume) a study and write its tables into ``<output_dir>/<study_name>``.

    Args:
        base_args: ``unlearn-pl fit`` arguments of the base config (``["--config", "a.yaml", …]``).
        space, grid: the axes and the default grid (see :mod:`unlearn_pl.tuning.study`).
        seeds: every candidate runs once per seed.
        goal: ``privacy``, ``privacy_mia`` or ``bias``; ``lambdas``: λ values (default: the goal's).
        search: ``grid`` (every candidate × seed once) or ``open`` (multi-objective TPE, ``n_trials``).
        n_trials: total trials of an open search (ignored by the grid).
        workers: processes on this machine; ``storage``/``study_name``: an RDB URL and name to share
            the study with other machines (default storage: ``study.log`` in the study folder).
        seed_keys: the dotted keys a seed sets.
        noise_floor: also measure the oracle-vs-independent-retrain gap per point and seed.
        logger_save_dir: the base config's logger takes ``save_dir``/``name`` (trials log under the folder).
        logger: a Lightning logger that receives the plots.
        quiet: do not print the selection table.
    """
    check_goal(goal)
    lams = check_lambdas(lambdas, goal)
    if search not in ("grid", "open"):
        raise ValueError(f"search must be 'grid' or 'open'; got {search!r}")
    if not seeds or len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be a non-empty list of distinct integers; got {list(seeds)}")
    if search == "open" and n_trials is None:
        raise ValueError("an open search needs n_trials (the grid runs every candidate × seed once)")
    candidates = expand_space(space, grid)
    folder = Path(output_dir) / study_name
    folder.mkdir(parents=True, exist_ok=True)
    storage = open_storage(storage) if storage is not None else journal_storage(folder / "study.log")
    objective = StudyObjective(list(base_args), candidates, list(seeds), goal, str(folder), list(seed_keys), logger_save_dir)
    sampler: optuna.samplers.BaseSampler = (
        optuna.samplers.GridSampler(objective.space(), seed=0) if search == "grid"
        else optuna.samplers.TPESampler(seed=0, multivariate=True)
    )
    directions = ("maximize", "maximize")
    _create(study_name, storage, sampler, directions, [c.name for c in candidates])
    study = run_trials(objective, study_name=study_name, storage=storage, sampler=sampler, directions=directions,
                       n_trials=n_trials if search == "open" else None, workers=workers)
    floor = None
    if noise_floor:
        floor_objective = NoiseFloorObjective(objective)
        floor = run_trials(floor_objective, study_name=f"{study_name}.noise_floor", storage=storage,
                           sampler=optuna.samplers.GridSampler(floor_objective.space(), seed=0), workers=workers)
    return write_results(study, floor, objective, lams, folder, search=search, logger=logger, quiet=quiet,
                         settings={"base_args": list(base_args), "space": space, "grid": grid, "search": search,
                                   "n_trials": n_trials, "seed_keys": list(seed_keys)})


def write_results(study: optuna.Study, floor: optuna.Study | None, objective: StudyObjective, lambdas: Sequence[float],
                  folder: Path, *, search: str = "grid", logger: Any = None, quiet: bool = False,
                  settings: Mapping[str, Any] | None = None) -> StudyResult:
    """Build the tables and plots of a study from its storage and write them into ``folder``."""
    by_name = {c.name: c for c in objective.candidates}
    labels = {c.point: dict(c.labels) for c in objective.candidates}
    axes: dict[str, list[str]] = {}
    for c in objective.candidates:
        for axis, value in c.labels:
            axes.setdefault(axis, [])
            if value not in axes[axis]:
                axes[axis].append(value)
    trials = res.trial_rows(study, by_name, objective.goal, lambdas)
    chosen = res.chosen_per_seed(study, by_name, objective.goal, lambdas)
    floors = res.noise_floor(study, floor, by_name)
    selection = res.selection_rows(chosen, floors, labels)
    differences = res.difference_rows(chosen, floors, labels, axes)
    files = [
        write_text(folder / "trials.csv", rows_to_csv(trials)),
        write_text(folder / "selection.csv", rows_to_csv(selection)),
        write_text(folder / "differences.csv", rows_to_csv(differences)),
    ]
    states: dict[str, int] = {}
    for row in trials:
        states[row["state"]] = states.get(row["state"], 0) + 1
    summary = {**(settings or {}), "study_name": study.study_name, "goal": objective.goal, "lambdas": list(lambdas),
               "seeds": objective.seeds, "trials": states,
               "confidence_interval": "95% Student t-interval over seeds (scipy.stats.t); differences paired by seed",
               "pareto_front": [t.number for t in study.best_trials] if search == "open" else None}
    files.append(write_json(folder / "study.json", jsonable(summary)))
    if selection:
        files.append(res.save_figure(res.pareto_figure(trials, selection, objective.goal), folder / "pareto.png", logger))
    figure = res.difference_figure(differences) if differences else None
    if figure is not None:
        files.append(res.save_figure(figure, folder / "differences.png", logger))
    if not quiet:
        columns = [*axes, "lambda", "n", "val_acc", "val_acc_ci_low", "val_acc_ci_high", "goal", "forget_acc", "test_acc"]
        print(f"\nchosen per point and lambda (goal {objective.goal}; validation decides, test is reported only; "
              f"mean and 95% CI over seeds):\n{format_rows(selection, columns)}\n\ntrials: {states}\nresults: {folder}\n",
              flush=True)
    return StudyResult(folder, study, trials, selection, differences, files)

"""Run a study (:mod:`unlearn_pl.tuning.study`) on the engine, then read its results.

:func:`run_study` creates or resumes the Optuna study, runs its trials and the noise floor's with
:func:`~unlearn_pl.tuning.engine.run_trials`, and writes into the study folder

- ``study.log``: the Optuna journal (unless ``storage`` names another; ``optuna-dashboard study.log``);
- ``trials.csv``: every trial that drew its parameters (state, axes, grid params, seed, duration,
  metrics, goals, J(λ), error, run folder, ``retry_of``);
- ``selection.csv``: per point and λ the choice per seed (argmax J(λ) over the seed's completed
  candidates; :func:`parse_chosen` reads it back) and each metric's mean with its 95% t-interval
  over seeds (n given), the noise floor ``<split>_acc_gap_noise_floor`` next to each gap to the
  oracle; ``n_per_cell`` (completed seeds per grid cell) and ``missing`` (each cell and seed
  without a completed trial, and why), also for a point none of whose trials completed;
- ``differences.csv``: along each axis, every value minus the first, paired by seed, with 95% CIs;
- ``noise_floor.csv``: per point and seed, ``|acc(oracle) − acc(independent retrain)|`` per split
  (for paired comparisons of a gap with its own seed's floor);
- ``pareto.png``, ``differences.png`` (also sent to a Lightning logger that takes figures) and
  ``study.json`` (settings, trial counts per state).
"""

from __future__ import annotations

import contextlib
import math
import os
import re
import tempfile
import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import optuna
import yaml
from optuna.trial import TrialState

from unlearn_pl.report import format_rows, jsonable, rows_to_csv
from unlearn_pl.stats import mean_ci, paired_difference
from unlearn_pl.tuning.checks import check_candidates, check_seeds
from unlearn_pl.tuning.engine import (
    HEARTBEAT_INTERVAL,
    StudyInterrupted,
    WorkerDied,
    final_failure,
    journal_storage,
    open_storage,
    run_trials,
    trial_cell,
)
from unlearn_pl.tuning.objective import check_lambdas, select
from unlearn_pl.tuning.objective import objective as j_value
from unlearn_pl.tuning.study import (
    SEED_KEYS,
    Candidate,
    NoiseFloorObjective,
    StudyObjective,
    expand_space,
    short_key,
    stored_seed_choices,
)
from unlearn_pl.utils.io import write_json, write_text

#: Metrics shown first in the tables (when present).
KEY_METRICS = ("J", "goal", "val_acc", "forget_acc", "test_acc", "retain_acc")

#: ``{point: {λ: ({seed: chosen candidate's metrics}, {seed: its name})}}``.
Chosen = dict[str, dict[float, tuple[dict[int, dict[str, float]], dict[int, str]]]]


@dataclass
class StudyResult:
    """A finished study: its folder, the Optuna study and the tables' rows."""

    folder: Path
    study: optuna.Study
    trials: list[dict[str, Any]]
    selection: list[dict[str, Any]]
    differences: list[dict[str, Any]]
    files: list[Path] = field(default_factory=list)
    incomplete: list[str] = field(default_factory=list)

    def incomplete_line(self, shown: int = 4) -> str:
        """One line naming the cells without a completed trial and how to run them again."""
        n = len(self.incomplete)
        listed = "; ".join(self.incomplete[:shown]) + ("; …" if n > shown else "")
        return (f"{n} cell(s) of study {self.study.study_name!r} have no completed trial: {listed}. Their errors are in "
                f"{self.folder / 'trials.csv'}; fix the cause, then run the same command with --retry_failed true")


def run_study(
    base_args: Sequence[str], *, space: Mapping[str, Any] | None = None, grid: Mapping[str, Sequence[Any]] | None = None,
    seeds: Sequence[int] = (0,), goal: str = "privacy", lambdas: Sequence[float] | None = None, search: str = "grid",
    n_trials: int | None = None, workers: int = 1, storage: str | os.PathLike | optuna.storages.BaseStorage | None = None,
    study_name: str = "study", output_dir: str | os.PathLike = "runs/studies", seed_keys: Sequence[str] = SEED_KEYS,
    noise_floor: bool = True, logger_save_dir: bool = False, logger: Any = None, quiet: bool = False,
    base_config: str | None = None, retry_failed: bool = False, heartbeat_interval: int = HEARTBEAT_INTERVAL,
) -> StudyResult:
    """Run (or resume) a study and write its results into ``<output_dir>/<study_name>``.

    ``base_args`` are the ``unlearn-pl fit`` arguments of the base config (``["--config",
    "a.yaml", …]``); ``base_config``, a composed config's text (what ``unlearn-pl tune`` passes),
    is saved as the folder's ``base.yaml`` and goes first. The study keeps it in its storage: a
    resumed study, or a worker joining from another machine, must bring the same settings
    (:func:`check_same_base`), so trials of two settings never mix and the ``base.yaml`` the earlier
    trials ran stays. ``logger`` receives the plots; ``quiet`` skips printing the selection table;
    the other arguments are :meth:`~unlearn_pl.tuning.cli.TuningTrainer.tune`'s. An ``open`` search
    runs a multi-objective TPE over the same space for ``n_trials`` trials: its Pareto front of
    validation accuracy vs goal holds the J(λ) choice of every λ.

    Every candidate's config is built and checked before the first trial
    (:func:`~unlearn_pl.tuning.checks.check_candidates`); a refused value raises ``ValueError``
    and changes nothing. A failed trial is recorded and the study goes on: the result's
    ``incomplete`` names the cells without a completed trial. ``retry_failed`` queues the failed
    cells once more.

    Raises:
        ValueError: a bad setting or value, named.
        StudyInterrupted, WorkerDied, OSError: the trials stopped (Ctrl-C, a dead worker, a full
            disk); the tables of what completed are written first.
    """
    lams = check_lambdas(lambdas, goal)
    if search not in ("grid", "open") or (search == "open" and n_trials is None):
        raise ValueError(f"search must be 'grid', or 'open' with n_trials; got search={search!r}, n_trials={n_trials}")
    seeds = check_seeds(seeds)
    candidates = expand_space(space, grid)
    folder = make_folder(Path(output_dir) / study_name)
    # Every candidate is built before the study is touched: a refused value changes nothing stored.
    with tempfile.TemporaryDirectory(prefix="unlearn_pl-base-") as scratch:
        check_args = list(base_args)
        if base_config is not None:
            check_args = ["--config", str(write_text(Path(scratch) / "base.yaml", base_config)), *check_args]
        check_candidates(StudyObjective(check_args, candidates, seeds, goal, scratch, list(seed_keys), logger_save_dir))
    storage = open_storage(storage, heartbeat_interval) if storage is not None else journal_storage(folder / "study.log")
    study = optuna.create_study(study_name=study_name, storage=storage, directions=["maximize"] * 2, load_if_exists=True)
    names = [c.name for c in candidates]
    if study.user_attrs.setdefault("candidates", names) != names:
        raise ValueError(f"study {study_name!r} in this storage has another search space "
                         f"({len(study.user_attrs['candidates'])} candidates, now {len(names)}); give another study name")
    seed_choices = check_seed_choices(study, seeds, search)
    if base_config is not None:
        check_same_base(study, base_config)
        base_args = ["--config", str(write_text(folder / "base.yaml", base_config)), *base_args]
    study.set_user_attr("candidates", names)
    objective = StudyObjective(list(base_args), candidates, seeds, goal, str(folder), list(seed_keys), logger_save_dir,
                               seed_choices)
    settings = {"base_args": list(base_args), "space": space, "grid": grid, "search": search, "n_trials": n_trials,
                "seed_keys": list(seed_keys)}
    floor_name = f"{study_name}.noise_floor"
    try:
        if search == "grid":
            study = run_trials(objective, study_name=study_name, storage=storage, directions=("maximize",) * 2,
                               grid=objective.grid(), workers=workers, retry_failed=retry_failed)
        else:
            study = run_trials(objective, study_name=study_name, storage=storage, directions=("maximize",) * 2,
                               sampler=optuna.samplers.TPESampler(seed=0, multivariate=True), n_trials=n_trials,
                               distributions=objective.distributions(), workers=workers)
        floor = None
        if noise_floor:
            floor = optuna.create_study(study_name=floor_name, storage=storage, direction="maximize", load_if_exists=True)
            floor_objective = NoiseFloorObjective(replace(objective, seed_choices=check_seed_choices(floor, seeds, "grid")))
            floor = run_trials(floor_objective, study_name=floor_name, storage=storage, grid=floor_objective.grid(),
                               workers=workers, retry_failed=retry_failed)
    except (StudyInterrupted, WorkerDied, OSError):
        # What completed is kept in the storage; its tables are written before the one-line report.
        with contextlib.suppress(Exception):
            study = optuna.load_study(study_name=study_name, storage=storage)
            floor = optuna.load_study(study_name=floor_name, storage=storage) if noise_floor else None
            write_results(study, floor, objective, lams, folder, settings, logger=logger, quiet=True)
        raise
    return write_results(study, floor, objective, lams, folder, settings, logger=logger, quiet=quiet)


def make_folder(folder: Path) -> Path:
    """Create the study folder, or raise ``ValueError`` saying why it cannot hold one."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ValueError(f"output_dir: {folder} cannot be a study folder: a file is in its way; give another "
                         "output_dir or study_name") from None
    except OSError as e:
        raise ValueError(f"output_dir: cannot create the study folder {folder} ({e.strerror}); give another output_dir") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ValueError(f"output_dir: the study folder {folder} is not writable; give another output_dir")
    return folder


def check_seed_choices(study: optuna.Study, seeds: Sequence[int], search: str) -> list[int] | None:
    """The categorical seed choices the study's trials use (None: any seed), or ``ValueError``
    when ``seeds`` cannot be run in it: an open search samples from its fixed seed list, and a
    study begun before seeds could be added has one too."""
    stored = stored_seed_choices(study)
    if stored is None:
        return list(seeds) if search == "open" else None
    if (set(seeds) <= set(stored)) if search == "grid" else (set(seeds) == set(stored)):
        return stored
    raise ValueError(f"seeds {list(seeds)} cannot be run in study {study.study_name!r}: its trials draw seeds from the "
                     f"fixed list {stored}, which Optuna cannot extend; keep seeds within {stored}, or give the new "
                     "seeds another study_name")


def check_same_base(study: optuna.Study, base_config: str, shown: int = 5) -> None:
    """Record ``base_config`` (YAML text) in ``study`` or, when it already holds one, check it sets
    the same values (layout and comments aside); else raise ``ValueError`` naming up to ``shown``
    changed keys."""
    stored = study.user_attrs.get("base_config")
    if stored is None:
        study.set_user_attr("base_config", base_config)
        return
    old, new = _dotted(yaml.safe_load(stored)), _dotted(yaml.safe_load(base_config))
    changed = [f"{k}: {old.get(k, '(unset)')} → {new.get(k, '(unset)')}" for k in sorted(old.keys() | new.keys())
               if old.get(k, "(unset)") != new.get(k, "(unset)")]
    if not changed:
        return
    raise ValueError(f"study {study.study_name!r} in this storage ran another base config ("
                     + "; ".join(changed[:shown]) + ("; …" if len(changed) > shown else "")
                     + "), and its trials would mix two settings; give another study name or restore the config")


def _dotted(config: Any, prefix: str = "") -> dict[str, Any]:
    """A nested config as ``{dotted key: leaf value}``."""
    if isinstance(config, Mapping) and config:
        return {k: v for key, value in config.items() for k, v in _dotted(value, f"{prefix}{key}.").items()}
    return {prefix.rstrip("."): config}


def write_results(study: optuna.Study, floor: optuna.Study | None, objective: StudyObjective, lambdas: Sequence[float],
                  folder: Path, settings: Mapping[str, Any], logger: Any = None, quiet: bool = False) -> StudyResult:
    """Build a study's tables and plots from its storage and write them into ``folder``."""
    by_name = {c.name: c for c in objective.candidates}
    labels = {c.point: dict(c.labels) for c in objective.candidates}
    axes = {a: list(dict.fromkeys(dict(c.labels)[a] for c in objective.candidates)) for a, _ in objective.candidates[0].labels}
    trials = trial_rows(study, by_name, objective.goal, lambdas)
    chosen = chosen_per_seed(study, by_name, objective.goal, lambdas)
    floors = noise_floor(study, floor, by_name)
    status = cell_status(study, objective) if settings.get("search", "grid") == "grid" else {}
    selection = selection_rows(chosen, floors, labels, status, objective, lambdas)
    incomplete = [f"{name} seed {seed}: {why}" for (name, seed), why in status.items() if why != "COMPLETE"]
    differences = difference_rows(chosen, floors, labels, axes)
    floor_rows = [{**labels[point], "seed": seed, **values}
                  for point, per_seed in floors.items() for seed, values in sorted(per_seed.items())]
    files = [write_text(folder / f"{name}.csv", rows_to_csv(rows, empty_columns))
             for name, rows, empty_columns in (("trials", trials, ()), ("selection", selection, ()),
                                               ("differences", differences, DIFFERENCE_COLUMNS),
                                               ("noise_floor", floor_rows, ())) if rows or name != "noise_floor"]
    states = dict(Counter(row["state"] for row in trials))
    files.append(write_json(folder / "study.json", jsonable({
        **settings, "study_name": study.study_name, "goal": objective.goal, "lambdas": list(lambdas),
        "seeds": objective.seeds, "trials": states,
        "confidence_interval": "95% Student t-interval over seeds (scipy.stats.t); differences paired by seed",
        "pareto_front": [t.number for t in study.best_trials]})))
    try:
        from unlearn_pl.tuning import plots
    except ImportError:  # matplotlib is the optional `plots` extra
        warnings.warn("the study's plots need matplotlib (pip install 'unlearn_pl[plots]'); tables only", stacklevel=2)
    else:
        if any("val_acc" in r for r in selection):
            files.append(plots.save(plots.pareto(trials, selection, objective.goal), folder / "pareto.png", logger))
        if differences:
            files.append(plots.save(plots.differences(differences), folder / "differences.png", logger))
    if not quiet:
        columns = [*axes, "lambda", "n", "val_acc", "val_acc_ci_low", "val_acc_ci_high", "goal", "forget_acc", "test_acc"]
        print(f"\nchosen per point and lambda (goal {objective.goal}; validation decides, test is reported only; "
              f"mean and 95% CI over seeds):\n{format_rows(selection, columns)}\n\ntrials: {states}\nresults: {folder}\n",
              flush=True)
        if incomplete:
            print(f"without a completed trial ({len(incomplete)}): " + "; ".join(incomplete), flush=True)
    return StudyResult(folder, study, trials, selection, differences, files, incomplete)


def cell_status(study: optuna.Study, objective: StudyObjective) -> dict[tuple[str, int], str]:
    """Per (candidate, seed) of the study: ``COMPLETE``, ``FAIL (<error>)`` or ``not run``."""
    trials = study.get_trials(deepcopy=False)
    retried = {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}
    status = {(c, s): "not run" for s in objective.seeds for c in objective.by_name}
    for t in trials:
        key = (trial_cell(t).get("candidate"), trial_cell(t).get("seed"))
        if key not in status or status[key] == "COMPLETE":
            continue
        if t.state == TrialState.COMPLETE:
            status[key] = "COMPLETE"
        elif final_failure(t, retried):
            status[key] = f"FAIL ({t.user_attrs.get('error') or 'no error recorded'})"
    return status


def trial_rows(study: optuna.Study, candidates: Mapping[str, Candidate], goal: str,
               lambdas: Sequence[float]) -> list[dict[str, Any]]:
    """One row per trial: number, state, candidate, axes, grid params, seed, duration, metrics, goals, J(λ), error."""
    rows = []
    trials = study.get_trials(deepcopy=False)
    retry_of = {t.system_attrs["failed_trial"]: t.number for t in trials if "failed_trial" in t.system_attrs}
    for t in trials:
        if not t.params or "duplicate_of" in t.user_attrs:
            continue  # a copy of a cell queued twice, or a trial that never drew its parameters
        c = candidates.get(t.params.get("candidate", ""))
        metrics, goals = t.user_attrs.get("metrics", {}), t.user_attrs.get("goals", {})
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "candidate": t.params.get("candidate")}
        row.update(dict(c.labels) if c else {}, **({short_key(k): v for k, v in c.params} if c else {}))
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        row.update(seed=t.params.get("seed"), duration_s=duration, **metrics, **{f"goal_{g}": v for g, v in goals.items()})
        if goal in goals:
            row.update({f"J({lam:g})": j_value(metrics["val_acc"], goals[goal], lam) for lam in lambdas})
        row["error"] = t.user_attrs.get("error")
        if row["error"] is None and t.state == TrialState.FAIL and t.number in retry_of:
            row["error"] = f"interrupted: its worker stopped sending heartbeats; retried as trial {retry_of[t.number]}"
        row["run_dir"] = t.user_attrs.get("run_dir")
        if "failed_trial" in t.system_attrs:
            row["retry_of"] = t.system_attrs["failed_trial"]
        rows.append(row)
    return rows


def chosen_per_seed(study: optuna.Study, candidates: Mapping[str, Candidate], goal: str, lambdas: Sequence[float]) -> Chosen:
    """Per point, λ and seed: argmax J(λ) over that seed's completed candidates (ties: the earliest in the grid)."""
    order = {name: i for i, name in enumerate(candidates)}
    done: dict[tuple[str, int], list[tuple[Candidate, dict[str, float], float]]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if (c := candidates.get(t.params.get("candidate", ""))) is not None:
            done.setdefault((c.point, t.params["seed"]), []).append((c, t.user_attrs["metrics"], t.user_attrs["goals"][goal]))
    out: Chosen = {}
    for (point, seed), runs in sorted(done.items()):
        runs.sort(key=lambda r: order[r[0].name])
        for lam, i in select([m["val_acc"] for _, m, _ in runs], [g for _, _, g in runs], lambdas).items():
            c, metrics, g = runs[i]
            per_seed, names = out.setdefault(point, {}).setdefault(lam, ({}, {}))
            per_seed[seed] = {**metrics, "goal": g, "J": j_value(metrics["val_acc"], g, lam)}
            names[seed] = c.name
    return out


def noise_floor(study: optuna.Study, floor: optuna.Study | None,
                candidates: Mapping[str, Candidate]) -> dict[str, dict[int, dict[str, float]]]:
    """``{point: {seed: {"<split>_acc_gap_noise_floor": |acc(oracle) − acc(independent retrain)|}}}``."""
    oracle: dict[tuple[str, int], dict[str, float]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        if (c := candidates.get(t.params.get("candidate", ""))) is not None:
            oracle.setdefault((c.point, t.params["seed"]), t.user_attrs["metrics"])
    out: dict[str, dict[int, dict[str, float]]] = {}
    for t in floor.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if floor is not None else []:
        ref = oracle.get(key := (t.params["point"], t.params["seed"]), {})
        out.setdefault(key[0], {})[key[1]] = {f"{name.removeprefix('oracle/')}_gap_noise_floor": abs(ref[name] - value)
                                              for name, value in t.user_attrs["metrics"].items()
                                              if name.endswith("_acc") and name in ref}
    return out


def _order(names: set[str]) -> list[str]:
    return [m for m in KEY_METRICS if m in names] + sorted(names - set(KEY_METRICS))


def _per_seed(chosen: Chosen, floors: Mapping[str, Mapping[int, Mapping[str, float]]], point: str,
              lam: float) -> dict[int, dict[str, float]]:
    return {s: {**m, **floors.get(point, {}).get(s, {})} for s, m in chosen[point][lam][0].items()}


def selection_rows(chosen: Chosen, floors: Mapping[str, Mapping[int, Mapping[str, float]]],
                   labels: Mapping[str, Mapping[str, str]], status: Mapping[tuple[str, int], str] | None = None,
                   objective: StudyObjective | None = None, lambdas: Sequence[float] = ()) -> list[dict[str, Any]]:
    """One row per point and λ: n seeds, the choice per seed, and per metric the mean and 95% CI.

    With the grid's ``status`` (:func:`cell_status`), also ``n_per_cell`` (completed seeds of each
    cell) and ``missing`` (each cell and seed without a completed trial, and why), and a row for
    a point none of whose trials completed."""
    status = status or {}
    cells: dict[str, list[Candidate]] = {}
    seeds = objective.seeds if objective is not None else []
    for c in objective.candidates if objective is not None and status else []:
        cells.setdefault(c.point, []).append(c)
    rows = []
    for point in sorted(set(chosen) | set(cells)):
        per_lambda = chosen.get(point) or {float(lam): ({}, {}) for lam in lambdas}
        extra: dict[str, Any] = {}
        if point in cells:
            label = {c.name: c.name.rsplit("/", 1)[-1] for c in cells[point]}
            extra["n_per_cell"] = "; ".join(
                f"{label[c.name]}: {sum(status.get((c.name, s)) == 'COMPLETE' for s in seeds)}" for c in cells[point])
            extra["missing"] = "; ".join(f"{label[c.name]} seed {s}: {status[(c.name, s)]}" for s in seeds
                                         for c in cells[point] if status.get((c.name, s), "COMPLETE") != "COMPLETE")
        for lam, (_, names) in per_lambda.items():
            values = _per_seed(chosen, floors, point, lam) if point in chosen else {}
            row: dict[str, Any] = {**labels[point], "lambda": lam, "n": len(values), "chosen": format_chosen(names)}
            row.update(extra)
            for metric in _order({k for m in values.values() for k in m}):
                e = mean_ci([m.get(metric, math.nan) for m in values.values()])
                row.update({metric: e.mean, f"{metric}_ci_low": e.low, f"{metric}_ci_high": e.high})
            rows.append(row)
    return rows


def format_chosen(names: Mapping[int, str]) -> str:
    """``selection.csv``'s ``chosen`` entry from ``{seed: chosen candidate's name}``: each seed's grid
    cell (the name's last component), ``seed 0: max_epochs=10,lr=0.05; seed 1: …``."""
    return "; ".join(f"seed {s}: {names[s].rsplit('/', 1)[-1]}" for s in sorted(names))


# A cell's ``key=value`` pairs are joined by commas; a comma inside a value (a JSON list prints as
# ``[32, 16]``) is followed by a space, never directly by ``key=``.
_PAIR_SEPARATOR = re.compile(r",(?=[^,=\s]+=)")


def parse_chosen(text: str) -> dict[int, dict[str, str]]:
    """Read a ``chosen`` entry of ``selection.csv`` back into ``{seed: {key: value text}}``: the
    grid cell each seed chose, its keys the columns of ``trials.csv`` that hold them.

    >>> parse_chosen("seed 0: max_epochs=10,lr=0.05; seed 1: max_epochs=2,lr=0.05")[1]
    {'max_epochs': '2', 'lr': '0.05'}
    """
    cells: dict[int, dict[str, str]] = {}
    for part in text.split("; "):
        seed, sep, cell = part.partition(": ")
        if not sep or not seed.startswith("seed ") or not seed[5:].isdigit():
            raise ValueError(f"not a selection.csv 'chosen' entry ('seed <n>: <key>=<value>,…; …'): {text!r}")
        pairs = [kv.partition("=") for kv in _PAIR_SEPARATOR.split(cell)]
        # A candidate without grid parameters is named by its point alone ("base" when it has no axes).
        cells[int(seed[5:])] = {k: v for k, eq, v in pairs if eq}
    return cells


#: The columns of ``differences.csv`` besides the other axes' values (written even without rows:
#: a study of one point has nothing to compare).
DIFFERENCE_COLUMNS = ("axis", "comparison", "lambda", "metric", "difference", "ci_low", "ci_high", "n")


def difference_rows(chosen: Chosen, floors: Mapping[str, Mapping[int, Mapping[str, float]]],
                    labels: Mapping[str, Mapping[str, str]], axes: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Along each axis, every value minus the axis's first value (other axes fixed), per λ and
    metric: the mean difference over the seeds both have, with its 95% CI."""
    point_of = {tuple(sorted(lab.items())): point for point, lab in labels.items()}
    rows = []
    for axis, values in axes.items():
        for point, lab in labels.items():
            base = point_of.get(tuple(sorted({**lab, axis: values[0]}.items())))
            if lab[axis] == values[0] or point not in chosen or base not in chosen:
                continue
            for lam in [lam for lam in chosen[point] if lam in chosen[base]]:
                a, b = _per_seed(chosen, floors, point, lam), _per_seed(chosen, floors, base, lam)
                for metric in _order({k for m in a.values() for k in m} & {k for m in b.values() for k in m}):
                    e = paired_difference({s: m.get(metric, math.nan) for s, m in a.items()},
                                          {s: m.get(metric, math.nan) for s, m in b.items()})
                    rows.append({"axis": axis, "comparison": f"{lab[axis]} - {values[0]}",
                                 **{k: v for k, v in lab.items() if k != axis}, "lambda": lam, "metric": metric,
                                 "difference": e.mean, "ci_low": e.low, "ci_high": e.high, "n": e.n})
    return rows

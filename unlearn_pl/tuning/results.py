"""A study's results, built from its storage and written into its folder: ``trials.csv``,
``selection.csv``, ``differences.csv``, ``noise_floor.csv``, ``study.json``, the plots and the
console summary (see :mod:`unlearn_pl.tuning.runner` for what each holds)."""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna

from unlearn_pl.names import VAL_ACC
from unlearn_pl.report import jsonable, rows_to_csv
from unlearn_pl.stats import ALPHA, POWER
from unlearn_pl.tuning.choice import TIE_BREAK, chosen_per_seed, completed_runs
from unlearn_pl.tuning.differences import (
    DIFFERENCE_COLUMNS,
    claims,
    difference_rows,
    headline_metrics,
    no_differences_line,
)
from unlearn_pl.tuning.scores import floor_values, retrains
from unlearn_pl.tuning.selection import scored, selection_rows
from unlearn_pl.tuning.study import NoiseFloorObjective, StudyObjective
from unlearn_pl.tuning.summary import answer, console_summary, scoring
from unlearn_pl.tuning.trial_table import (
    add_target_gaps,
    cell_status,
    diverged_status,
    reference_curve_rows,
    trial_rows,
)
from unlearn_pl.utils.io import write_json, write_text


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
    diverged: list[str] = field(default_factory=list)

    def diverged_line(self, shown: int = 4) -> str:
        """One line naming the cells whose network diverged: they ran, and none can be chosen."""
        return (
            f"{len(self.diverged)} cell(s) of study {self.study.study_name!r} diverged (NaN or infinite weights) "
            f"and are not choosable: {_first(self.diverged, shown)}. They ran: selection.csv's 'diverged' lists "
            "them beside each point's choice"
        )

    def incomplete_line(self, shown: int = 4) -> str:
        """One line naming the cells without a completed trial and how to run them again."""
        return (
            f"{len(self.incomplete)} cell(s) of study {self.study.study_name!r} have no completed trial: "
            f"{_first(self.incomplete, shown)}. Their errors are in {self.folder / 'trials.csv'}; fix the cause, "
            "then run the same command with --retry_failed true"
        )


def _first(items: Sequence[str], shown: int) -> str:
    """The first ``shown`` of ``items`` joined by semicolons, with an ellipsis if there are more."""
    return "; ".join(items[:shown]) + ("; …" if len(items) > shown else "")


def write_results(
    study: optuna.Study,
    floor: optuna.Study | None,
    objective: StudyObjective,
    lambdas: Sequence[float],
    folder: Path,
    settings: Mapping[str, Any],
    logger: Any = None,
    quiet: bool = False,
    score_on: str = "val",
    margins: Mapping[str, float] | None = None,
) -> StudyResult:
    """Build a study's tables and plots from its storage and write them into ``folder``."""
    goal, by_name = objective.goal, {c.name: c for c in objective.candidates}
    labels = {c.point: dict(c.labels) for c in objective.candidates}
    axes = {
        a: list(dict.fromkeys(dict(c.labels)[a] for c in objective.candidates))
        for a, _ in objective.candidates[0].labels
    }
    trials = trial_rows(study, by_name, goal, lambdas, score_on)
    runs = completed_runs(study, by_name)
    chosen = chosen_per_seed(runs, goal, lambdas)
    targets = retrains(runs, floor, NoiseFloorObjective(objective).shared())
    add_target_gaps(trials, by_name, targets)
    status = cell_status(study, objective) if settings.get("search", "grid") == "grid" else {}
    selection = selection_rows(
        runs, chosen, targets, labels, goal, lambdas, score_on, status, objective.candidates, objective.seeds
    )
    incomplete = [
        f"{name} seed {seed}: {why}"
        for (name, seed), why in status.items()
        if why != "COMPLETE" and not diverged_status(why)
    ]
    diverged = [f"{name} seed {seed}" for (name, seed), why in status.items() if diverged_status(why)]
    incomplete += nothing_to_choose(status, objective)
    values = {
        point: {lam: scored(per_seed, goal, lam, score_on, targets) for lam, per_seed in per_lambda.items()}
        for point, per_lambda in chosen.items()
    }
    differences = difference_rows(values, labels, axes, margins)
    floor_rows = [
        {**labels[point], "seed": seed, **floor_values(r)}
        for (point, seed), r in sorted(targets.items())
        if r.retrain is not None
    ]
    files = [
        write_text(folder / f"{name}.csv", rows_to_csv(rows, empty_columns))
        for name, rows, empty_columns in (
            ("trials", trials, ()),
            ("selection", selection, ()),
            ("differences", differences, DIFFERENCE_COLUMNS),
            ("noise_floor", floor_rows, ()),
            ("reference_curves", reference_curve_rows(study, by_name), ()),
        )
        if rows or name not in ("noise_floor", "reference_curves")
    ]
    states = dict(Counter(row["state"] for row in trials))
    headline = claims(differences, headline_metrics(score_on))
    no_differences = None if differences else no_differences_line(axes)
    unused = sorted(set(margins or {}) - {r["metric"] for r in differences})
    files.append(
        write_json(
            folder / "study.json",
            jsonable(
                {
                    **settings,
                    "study_name": study.study_name,
                    "goal": goal,
                    "lambdas": list(lambdas),
                    "seeds": objective.seeds,
                    "trials": states,
                    "score_on": score_on,
                    "scoring": scoring(goal, score_on),
                    "tie_break": TIE_BREAK,
                    "confidence_interval": "95% Student t-interval over seeds (scipy.stats.t), clipped to a bounded metric's range; "
                    "differences paired by seed",
                    "verdicts": f"two-sided paired t-test at alpha {ALPHA}; minimal detectable effect at {POWER:.0%} power; TOST "
                    "against a metric's margin; Holm-adjusted over each claim's settings (statsmodels)",
                    "margin": dict(margins or {}),
                    "answer": answer(selection, list(axes), score_on),
                    "claims": claims(differences) if differences else no_differences,
                    "pareto_front": [t.number for t in study.best_trials],
                }
            ),
        )
    )
    _plots(files, trials, selection, differences, goal, list(axes), headline_metrics(score_on)[:3], folder, logger)
    if not quiet:
        print(
            "\n"
            + console_summary(
                selection, headline, list(axes), goal, score_on, no_differences, states, folder, incomplete, diverged
            )
            + "\n",
            flush=True,
        )
        if unused:
            print(
                f"margin: no compared metric is named {', '.join(unused)}; differences.csv compares e.g. "
                f"{', '.join(headline_metrics(score_on))}",
                flush=True,
            )
    return StudyResult(folder, study, trials, selection, differences, files, incomplete, diverged)


def nothing_to_choose(status: Mapping[tuple[str, int], str], objective: StudyObjective) -> list[str]:
    """The points and seeds whose every cell diverged: no choice can be made there, so the study is
    as incomplete as if a cell had failed (a grid to lower, not a finding to report)."""
    by_point: dict[tuple[str, int], list[str]] = {}
    for c in objective.candidates:
        for seed in objective.seeds:
            if (c.name, seed) in status:
                by_point.setdefault((c.point, seed), []).append(status[c.name, seed])
    return [
        f"{point} seed {seed}: every cell diverged, so nothing can be chosen"
        for (point, seed), states in by_point.items()
        if all(diverged_status(s) for s in states)
    ]


def _plots(
    files: list[Path],
    trials: Sequence[Mapping[str, Any]],
    selection: Sequence[Mapping[str, Any]],
    differences: Sequence[Mapping[str, Any]],
    goal: str,
    axes: Sequence[str],
    metrics: Sequence[str],
    folder: Path,
    logger: Any,
) -> None:
    try:
        from unlearn_pl.tuning import plots
    except ImportError:  # matplotlib is the optional `plots` extra
        warnings.warn("the study's plots need matplotlib (pip install 'unlearn_pl[plots]'); tables only", stacklevel=3)
        return
    if any(VAL_ACC in r for r in selection):
        files.append(plots.save(plots.pareto(trials, selection, goal, axes), folder / "pareto.png", logger))
    if differences:
        files.append(plots.save(plots.differences(differences, metrics, axes), folder / "differences.png", logger))

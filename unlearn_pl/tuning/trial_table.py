"""A study's trials as rows (``trials.csv``) and the state of each grid cell and seed."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import optuna
from optuna.trial import TrialState

from unlearn_pl.names import DURATION_S, GOAL, VAL_ACC, J, scored_on
from unlearn_pl.tuning.engine import DIVERGED, REUSED_FROM, final_failure, repeated_copies, trial_cell
from unlearn_pl.tuning.engine.queue import retried_trials
from unlearn_pl.tuning.objective import objective as j_value
from unlearn_pl.tuning.scores import Retrains, held_out, target_gaps
from unlearn_pl.tuning.space import Candidate, short_key
from unlearn_pl.tuning.study import StudyObjective

#: A cell's status (:func:`cell_status`) when its network diverged: it ran, and cannot be chosen.
DIVERGED_STATUS = "DIVERGED"


def diverged_status(status: str) -> bool:
    """Whether a :func:`cell_status` value says the cell's network diverged."""
    return status.startswith(DIVERGED_STATUS + " ")


def cell_status(study: optuna.Study, objective: StudyObjective) -> dict[tuple[str, int], str]:
    """Per (candidate, seed) of the study: ``COMPLETE``, ``DIVERGED (<error>)`` (the network's
    weights became NaN or infinite), ``FAIL (<error>)`` or ``not run``."""
    trials = study.get_trials(deepcopy=False)
    retried = retried_trials(trials)
    status = {(c, s): "not run" for s in objective.seeds for c in objective.by_name}
    for t in trials:
        key = (trial_cell(t).get("candidate"), trial_cell(t).get("seed"))
        if key not in status or status[key] == "COMPLETE":
            continue
        if t.state == TrialState.COMPLETE:
            status[key] = "COMPLETE"
        elif final_failure(t, retried):
            state = DIVERGED_STATUS if t.user_attrs.get(DIVERGED) else "FAIL"
            status[key] = f"{state} ({t.user_attrs.get('error') or 'no error recorded'})"
    return status


def trial_rows(
    study: optuna.Study, candidates: Mapping[str, Candidate], goal: str, lambdas: Sequence[float], score_on: str = "val"
) -> list[dict[str, Any]]:
    """One row per trial: number, state, candidate, axes, grid params, seed, duration, metrics, goals,
    J(λ) on validation and, unless ``score_on`` is ``val``, the goal and J(λ) on that split
    (``goal_<goal>_<split>``, ``J_<split>(λ)``), error, ``diverged`` (``True`` for a failure whose
    network diverged), run folder, and for a retry or a trial copied from another study
    ``retry_of`` or ``reused_from``."""
    rows = []
    trials = study.get_trials(deepcopy=False)
    retry_of = {t.system_attrs["failed_trial"]: t.number for t in trials if "failed_trial" in t.system_attrs}
    repeated = repeated_copies(trials)
    for t in trials:
        if not t.params or t.number in repeated:
            continue  # a repeat (a cell queued twice, a trial copied twice), or a trial that never drew its parameters
        c = candidates.get(t.params.get("candidate", ""))
        metrics, goals = t.user_attrs.get("metrics", {}), t.user_attrs.get("goals", {})
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "candidate": t.params.get("candidate")}
        row.update(dict(c.labels) if c else {}, **({short_key(k): v for k, v in c.params} if c else {}))
        duration = (
            (t.datetime_complete - t.datetime_start).total_seconds()
            if t.datetime_complete and t.datetime_start
            else None
        )
        row.update(
            {
                "seed": t.params.get("seed"),
                DURATION_S: duration,
                **metrics,
                **{f"goal_{g}": v for g, v in goals.items()},
            }
        )
        if goal in goals:
            row.update({f"{J}({lam:g})": j_value(metrics[VAL_ACC], goals[goal], lam) for lam in lambdas})
            if score_on != "val":
                scores = [held_out(metrics, goal, lam, score_on) for lam in lambdas]
                if scores[0]:
                    row[f"goal_{goal}_{score_on}"] = scores[0][scored_on(GOAL, score_on)]
                    row.update(
                        {
                            f"{scored_on(J, score_on)}({lam:g})": s[scored_on(J, score_on)]
                            for lam, s in zip(lambdas, scores, strict=True)
                        }
                    )
        row["error"] = t.user_attrs.get("error")
        if row["error"] is None and t.state == TrialState.FAIL and t.number in retry_of:
            row["error"] = f"interrupted: its worker stopped sending heartbeats; retried as trial {retry_of[t.number]}"
        if t.user_attrs.get(DIVERGED):
            row[DIVERGED] = True
        row["run_dir"] = t.user_attrs.get("run_dir")
        if "failed_trial" in t.system_attrs:
            row["retry_of"] = t.system_attrs["failed_trial"]
        if REUSED_FROM in t.user_attrs:
            row[REUSED_FROM] = t.user_attrs[REUSED_FROM]
        rows.append(row)
    return rows


def add_target_gaps(
    rows: Sequence[dict[str, Any]], candidates: Mapping[str, Candidate], targets: Mapping[tuple[str, int], Retrains]
) -> None:
    """Add to each completed trial's row its gaps to its seed's target (``<metric>_target_gap``,
    ``abs_<metric>_target_gap``), so that any two arms can be paired by seed on them, not only the
    comparisons ``differences.csv`` holds."""
    for row in rows:
        c = candidates.get(row.get("candidate") or "")
        r = targets.get((c.point, row["seed"])) if c is not None else None
        if row["state"] == TrialState.COMPLETE.name and r is not None:
            row.update(target_gaps(row, r))


def reference_curve_rows(study: optuna.Study, candidates: Mapping[str, Candidate]) -> list[dict[str, Any]]:
    """The reference models' training curves (``reference_curves.csv``): per point, seed, model
    (``original``, ``oracle``) and epoch, ``train_acc`` and ``train_loss`` as recorded while each
    trained (:attr:`unlearn_pl.ReferenceModels.histories`), from the point's first completed trial
    of that seed that carries them."""
    rows: list[dict[str, Any]] = []
    seen: set[tuple[str, int]] = set()
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        c = candidates.get(t.params.get("candidate", ""))
        curves = t.user_attrs.get("reference_curves")
        if c is None or not curves or (c.point, t.params["seed"]) in seen:
            continue
        seen.add((c.point, t.params["seed"]))
        for model, history in sorted(curves.items()):
            for epoch, (acc, loss) in enumerate(zip(history["train_acc"], history["train_loss"], strict=True), 1):
                rows.append(
                    {
                        **dict(c.labels),
                        "seed": t.params["seed"],
                        "model": model,
                        "epoch": epoch,
                        "train_acc": acc,
                        "train_loss": loss,
                    }
                )
    return rows

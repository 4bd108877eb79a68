"""What a study reports of a run, per seed, beside the metrics the run logged.

- **The selection score** J(λ) and the goal, on validation data (``J``, ``goal``): what chose the run.
- **The held-out score** (``score_on: test``, the default): the same J(λ) and goal with the test
  split in place of validation (``J_test``, ``goal_test``): the privacy goal 1 − |err(F) − err(T)|,
  the bias goal err(F) (it reads no validation data). The choice never saw these numbers. The
  reference models' own held-out scores come beside it (``original/J_test``, ``oracle/J_test``),
  and ``J_test_gap``, the run's J_test minus the oracle's: how far the chosen run stays from
  retraining, where ``original/J_test_gap`` (the original's minus the oracle's) is how far there was
  to go; ``1 − J_test_gap / original/J_test_gap`` (of the means) is the fraction of the way it went.
- **The target**: per seed, the mean of its two retrains, the oracle and the noise floor's
  independent retrain (the oracle alone where the noise floor did not run). Averaging the two keeps
  one retrain's own randomness from entering a comparison of two settings twice, once per side.
  ``<metric>_target_gap`` is the run's value minus the target, for the split accuracies and the
  privacy readouts (``mia_loss_acc``, ``mia_efficacy``); ``abs_<metric>_target_gap`` its size for
  forget accuracy and the privacy readouts.
- **The noise floor**, ``<metric>_gap_noise_floor``: |oracle − independent retrain|, how far two
  retrains differ; the smallest gap that means anything.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import optuna
from optuna.trial import TrialState

from unlearn_pl.names import (
    FORGET_ACC,
    GOAL,
    ORACLE,
    ORIGINAL,
    PRIVACY_READOUTS,
    RETAIN_ACC,
    TEST_ACC,
    VAL_ACC,
    J,
    absolute,
    accuracy,
    logged,
    noise_floor,
    scored_on,
    target_gap,
)
from unlearn_pl.tuning.choice import Run, Runs
from unlearn_pl.tuning.objective import goal_values
from unlearn_pl.tuning.objective import objective as j_value

#: The metrics whose gap to the target a study reports.
TARGET_METRICS: tuple[str, ...] = (FORGET_ACC, RETAIN_ACC, VAL_ACC, TEST_ACC, *PRIVACY_READOUTS)
#: Those whose distance to the target (either side) is compared: forget accuracy and the privacy readouts.
ABSOLUTE_GAPS: tuple[str, ...] = (FORGET_ACC, *PRIVACY_READOUTS)

_ORACLE = logged(ORACLE, "")


@dataclass(frozen=True)
class Retrains:
    """A point's two retrains on one seed: the oracle's metrics, as its trials logged them, and the
    independent retrain's (``None`` when the noise floor did not run), both without ``oracle/``."""

    oracle: Mapping[str, float]
    retrain: Mapping[str, float] | None = None

    def target(self, metric: str) -> float:
        """The mean of both retrains' ``metric`` (the oracle's alone without the other)."""
        if self.retrain is not None and metric in self.retrain:
            return (self.oracle[metric] + self.retrain[metric]) / 2
        return self.oracle[metric]

    def floor(self, metric: str) -> float:
        """|oracle − independent retrain| of ``metric`` (NaN without the independent retrain)."""
        if self.retrain is None or metric not in self.retrain or metric not in self.oracle:
            return math.nan
        return abs(self.oracle[metric] - self.retrain[metric])


def retrains(
    runs: Runs, floor: optuna.Study | None, shared: Mapping[str, str] | None = None
) -> dict[tuple[str, int], Retrains]:
    """``{(point, seed): Retrains}`` from the study's completed trials and the noise floor's: a
    point's own noise-floor run, else that of the point it shares them with (``shared``)."""
    oracles = {
        (point, seed): {k.removeprefix(_ORACLE): v for k, v in done[0].metrics.items() if k.startswith(_ORACLE)}
        for point, per_seed in runs.items()
        for seed, done in per_seed.items()
    }
    independent: dict[tuple[str, int], dict[str, float]] = {}
    for t in floor.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if floor is not None else []:
        independent[(t.params["point"], t.params["seed"])] = {
            k.removeprefix(_ORACLE): v for k, v in t.user_attrs["metrics"].items() if k.startswith(_ORACLE)
        }
    shared = shared or {}
    return {
        (point, seed): Retrains(
            oracle, independent.get((point, seed), independent.get((shared.get(point, point), seed)))
        )
        for (point, seed), oracle in oracles.items()
    }


def floor_values(r: Retrains) -> dict[str, float]:
    """``{<metric>_gap_noise_floor: |oracle − independent retrain|}`` for every target metric both logged."""
    if r.retrain is None:
        return {}
    return {noise_floor(m): r.floor(m) for m in TARGET_METRICS if m in r.oracle and m in r.retrain}


def held_out(metrics: Mapping[str, float], goal: str, lam: float, split: str) -> dict[str, float]:
    """``{goal_<split>, J_<split>}``: the goal and J(λ) with ``split`` in place of validation data
    (empty when the run logged no accuracy on ``split``, or the goal is ``privacy_mia``)."""
    split_acc = metrics.get(accuracy(split), math.nan)
    if math.isnan(split_acc) or goal not in ("privacy", "bias"):
        return {}
    g = goal_values(1.0 - metrics[FORGET_ACC], 1.0 - split_acc)[goal]
    return {scored_on(GOAL, split): g, scored_on(J, split): j_value(split_acc, g, lam)}


def target_gaps(metrics: Mapping[str, float], r: Retrains) -> dict[str, float]:
    """The run's gaps to the target: signed, and the size of :data:`ABSOLUTE_GAPS`'."""
    out: dict[str, float] = {}
    for m in TARGET_METRICS:
        if m in metrics and m in r.oracle:
            out[target_gap(m)] = metrics[m] - r.target(m)
            if m in ABSOLUTE_GAPS:
                out[absolute(target_gap(m))] = abs(out[target_gap(m)])
    return out


def target_values(metrics: Mapping[str, float], r: Retrains) -> dict[str, float]:
    """The run's gaps to the target (:func:`target_gaps`) and the noise floors."""
    return {**target_gaps(metrics, r), **floor_values(r)}


def seed_values(run: Run, goal: str, lam: float, score_on: str, r: Retrains | None) -> dict[str, float]:
    """Everything a study reports of ``run`` at λ: its metrics, ``goal`` and ``J`` on validation,
    the held-out ones on ``score_on`` (none when it is ``val``), and its gaps to the target."""
    values = {**run.metrics, GOAL: run.goals[goal], J: run.j(goal, lam)}
    if score_on != "val":
        values.update(held_out(run.metrics, goal, lam, score_on))
        for model in (ORIGINAL, ORACLE):
            prefix = logged(model, "")
            own = {k.removeprefix(prefix): v for k, v in run.metrics.items() if k.startswith(prefix)}
            if FORGET_ACC in own:
                values.update({logged(model, k): v for k, v in held_out(own, goal, lam, score_on).items()})
        j_test, oracle_j_test = scored_on(J, score_on), logged(ORACLE, scored_on(J, score_on))
        for model_j_test in (j_test, logged(ORIGINAL, j_test)):
            if model_j_test in values and oracle_j_test in values:
                values[f"{model_j_test}_gap"] = values[model_j_test] - values[oracle_j_test]
    if r is not None:
        values.update(target_values(run.metrics, r))
    return values

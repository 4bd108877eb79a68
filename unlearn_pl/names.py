"""The names metrics and studies share: models, splits and metric columns.

Metric callbacks log ``<model>/<metric>`` (e.g. ``unlearned/forget_acc``); studies, reports and
plots read the same names back. Writing them once here keeps the two sides from drifting apart.
See ``docs/metrics.md`` for what each one measures.
"""

from __future__ import annotations

ORIGINAL, UNLEARNED, ORACLE = "original", "unlearned", "oracle"
#: Row order of the results table.
MODEL_ORDER: tuple[str, ...] = (ORIGINAL, UNLEARNED, ORACLE)

#: ``{model name: {metric name: value}}``, e.g. ``{"unlearned": {"forget_acc": 0.8}}``.
Results = dict[str, dict[str, float]]

MIA_LOSS_ACC = "mia_loss_acc"
MIA_EFFICACY = "mia_efficacy"
TOW = "tow"
REGION_CHANGE = "region_change"
REGION_SIMILARITY = "region_similarity"


def accuracy(split: str) -> str:
    """The accuracy column of a split: ``forget_acc``."""
    return f"{split}_acc"


def loss(split: str) -> str:
    """The mean cross-entropy column of a split: ``forget_loss``."""
    return f"{split}_loss"


def gap(metric: str) -> str:
    """The column of a metric's gap to the oracle (model − oracle): ``forget_acc_gap``."""
    return f"{metric}_gap"


def logged(model: str, metric: str) -> str:
    """The name a metric callback logs: ``unlearned/forget_acc``."""
    return f"{model}/{metric}"


VAL_ACC, FORGET_ACC, TEST_ACC, RETAIN_ACC = (accuracy(s) for s in ("val", "forget", "test", "retain"))

# ----------------------------------------------------------------------------- study columns
#: A study's selection score J(λ) = (1 − λ)·val_acc + λ·goal, and its goal, both on validation data.
J, GOAL = "J", "goal"
#: The model a gap is taken against in a study: per seed, the mean of its two retrains (the oracle
#: and the noise floor's independent retrain).
TARGET = "target"
#: The privacy readouts a study compares beside forget accuracy.
PRIVACY_READOUTS: tuple[str, ...] = (MIA_LOSS_ACC, MIA_EFFICACY)
#: A trial's durations in seconds: the unlearning run it timed itself, and the trial's wall time
#: in the journal (start to end).
SECONDS, DURATION_S = "seconds", "duration_s"


def scored_on(score: str, split: str) -> str:
    """The column of a study score recomputed on another split: ``J_test``, ``goal_test``."""
    return f"{score}_{split}"


def target_gap(metric: str) -> str:
    """The column of a metric's gap to the study's target (model − target): ``forget_acc_target_gap``."""
    return f"{metric}_{TARGET}_gap"


def absolute(column: str) -> str:
    """The column of a signed column's absolute value: ``abs_forget_acc_target_gap``."""
    return f"abs_{column}"


def noise_floor(metric: str) -> str:
    """The column of a metric's noise floor, |oracle − independent retrain|: ``forget_acc_gap_noise_floor``."""
    return f"{gap(metric)}_noise_floor"

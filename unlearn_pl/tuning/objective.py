"""Validation-based selection of unlearning hyperparameters (Alon & Dar): pure scoring functions.

A candidate θu is scored on validation data only with J(λ) = (1 − λ) · acc(V) + λ · goal(θu), for
one of three goals (each in [0, 1], higher is better):

- ``privacy``: 1 − |err(F) − err(V)| — a forgotten example is misclassified about as often as
  unseen data (the overparameterization study's error-based reading);
- ``privacy_mia``: 1 − 2 · |loss-attack accuracy(F vs V) − 0.5| — the attack cannot tell the
  forget set from validation data;
- ``bias``: err(F) with respect to the *training* labels of F — with the ``Mislabeled`` selector
  those are the wrong labels the original learned, so a higher error means their influence is gone.

Plain arithmetic, tested on hand-made values; a study's trials (:mod:`unlearn_pl.tuning.study`)
feed it forget and validation accuracies and the loss attack against validation data only.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

Goal = Literal["privacy", "privacy_mia", "bias"]

#: The goals J can be built from.
GOALS: tuple[str, ...] = ("privacy", "privacy_mia", "bias")

#: The paper's λ values per goal (any list is accepted).
DEFAULT_LAMBDAS: dict[str, tuple[float, ...]] = {
    "privacy": (0.2, 0.4, 0.6),
    "privacy_mia": (0.2, 0.4, 0.6),
    "bias": (0.15, 0.3, 0.5),
}


def _check_unit(name: str, value: float) -> float:
    value = float(value)
    if not 0.0 <= value <= 1.0 or math.isnan(value):
        raise ValueError(f"{name} must be in [0, 1]; got {value}")
    return value


def check_goal(goal: str) -> str:
    """Return ``goal`` if it is one of :data:`GOALS`, else raise a ``ValueError`` naming them."""
    if goal not in GOALS:
        raise ValueError(f"unknown goal {goal!r}; expected one of {', '.join(GOALS)}")
    return goal


def privacy_goal(forget_error: float, val_error: float) -> float:
    """``1 − |err(F) − err(V)|``: 1 when the forget set is misclassified as often as validation data.

    >>> round(privacy_goal(0.10, 0.25), 6)
    0.85
    """
    return 1.0 - abs(_check_unit("forget_error", forget_error) - _check_unit("val_error", val_error))


def privacy_mia_goal(attack_accuracy: float) -> float:
    """``1 − 2·|a − 0.5|`` for the loss attack's accuracy ``a`` (forget vs validation).

    0.5 (chance) gives 1; a perfect attack (1.0) or a perfectly inverted one (0.0) gives 0.

    >>> privacy_mia_goal(0.5), privacy_mia_goal(0.75)
    (1.0, 0.5)
    """
    return 1.0 - 2.0 * abs(_check_unit("attack_accuracy", attack_accuracy) - 0.5)


def bias_goal(forget_error: float) -> float:
    """``err(F)`` w.r.t. the training labels of F (the wrong labels under ``Mislabeled``).

    >>> bias_goal(0.8)
    0.8
    """
    return _check_unit("forget_error", forget_error)


def objective(val_accuracy: float, goal_value: float, lam: float) -> float:
    """``J(λ) = (1 − λ) · acc(V) + λ · goal``.

    >>> round(objective(0.9, 0.5, 0.2), 6)
    0.82
    """
    val_accuracy = _check_unit("val_accuracy", val_accuracy)
    goal_value = _check_unit("goal value", goal_value)
    lam = _check_unit("lambda", lam)
    return (1.0 - lam) * val_accuracy + lam * goal_value


def check_lambdas(lambdas: Iterable[float] | None, goal: str) -> tuple[float, ...]:
    """The λ values to score with: ``lambdas`` validated, or the goal's paper defaults.

    Raises:
        ValueError: if the list is empty, has duplicates, or a value lies outside [0, 1].
    """
    check_goal(goal)
    if lambdas is None:
        return DEFAULT_LAMBDAS[goal]
    values = tuple(float(v) for v in lambdas)
    if not values:
        raise ValueError(
            f"lambdas must name at least one value in [0, 1]; got an empty list (defaults for {goal!r}: "
            f"{list(DEFAULT_LAMBDAS[goal])})"
        )
    for v in values:
        _check_unit("each lambda", v)
    duplicated = sorted({v for v in values if values.count(v) > 1})
    if duplicated:
        raise ValueError(f"lambdas contain duplicates {duplicated}; give each value once")
    return values


def best_index(scores: Sequence[float]) -> int:
    """Index of the highest score; ties go to the **earliest** index (grid order), NaN never wins.

    Raises:
        ValueError: if ``scores`` is empty or all NaN.

    >>> best_index([0.5, 0.7, 0.7, float("nan")])
    1
    """
    best: int | None = None
    for i, s in enumerate(scores):
        if math.isnan(s):
            continue
        # Strictly greater: an equal later score never displaces the earlier one, so the choice
        # does not depend on floating-point noise in the sort or on dict ordering.
        if best is None or s > scores[best]:
            best = i
    if best is None:
        raise ValueError(f"no candidate has a finite score (got {list(scores)}); nothing can be chosen")
    return best


def select(val_accuracy: Sequence[float], goal_values: Sequence[float], lambdas: Iterable[float]) -> dict[float, int]:
    """For each λ, the index of the candidate with the highest J(λ) (ties: earliest candidate).

    Args:
        val_accuracy: acc(V) of each candidate.
        goal_values: the goal of each candidate (same order).
        lambdas: the λ values, each in [0, 1].

    Returns:
        ``{λ: candidate index}``.

    >>> select([0.9, 0.8], [0.1, 0.9], [0.0, 0.5])
    {0.0: 0, 0.5: 1}
    """
    if len(val_accuracy) != len(goal_values):
        raise ValueError(
            f"val_accuracy has {len(val_accuracy)} candidates but goal_values has {len(goal_values)}; "
            "give one value per candidate in each"
        )
    if not val_accuracy:
        raise ValueError("no candidates to select from")
    return {
        float(lam): best_index([objective(a, g, lam) for a, g in zip(val_accuracy, goal_values, strict=True)])
        for lam in lambdas
    }


def goal_values(forget_error: float, val_error: float, attack_accuracy: float | None = None) -> dict[str, float]:
    """Every goal computable from forget/validation statistics, keyed by goal name.

    ``privacy_mia`` is present only when ``attack_accuracy`` is given.
    """
    out = {"privacy": privacy_goal(forget_error, val_error), "bias": bias_goal(forget_error)}
    if attack_accuracy is not None:
        out["privacy_mia"] = privacy_mia_goal(attack_accuracy)
    return out

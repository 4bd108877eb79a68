"""Per-example ε of the NeurIPS 2023 Machine Unlearning Challenge's forgetting score, as pure NumPy functions.

Triantafillou, Kairouz, Pedregosa, Hayes, Kurmanji, Zhao, Dumoulin, Jacques Junior, Mitliagkas,
Wan, Sun Hosoya, Escalera, Dziugaite, Triantafillou, Guyon: "Are we making progress in unlearning?
Findings from the first NeurIPS unlearning competition", arXiv 2406.09073 (§3), and the organisers'
scorer, ``metric.py`` and ``main.py`` of github.com/google-deepmind/unlearning_evaluation.

For every forget example the logit-scaled confidences under N unlearned and N retrained models
are two samples. Each decision rule of a family ("positive at or above t"; "positive inside
[l, r]") that tries to tell them apart has a false-positive rate FPR and a false-negative rate FNR,
and by the hypothesis-testing view of (ε, δ)-indistinguishability (Kairouz, Oh, Viswanath 2015)
the two are at most ε-apart only if

    ε ≥ max(log((1 − δ − FPR) / FNR), log((1 − δ − FNR) / FPR)).

The example's ε is the largest such bound over the rules, at δ = 1e-5, clipped below at 0; a
rule that separates the samples perfectly (FPR = FNR = 0) gives ε = ∞, one with exactly one zero
rate is discarded (too few models to tell), and so is one whose two terms are both undefined
(FPR = FNR = 1, a perfect separation the wrong way round). ε is capped at 50. How the ε become
points and the forgetting quality F is :mod:`unlearn_pl.functional.challenge_scoring`.

Every choice of the published scorer is an argument here, its value by default:

- the *positive* distribution of an example is the one with the larger median (the unlearned one
  on a tie); the single-threshold rule predicts positive at or above the threshold;
- the double-threshold rule predicts positive *inside* the window and calls positive the
  narrower distribution (smaller max − min; the non-positive one of the median rule on a tie);
- the thresholds: ``thresholds_per_unit`` (100) per unit of confidence over the range of both
  samples for the single rule, made by ``torch.linspace`` in PyTorch's default float32 and
  compared with the float64 confidences; for the double rule, right edges from (narrow min +
  width − ``window_buffer``) to (narrow max + ``window_buffer``), and for each right edge r,
  ``2·window_buffer·thresholds_per_unit`` left edges from r − width − buffer to
  r − width + buffer (width: the narrow distribution's range; buffer 2.0);
- the rates are float32 means of 0/1 outcomes, and ε is computed from them in float32
  (``rate_dtype``), which matters only where ε falls within float32 rounding of a bucket edge;
- *peakiness*: where the smaller of the two ranges is below ``peaky_ratio`` (1%) of the larger
  (either distribution, although the published comment speaks of the unlearned one), the
  example gets the cap without looking at the rules.

Where no rule gives a finite ε (both samples constant, or separated by a gap no threshold falls
into), the published scorer stops at an assertion; :func:`forgetting_epsilons` raises a
``ValueError`` naming those examples, or returns NaN for them with ``undefined="nan"``.

The scorer casts the confidences to float64, the type the published confidence helper returns
(float32 confidences handed to the published scorer directly would be compared with its
thresholds in float32). All arrays are shaped ``(models, examples)``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike

from unlearn_pl.functional.challenge_rules import threshold_cells, window_cells

#: The published scorer's constants (``metric.py``): δ, the cap on ε, threshold density, the
#: double-threshold rule's buffer and the peakiness ratio.
DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100
WINDOW_BUFFER = 2.0
PEAKY_RATIO = 0.01

Rule = Literal["single", "double"]
RULES: tuple[Rule, ...] = ("double", "single")


def forgetting_epsilons(
    unlearned: ArrayLike,
    retrained: ArrayLike,
    *,
    delta: float = DELTA,
    epsilon_cap: float = EPSILON_CAP,
    thresholds_per_unit: int = THRESHOLDS_PER_UNIT,
    window_buffer: float = WINDOW_BUFFER,
    peaky_ratio: float = PEAKY_RATIO,
    rules: Sequence[Rule] = RULES,
    rate_dtype: Literal["float32", "float64"] = "float32",
    undefined: Literal["raise", "nan"] = "raise",
) -> np.ndarray:
    """Each forget example's estimated ε at ``delta``, shape ``(examples,)`` (see the module notes).

    Args:
        unlearned: ``(N, E)`` confidences of E forget examples under N unlearned models.
        retrained: ``(N, E)`` the same under N models retrained without the forget set.
        delta: the δ of (ε, δ); in ``(0, 1)``.
        epsilon_cap: the largest ε reported (also the ε of a peaky example and of a perfect
            separation).
        thresholds_per_unit: threshold density of both rule families.
        window_buffer: how far the double-threshold rule's edges range (in confidence units).
        peaky_ratio: an example whose smaller range is below this fraction of the larger gets the
            cap; 0 disables the check.
        rules: the decision-rule families, ``"double"`` and/or ``"single"``.
        rate_dtype: the float type of the rates and of ε's arithmetic (float32 as published).
        undefined: ``"raise"`` (as the published assertion) or ``"nan"`` for the examples on
            which no rule gives a finite ε.

    >>> u = np.arange(8.0)[:, None] * [1.0, 1.0]
    >>> forgetting_epsilons(u, u)  # identical samples: no rule tells them apart
    array([0., 0.])
    >>> forgetting_epsilons(u, u + 20)  # disjoint samples: perfect separation, ε capped
    array([50., 50.])
    """
    u, r = _check_banks(unlearned, retrained, "unlearned", "retrained")
    _check_options(delta, epsilon_cap, thresholds_per_unit, window_buffer, peaky_ratio, rules, rate_dtype)
    if undefined not in ("raise", "nan"):
        raise ValueError(f"undefined must be 'raise' or 'nan'; got {undefined!r}")
    n = u.shape[0]
    table = _epsilon_table(n, delta, np.dtype(rate_dtype))
    retrained_positive = np.median(r, axis=0) > np.median(u, axis=0)
    pos = np.where(retrained_positive, r, u)
    neg = np.where(retrained_positive, u, r)
    pos_range = pos.max(0) - pos.min(0)
    neg_range = neg.max(0) - neg.min(0)
    larger = np.where(pos_range > neg_range, pos_range, neg_range)
    smaller = np.where(pos_range > neg_range, neg_range, pos_range)
    with np.errstate(invalid="ignore", divide="ignore"):
        peaky = smaller / larger < peaky_ratio  # 0/0 (both constant) is NaN: not peaky, as published
    epsilons = np.full(u.shape[1], float(epsilon_cap))
    for e in np.flatnonzero(~peaky):
        p, q = np.sort(pos[:, e]), np.sort(neg[:, e])
        cells = []
        if "double" in rules:
            cells.append(window_cells(p, q, pos_range[e], neg_range[e], thresholds_per_unit, window_buffer))
        if "single" in rules:
            cells.append(threshold_cells(p, q, thresholds_per_unit))
        reached = np.zeros(table.size, dtype=bool)  # each cell once
        reached[np.concatenate(cells)] = True
        values = table.ravel()[reached]
        finite_or_inf = values[~np.isnan(values)]
        epsilons[e] = float(finite_or_inf.max()) if finite_or_inf.size else math.nan
    bad = np.flatnonzero(np.isnan(epsilons))
    if bad.size and undefined == "raise":
        raise ValueError(
            f"no decision rule gives a finite epsilon for {bad.size} example(s) (indices {bad[:10].tolist()}"
            f"{', ...' if bad.size > 10 else ''}): their unlearned and retrained confidences are constant, or "
            "separated by a gap narrower than the threshold grid; the published scorer fails its assertion "
            "there. Pass undefined='nan' to get NaN for them."
        )
    return np.clip(epsilons, 0.0, epsilon_cap)  # keeps NaN


def _check_banks(
    first: ArrayLike, second: ArrayLike, first_name: str, second_name: str
) -> tuple[np.ndarray, np.ndarray]:
    """Both banks as float64 ``(models, examples)`` arrays of one shape, with N >= 2 finite values.

    Raises:
        ValueError: naming the bad argument and what was expected.
    """
    a, b = _as_float64(first, first_name), _as_float64(second, second_name)
    for name, x in ((first_name, a), (second_name, b)):
        if x.ndim != 2:
            raise ValueError(f"{name} must have shape (models, examples); got {x.shape}")
    if a.shape != b.shape:
        raise ValueError(
            f"{first_name} has shape {a.shape} but {second_name} has {b.shape}; they must match (models, examples)"
        )
    if a.shape[0] < 2:
        raise ValueError(f"need at least 2 models on each side to compare distributions; got {a.shape[0]}")
    if a.shape[1] < 1:
        raise ValueError("need at least one example; got 0")
    for name, x in ((first_name, a), (second_name, b)):
        if not np.isfinite(x).all():
            rows, cols = np.nonzero(~np.isfinite(x))
            raise ValueError(
                f"{name} contains {rows.size} NaN or infinite value(s), first at (model {rows[0]}, example {cols[0]})"
            )
    return a, b


def _as_float64(x: ArrayLike | torch.Tensor, name: str) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().cpu().double().numpy()
    try:
        return np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be a numeric array; got {type(x).__name__}") from err


def _check_options(
    delta: float, cap: float, per_unit: int, buffer: float, peaky_ratio: float, rules: Sequence[str], rate_dtype: str
) -> None:
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1); got {delta}")
    if not cap > 0:
        raise ValueError(f"epsilon_cap must be > 0; got {cap}")
    if int(per_unit) != per_unit or per_unit < 1:
        raise ValueError(f"thresholds_per_unit must be a positive integer; got {per_unit}")
    if not buffer > 0:
        raise ValueError(f"window_buffer must be > 0; got {buffer}")
    if not 0 <= peaky_ratio <= 1:
        raise ValueError(f"peaky_ratio must be in [0, 1]; got {peaky_ratio}")
    if isinstance(rules, str) or not rules or any(rule not in RULES for rule in rules):
        raise ValueError(f"rules must be a non-empty selection of {RULES}; got {rules!r}")
    if rate_dtype not in ("float32", "float64"):
        raise ValueError(f"rate_dtype must be 'float32' or 'float64'; got {rate_dtype!r}")


def _epsilon_table(n: int, delta: float, dtype: np.dtype) -> np.ndarray:
    """ε of a rule from its counts, ``table[true positives, false positives]``, ``(n+1, n+1)``.

    NaN marks a discarded rule (exactly one of FPR, FNR zero, or no finite bound), ∞ a perfect
    separation. The rates are ``k/n`` rounded to ``dtype`` (what a float32 mean of n 0/1 values
    gives) and the bound is computed in ``dtype``, as published.
    """
    k = np.arange(n + 1)
    rate = (k / n).astype(dtype)  # float64 k/n then one rounding: the correctly rounded float32 quotient
    rest = ((n - k) / n).astype(dtype)
    tpr, fnr = rate[:, None], rest[:, None]
    fpr, tnr = rate[None, :], rest[None, :]
    one_minus_delta = 1.0 - delta  # a Python float, so the arithmetic stays in ``dtype``
    with np.errstate(invalid="ignore", divide="ignore"):
        bound = np.fmax(np.log(one_minus_delta - fpr) - np.log(fnr), np.log(one_minus_delta - fnr) - np.log(fpr))
    bound = np.maximum(bound, dtype.type(0))  # keeps NaN, like np.clip
    perfect = ((fpr + fnr) == 0) & ((tpr + tnr) == 2)
    one_zero = (fpr * fnr) == 0
    return np.where(perfect, np.inf, np.where(one_zero, np.nan, bound))


__all__ = [
    "DELTA",
    "EPSILON_CAP",
    "PEAKY_RATIO",
    "RULES",
    "THRESHOLDS_PER_UNIT",
    "WINDOW_BUFFER",
    "forgetting_epsilons",
]

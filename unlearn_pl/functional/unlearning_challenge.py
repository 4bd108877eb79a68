"""The forgetting score of the NeurIPS 2023 Machine Unlearning Challenge, as pure NumPy functions.

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
(FPR = FNR = 1, a perfect separation the wrong way round). ε is capped at 50. The example then scores 2^−k points for ε
in the bucket [k/2, (k+1)/2), and nothing from ⌈ln(N − 1)⌉ on, the largest ε that N samples can
resolve; the forgetting quality F is the mean over the forget set, and the challenge's final
score multiplies F by the unlearned models' retain and test accuracy relative to the retrained.

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
  example gets the cap without looking at the rules;
- the bucket table is built by adding ``bucket_size`` in a loop, as published, so any bucket size
  gives the published edges.

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
from scipy.special import logsumexp

#: The published scorer's constants (``metric.py``): δ, the cap on ε, threshold density, the
#: double-threshold rule's buffer, the peakiness ratio and the bucket width.
DELTA = 1e-5
EPSILON_CAP = 50.0
THRESHOLDS_PER_UNIT = 100
WINDOW_BUFFER = 2.0
PEAKY_RATIO = 0.01
BUCKET_SIZE = 0.5

Rule = Literal["single", "double"]
RULES: tuple[Rule, ...] = ("double", "single")


def challenge_confidence(
    logits: ArrayLike | torch.Tensor,
    targets: ArrayLike | torch.Tensor,
    floor: float = 1e-45,
    precision: Literal["logits", "float64"] = "logits",
) -> np.ndarray:
    """The challenge's logit-scaled confidence ``log(p_y + floor) − log(1 − p_y + floor)``.

    ``p_y`` is the softmax probability of the true class and ``1 − p_y`` the sum of the others,
    as in ``compute_logit_scaled_confidence`` of the challenge's ``metric.py`` (adapted there from
    LiRA's ``score.py``). The published ``floor`` of 1e-45 caps the confidence near ±103.6.

    ``precision="logits"`` (published) shifts each row by its largest logit and exponentiates in
    the logits' own float type before normalizing in float64: for float32 logits a probability
    below ~1e-38 (a class ~87 behind the largest) loses digits and below ~1e-45 becomes 0, so
    confidences saturate at ±103.6 from gaps of ~87 on (elsewhere float32 rounding moves them
    by up to ~2e-6). ``"float64"`` works with log-probabilities in float64 (``logaddexp`` with
    ``log(floor)``), which never underflow; with ``floor=0`` it is the exact confidence, as
    :func:`unlearn_pl.functional.lira.logit_confidence` computes it.

    Args:
        logits: ``(..., C)`` unnormalized scores, ``C >= 2`` (e.g. ``(models, examples, C)``).
        targets: ``(...)`` true class indices, the leading shape of ``logits``.

    Returns:
        ``(...)`` float64 confidences.
    """
    z = logits.detach().cpu().numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits)
    y = np.asarray(targets.detach().cpu() if isinstance(targets, torch.Tensor) else targets)
    if not (np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer)):
        raise ValueError(f"logits must be a numeric array; got dtype {z.dtype}")
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"logits must have shape (..., C) with C >= 2 classes; got {z.shape}")
    if y.shape != z.shape[:-1]:
        raise ValueError(f"targets must have the leading shape of logits, {z.shape[:-1]}; got {y.shape}")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= z.shape[-1]):
        raise ValueError(f"targets must be integer class indices in [0, {z.shape[-1] - 1}]")
    if not np.isfinite(z).all():
        raise ValueError(f"logits contain {int((~np.isfinite(z)).sum())} NaN or infinite values")
    if not floor >= 0:
        raise ValueError(f"floor must be >= 0; got {floor}")
    if precision not in ("logits", "float64"):
        raise ValueError(f"precision must be 'logits' or 'float64'; got {precision!r}")
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    is_true = np.arange(z.shape[-1]) == y[..., None]
    if precision == "float64":
        z = z.astype(np.float64)
        log_total = logsumexp(z, axis=-1)
        log_p_true = np.where(is_true, z, 0.0).sum(-1) - log_total
        log_p_rest = logsumexp(np.where(is_true, -np.inf, z), axis=-1) - log_total
        if floor == 0:
            return log_p_true - log_p_rest
        log_floor = math.log(floor)
        return np.logaddexp(log_p_true, log_floor) - np.logaddexp(log_p_rest, log_floor)
    probs = np.exp(z - z.max(-1, keepdims=True)).astype(np.float64)
    probs /= probs.sum(-1, keepdims=True)
    p_true = np.where(is_true, probs, 0.0).sum(-1)
    p_rest = np.where(is_true, 0.0, probs).sum(-1)
    with np.errstate(divide="ignore"):
        conf = np.log(p_true + floor) - np.log(p_rest + floor)
    if not np.isfinite(conf).all():
        raise ValueError(
            f"{int((~np.isfinite(conf)).sum())} confidence(s) are infinite: a probability rounded to 0 with floor=0; "
            "use floor > 0 or precision='float64'"
        )
    return conf


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
            cells.append(_window_cells(p, q, pos_range[e], neg_range[e], thresholds_per_unit, window_buffer))
        if "single" in rules:
            cells.append(_threshold_cells(p, q, thresholds_per_unit))
        values = table.ravel()[np.concatenate(cells)]
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


def epsilon_buckets(num_models: int, bucket_size: float = BUCKET_SIZE, max_epsilon: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The scoring table: upper edges of the ε buckets and their points, ``(edges, points)``.

    Bucket k is ``[start_k, start_k + bucket_size)`` and scores 2^−k; buckets are added while
    their upper edge is at most ``max_epsilon`` (default ⌈ln(N − 1)⌉, so N = 2 models give an
    empty table and every ε scores 0). Starts accumulate ``bucket_size`` as the published loop does.

    >>> edges, points = epsilon_buckets(32)  # ⌈ln 31⌉ = 4: eight buckets
    >>> edges.tolist(), points[:3].tolist(), points[-1].item()
    ([0.5, 1.0, 1.5, 2.0, 2.5, 3.0, 3.5, 4.0], [1.0, 0.5, 0.25], 0.0078125)
    """
    if num_models < 2:
        raise ValueError(f"num_models must be >= 2; got {num_models}")
    if not bucket_size > 0:
        raise ValueError(f"bucket_size must be > 0; got {bucket_size}")
    top = math.ceil(math.log(num_models - 1)) if max_epsilon is None else max_epsilon
    edges, points = [], []
    start, value = 0.0, 1.0
    while start + bucket_size <= top:
        edges.append(start + bucket_size)
        points.append(value)
        value /= 2
        start += bucket_size
    return np.array(edges), np.array(points)


def epsilon_points(
    epsilons: ArrayLike, num_models: int, bucket_size: float = BUCKET_SIZE, max_epsilon: float | None = None
) -> np.ndarray:
    """Each example's points: those of the first bucket whose upper edge exceeds its ε, else 0.

    NaN epsilons (undefined examples) give NaN points.

    >>> epsilon_points([0.0, 0.49, 0.5, 1.2, 3.99, 4.0, 50.0], num_models=32).tolist()
    [1.0, 1.0, 0.5, 0.25, 0.0078125, 0.0, 0.0]
    """
    eps = np.asarray(epsilons, dtype=np.float64)
    edges, points = epsilon_buckets(num_models, bucket_size, max_epsilon)
    index = np.searchsorted(edges, eps, side="right")  # the first edge with eps < edge
    scored = np.append(points, 0.0)[index]
    scored[np.isnan(eps)] = np.nan
    return scored


def epsilon_histogram(
    epsilons: ArrayLike, num_models: int, bucket_size: float = BUCKET_SIZE, max_epsilon: float | None = None
) -> np.ndarray:
    """How many examples fall in each ε bucket of :func:`epsilon_buckets`, with one last count for
    those at or above the top edge (scoring 0); NaN epsilons are refused.

    >>> epsilon_histogram([0.0, 0.49, 0.5, 1.2, 3.99, 4.0, 50.0], num_models=32).tolist()
    [2, 1, 1, 0, 0, 0, 0, 1, 2]
    """
    eps = np.asarray(epsilons, dtype=np.float64).ravel()
    if np.isnan(eps).any():
        raise ValueError(f"{int(np.isnan(eps).sum())} epsilon(s) are NaN (undefined examples); a histogram needs all")
    edges, _ = epsilon_buckets(num_models, bucket_size, max_epsilon)
    return np.bincount(np.searchsorted(edges, eps, side="right"), minlength=len(edges) + 1)


def forgetting_quality(
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
    bucket_size: float = BUCKET_SIZE,
    max_epsilon: float | None = None,
) -> float:
    """The challenge's forgetting quality F: the mean of :func:`epsilon_points` over the forget set.

    1 is the ideal (every example's ε below the first bucket edge), reached when both banks hold
    the same values. Two banks drawn independently from one distribution score far less, since
    the largest bound over hundreds of thousands of rules is rarely below 0.5 with few models:
    where the threshold grids fall between all 2N values, E[F] is the mean over the C(2N, N)
    equally likely orders of the values, 0.25 for N = 4 and 41/168 ≈ 0.244 for N = 5 (both
    tested), ≈ 0.10 for N = 32 (Monte Carlo, 4,000 orders); for Gaussian confidences of spread
    1 to 3, whose values the grids do not all separate, ≈ 0.18 to 0.19 for N = 32. The arguments
    are those of :func:`forgetting_epsilons` (an undefined example raises) and
    :func:`epsilon_buckets`.

    >>> u = np.arange(8.0)[:, None] * [1.0, 1.0]
    >>> forgetting_quality(u, u), forgetting_quality(u, np.c_[u[:, 0], u[:, 1] + 20])
    (1.0, 0.5)
    """
    eps = forgetting_epsilons(
        unlearned, retrained, delta=delta, epsilon_cap=epsilon_cap, thresholds_per_unit=thresholds_per_unit,
        window_buffer=window_buffer, peaky_ratio=peaky_ratio, rules=rules, rate_dtype=rate_dtype,
    )
    return float(epsilon_points(eps, np.shape(unlearned)[0], bucket_size, max_epsilon).mean())


def challenge_score(
    forget_quality: float,
    unlearned_retain_accuracy: ArrayLike,
    retrained_retain_accuracy: ArrayLike,
    unlearned_test_accuracy: ArrayLike,
    retrained_test_accuracy: ArrayLike,
) -> float:
    """The final score: F × (retain accuracy ratio) × (test accuracy ratio), unlearned over retrained.

    Each accuracy is one value per model (or their mean); the ratios are of the means over the
    models, as in the challenge's ``main.py``. Accuracies may be fractions or percentages, the
    same for all four.

    >>> round(challenge_score(0.5, [0.9, 0.7], [1.0], [0.4], [0.5]), 6)  # 0.5 · 0.8/1.0 · 0.4/0.5
    0.32
    """
    if not (math.isfinite(forget_quality) and 0.0 <= forget_quality <= 1.0):
        raise ValueError(f"forget_quality must be in [0, 1]; got {forget_quality}")
    means = {}
    for name, value in (
        ("unlearned_retain_accuracy", unlearned_retain_accuracy), ("retrained_retain_accuracy", retrained_retain_accuracy),
        ("unlearned_test_accuracy", unlearned_test_accuracy), ("retrained_test_accuracy", retrained_test_accuracy),
    ):
        a = np.asarray(value, dtype=np.float64)
        if a.size == 0 or not np.isfinite(a).all() or (a < 0).any():
            raise ValueError(f"{name} must be one or more finite accuracies >= 0; got {value!r}")
        means[name] = float(a.mean())
    for side in ("retain", "test"):
        if means[f"retrained_{side}_accuracy"] == 0:
            raise ValueError(f"the retrained models' {side} accuracy is 0: the {side} ratio is undefined")
    retain = means["unlearned_retain_accuracy"] / means["retrained_retain_accuracy"]
    test = means["unlearned_test_accuracy"] / means["retrained_test_accuracy"]
    return forget_quality * retain * test


def _check_banks(first: ArrayLike, second: ArrayLike, first_name: str, second_name: str) -> tuple[np.ndarray, np.ndarray]:
    """Both banks as float64 ``(models, examples)`` arrays of one shape, with N >= 2 finite values.

    Raises:
        ValueError: naming the bad argument and what was expected.
    """
    a, b = _as_float64(first, first_name), _as_float64(second, second_name)
    for name, x in ((first_name, a), (second_name, b)):
        if x.ndim != 2:
            raise ValueError(f"{name} must have shape (models, examples); got {x.shape}")
    if a.shape != b.shape:
        raise ValueError(f"{first_name} has shape {a.shape} but {second_name} has {b.shape}; they must match (models, examples)")
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


def _threshold_cells(pos: np.ndarray, neg: np.ndarray, per_unit: int) -> np.ndarray:
    """Table cells of the single-threshold rules "positive at or above t" (sorted samples in)."""
    n = len(pos)
    low, high = min(pos[0], neg[0]), max(pos[-1], neg[-1])
    count = math.ceil((high - low) * per_unit)
    # torch.linspace in float32, PyTorch's default dtype, as the published scorer makes them.
    thresholds = torch.linspace(torch.tensor(low), torch.tensor(high), count, dtype=torch.float32).double().numpy()
    true_pos = n - np.searchsorted(pos, thresholds, side="left")
    false_pos = n - np.searchsorted(neg, thresholds, side="left")
    return true_pos * (n + 1) + false_pos


def _window_cells(pos: np.ndarray, neg: np.ndarray, pos_range: float, neg_range: float, per_unit: int, buffer: float) -> np.ndarray:
    """Table cells of the double-threshold rules "positive inside [l, r]" (sorted samples in)."""
    n = len(pos)
    if pos_range >= neg_range:  # positive here means the narrower distribution
        pos, neg = neg, pos
    width = min(pos_range, neg_range)
    low = pos[0] + width - buffer
    high = pos[-1] + buffer
    rights = np.linspace(low, high, num=math.ceil((high - low) * per_unit))
    lefts = np.linspace(rights - width - buffer, rights - width + buffer, num=math.ceil(2 * buffer * per_unit), axis=1)
    rights = rights[:, None]

    def inside(sample: np.ndarray) -> np.ndarray:
        below_right = np.searchsorted(sample, rights, side="right")
        below_left = np.searchsorted(sample, lefts, side="left")
        return np.maximum(below_right - below_left, 0)  # an empty window (l > r) holds nothing

    return (inside(pos) * (n + 1) + inside(neg)).ravel()


__all__ = [
    "BUCKET_SIZE", "DELTA", "EPSILON_CAP", "PEAKY_RATIO", "RULES", "THRESHOLDS_PER_UNIT", "WINDOW_BUFFER",
    "challenge_confidence", "challenge_score", "epsilon_buckets", "epsilon_histogram",
    "epsilon_points", "forgetting_epsilons", "forgetting_quality",
]

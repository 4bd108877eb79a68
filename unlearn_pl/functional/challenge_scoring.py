"""The NeurIPS 2023 Machine Unlearning Challenge's scoring of per-example ε: buckets, points, the
forgetting quality F and the final score (``metric.py`` and ``main.py`` of
github.com/google-deepmind/unlearning_evaluation; Triantafillou et al., arXiv 2406.09073, §3).

An example with ε in the bucket [k/2, (k+1)/2) scores 2^−k points, and nothing from ⌈ln(N − 1)⌉
on, the largest ε that N models can resolve; F is the mean over the forget set, and the final
score multiplies F by the unlearned models' retain and test accuracy relative to the retrained.
The ε come from :func:`~unlearn_pl.functional.challenge_epsilons.forgetting_epsilons`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike

from unlearn_pl.functional.challenge_epsilons import (
    DELTA,
    EPSILON_CAP,
    PEAKY_RATIO,
    RULES,
    THRESHOLDS_PER_UNIT,
    WINDOW_BUFFER,
    Rule,
    forgetting_epsilons,
)

#: The published bucket width (``metric.py``).
BUCKET_SIZE = 0.5


def epsilon_buckets(
    num_models: int, bucket_size: float = BUCKET_SIZE, max_epsilon: float | None = None
) -> tuple[np.ndarray, np.ndarray]:
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
        unlearned,
        retrained,
        delta=delta,
        epsilon_cap=epsilon_cap,
        thresholds_per_unit=thresholds_per_unit,
        window_buffer=window_buffer,
        peaky_ratio=peaky_ratio,
        rules=rules,
        rate_dtype=rate_dtype,
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
        ("unlearned_retain_accuracy", unlearned_retain_accuracy),
        ("retrained_retain_accuracy", retrained_retain_accuracy),
        ("unlearned_test_accuracy", unlearned_test_accuracy),
        ("retrained_test_accuracy", retrained_test_accuracy),
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


__all__ = [
    "BUCKET_SIZE",
    "challenge_score",
    "epsilon_buckets",
    "epsilon_histogram",
    "epsilon_points",
    "forgetting_quality",
]

"""Means and 95% confidence intervals over seeds, and paired differences (pure functions, used by
every table that reports replicated runs: the studies of :mod:`unlearn_pl.tuning`, benchmarks).

The interval is Student's t-interval, ``mean ± t_{0.975, n−1} · s / √n`` (``scipy.stats.t``), the
usual choice for a handful of seeds: it assumes roughly normal per-seed values, and unlike a
bootstrap it is defined for n = 2. With n = 1 the interval is undefined and reported as NaN.
A paired difference (two settings run on the same seeds) is the t-interval of the per-seed
differences, which removes the between-seed variance the two settings share.

**Bounded metrics.** Accuracies and attack scores live in [0, 1], their paired differences in
[−1, 1]. Given the metric's range, the t-interval is *clipped* to it and the estimate is flagged
(``Estimate.clipped``; printed with a trailing ``*``). Why clipping and not another interval:

- the mean of a bounded metric lies in its range, so clipping removes only impossible values: the
  clipped interval covers the mean exactly when the t-interval does (same coverage, never wider);
- transformed intervals (logit, arcsine) are undefined at exactly 0 or 1, which forget accuracies
  reach (a forgotten class at 0, an original's forget set at 1); Wilson and Clopper–Pearson
  intervals are for one binomial count, not for a mean of per-run accuracies over seeds; and a
  bootstrap is unreliable at 3–5 seeds;
- the flag tells the reader that the per-seed values crowd the bound, where the t-interval's
  normal approximation is weakest.

The verdict on a difference never depends on the clipping: 0 lies inside every difference range,
so the clipped interval excludes 0 exactly when the t-interval does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Confidence level of every interval the package reports.
CONFIDENCE = 0.95

#: The range of a bounded metric, ``(low, high)``; one end may be infinite (a duration: ``(0, inf)``).
Range = tuple[float, float]

#: The range of accuracies and attack scores.
UNIT_RANGE: Range = (0.0, 1.0)

# Slack for values computed in float32 (an accuracy of 1 may be stored as 1.0000000119).
_RANGE_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Estimate:
    """A mean with its confidence interval over ``n`` values (NaN bounds when ``n < 2``).

    ``clipped`` is true when the t-interval reached past the metric's range and was cut to it
    (see the module docstring); such an estimate prints with a trailing ``*``.
    """

    mean: float
    low: float
    high: float
    n: int
    clipped: bool = False

    @property
    def half_width(self) -> float:
        """Half the interval's width (NaN when undefined)."""
        return (self.high - self.low) / 2

    @property
    def direction(self) -> str:
        """``"higher"`` when the whole interval lies above 0, ``"lower"`` when below, else ``"no
        significant difference"`` (also when it is undefined): the verdict on a paired difference."""
        if self.low > 0:
            return "higher"
        if self.high < 0:
            return "lower"
        return "no significant difference"

    def __format__(self, spec: str) -> str:
        """``mean [low, high]``, each number in the format ``spec`` (``.3f`` when empty), so tables
        print estimates directly; ``*`` follows a clipped interval.

        >>> f"{Estimate(0.012, -0.004, 0.028, 5):+.3f}"
        '+0.012 [-0.004, +0.028]'
        >>> f"{Estimate(0.99, 0.97, 1.0, 3, clipped=True)}"
        '0.990 [0.970, 1.000]*'
        """
        spec = spec or ".3f"
        text = f"{self.mean:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"
        return text + "*" if self.clipped else text


def check_range(value_range: Range | None) -> Range | None:
    """Return ``value_range`` as floats if it is ``None`` or ``(low, high)`` with low < high, at
    least one end finite and neither NaN (``(0, inf)``: a metric bounded below only)."""
    if value_range is None:
        return None
    try:
        low, high = (float(v) for v in value_range)
    except (TypeError, ValueError):
        raise ValueError(f"a metric range must be (low, high) or None; got {value_range!r}") from None
    if not (low < high and (math.isfinite(low) or math.isfinite(high))):
        raise ValueError(f"a metric range must have low < high and a finite end; got {value_range!r}")
    return low, high


def difference_range(metric_range: Range | None) -> Range | None:
    """The range of ``a − b`` for ``a`` and ``b`` in ``metric_range`` (``(0, 1)`` → ``(−1, 1)``);
    ``None`` (unbounded) when the metric has an infinite end."""
    checked = check_range(metric_range)
    if checked is None or not all(math.isfinite(v) for v in checked):
        return None
    low, high = checked
    return low - high, high - low


def present_values(
    values: Sequence[float], value_range: Range | None = None, allow_infinite: bool = False
) -> np.ndarray:
    """``values`` without NaN (and ``None``: missing), as floats. A value outside ``value_range``,
    or an infinite one unless ``allow_infinite``, raises a ``ValueError`` naming it."""
    checked = check_range(value_range)
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    bad = x[~np.isfinite(x)]
    if bad.size and not allow_infinite:
        raise ValueError(f"values must be finite (NaN marks a missing value); got {bad[0]}")
    if checked is not None and x.size:
        low, high = checked
        outside = x[(x < low - _RANGE_TOLERANCE) | (x > high + _RANGE_TOLERANCE)]
        if outside.size:
            raise ValueError(
                f"value {outside[0]} is outside the metric's range [{low}, {high}]; "
                "give the right range, or None for an unbounded metric"
            )
    return x


def t_interval(x: np.ndarray, confidence: float = CONFIDENCE, value_range: Range | None = None) -> Estimate:
    """Mean and t-interval of the array ``x`` without NaN (see :func:`mean_ci`), clipped to ``value_range``."""
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2 or not math.isfinite(mean):
        return Estimate(mean, math.nan, math.nan, n)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    if sem == 0.0:
        return Estimate(mean, mean, mean, n)
    low, high = (float(v) for v in stats.t.interval(confidence, n - 1, loc=mean, scale=sem))
    if value_range is None or (value_range[0] <= low and high <= value_range[1]):
        return Estimate(mean, low, high, n)
    return Estimate(mean, max(low, value_range[0]), min(high, value_range[1]), n, clipped=True)


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE, value_range: Range | None = None) -> Estimate:
    """Mean and t-interval of ``values``; NaN values are dropped (``n`` counts the rest). An infinite
    value is kept: the mean is infinite and the interval NaN, so the estimate prints as undefined.

    ``value_range`` (e.g. :data:`UNIT_RANGE` for an accuracy) clips the interval to the metric's
    range and flags it; a value outside the range raises a ``ValueError``.

    >>> e = mean_ci([1.0, 2.0, 3.0]); (e.mean, e.n, round(e.high - e.mean, 4))
    (2.0, 3, 2.4841)
    >>> f"{mean_ci([0.99, 1.0, 0.97], value_range=UNIT_RANGE)}"
    '0.987 [0.949, 1.000]*'
    """
    checked = check_range(value_range)
    return t_interval(present_values(values, checked, allow_infinite=True), confidence, checked)


def paired_values(a: Mapping[int, float], b: Mapping[int, float]) -> dict[int, float]:
    """``{s: a[s] − b[s]}`` over the seeds ``s`` both have with a value that is not NaN."""
    common = sorted(s for s in a if s in b and not math.isnan(a[s]) and not math.isnan(b[s]))
    return {s: a[s] - b[s] for s in common}


def paired_difference(
    a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE, metric_range: Range | None = None
) -> Estimate:
    """Mean and t-interval of ``a[s] − b[s]`` over the seeds ``s`` both have (finite values only).

    ``metric_range`` is the range of the metric itself (of ``a``'s and ``b``'s values); the interval
    is clipped to the range of a difference, :func:`difference_range`.

    >>> paired_difference({0: 1.0, 1: 2.0, 2: 9.0}, {0: 0.5, 1: 1.5}).mean
    0.5
    """
    checked = check_range(metric_range)
    if checked is not None:  # the inputs, not only their differences, must be in the metric's range
        present_values([*a.values(), *b.values()], checked, allow_infinite=True)
    return mean_ci(list(paired_values(a, b).values()), confidence, difference_range(checked))

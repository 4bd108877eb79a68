"""Means and 95% confidence intervals over seeds, and paired differences (pure functions, used by
every table that reports replicated runs: the studies of :mod:`unlearn_pl.tuning`, benchmarks).

The interval is Student's t-interval, ``mean ± t_{0.975, n−1} · s / √n`` (``scipy.stats.t``), the
usual choice for a handful of seeds: it assumes roughly normal per-seed values, and unlike a
bootstrap it is defined for n = 2. With n = 1 the interval is undefined and reported as NaN.
A paired difference (two settings run on the same seeds) is the t-interval of the per-seed
differences, which removes the between-seed variance the two settings share.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

#: Confidence level of every interval the package reports.
CONFIDENCE = 0.95


@dataclass(frozen=True)
class Estimate:
    """A mean with its confidence interval over ``n`` values (NaN bounds when ``n < 2``)."""

    mean: float
    low: float
    high: float
    n: int

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
        print estimates directly.

        >>> f"{Estimate(0.012, -0.004, 0.028, 5):+.3f}"
        '+0.012 [-0.004, +0.028]'
        """
        spec = spec or ".3f"
        return f"{self.mean:{spec}} [{self.low:{spec}}, {self.high:{spec}}]"


def mean_ci(values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean and t-interval of ``values``; NaN values are dropped (``n`` counts the rest).

    >>> e = mean_ci([1.0, 2.0, 3.0]); (e.mean, e.n, round(e.high - e.mean, 4))
    (2.0, 3, 2.4841)
    """
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    n = len(x)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    sem = float(x.std(ddof=1)) / math.sqrt(n)
    if sem == 0.0:
        return Estimate(mean, mean, mean, n)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return Estimate(mean, float(low), float(high), n)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean and t-interval of ``a[s] − b[s]`` over the seeds ``s`` both have (finite values only).

    >>> paired_difference({0: 1.0, 1: 2.0, 2: 9.0}, {0: 0.5, 1: 1.5}).mean
    0.5
    """
    common = sorted(s for s in a if s in b and not math.isnan(a[s]) and not math.isnan(b[s]))
    return mean_ci([a[s] - b[s] for s in common], confidence)

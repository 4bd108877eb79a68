"""What n paired differences can detect: the minimal detectable effect of the two-sided paired
t-test at 80% power and α = 0.05 (statsmodels' ``TTestPower``), in standardized units
(:func:`detectable_effect_size`: 1.68 at n = 5, 3.26 at n = 3) and in a metric's units
(:func:`minimal_detectable_effect`)."""

from __future__ import annotations

import functools
import math
from numbers import Real

import numpy as np

#: Two-sided significance level of every test (the intervals are at 1 − α = 95%).
ALPHA = 0.05
#: Power at which the minimal detectable effect is stated.
POWER = 0.8


def check_level(name: str, value: float) -> float:
    """``value`` as a float if it is a level in (0, 1) (α or power), else ``ValueError`` naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, Real) or not 0 < value < 1:
        raise ValueError(f"{name} must be in (0, 1); got {value!r}")
    return float(value)


@functools.lru_cache(maxsize=1024)
def detectable_effect_size(n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """``d_min``: the smallest standardized mean difference (mean/sd of the differences) that the
    two-sided one-sample t-test on ``n`` paired differences detects with ``power`` at level ``alpha``.

    Solved with statsmodels' ``TTestPower`` as a one-sided test at ``alpha / 2``: the two-sided
    power adds the opposite tail, which is below 10⁻⁵ of the power at ``d_min`` (the two agree to
    6 significant digits for n = 2–40 and α = 0.05/k, k ≤ 30), while statsmodels' two-sided power
    is NaN for 1–2 degrees of freedom at small α (scipy's noncentral-t lower tail), where its solver
    then returns the edge of its search bracket.

    >>> round(detectable_effect_size(5), 2), round(detectable_effect_size(3), 2)
    (1.68, 3.26)
    """
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 2:
        raise ValueError(f"a paired t-test needs n >= 2 differences; got n = {n!r}")
    alpha, power = check_level("alpha", alpha), check_level("power", power)
    # Imported on use: statsmodels (with pandas) adds 0.2 s to every process start, and only
    # study reports need it.
    from statsmodels.stats.power import TTestPower

    solver = TTestPower()
    d = float(solver.solve_power(effect_size=None, nobs=int(n), alpha=alpha / 2, power=power, alternative="larger"))
    reached = float(solver.power(effect_size=d, nobs=int(n), alpha=alpha / 2, alternative="larger"))
    if not (math.isfinite(d) and abs(reached - power) < 1e-4):
        raise RuntimeError(
            f"statsmodels' power solver did not converge for n = {n}, alpha = {alpha}, "
            f"power = {power} (d = {d}, power reached {reached})"
        )
    return d


def minimal_detectable_effect(sd: float, n: int, alpha: float = ALPHA, power: float = POWER) -> float:
    """``d_min · sd``: the MDE in the metric's units for ``n`` differences with standard deviation
    ``sd`` (NaN when ``n < 2`` or ``sd`` is NaN: nothing can be detected).

    >>> round(minimal_detectable_effect(0.05, 5), 4)
    0.0841
    """
    if n < 2 or math.isnan(sd):
        return math.nan
    return detectable_effect_size(n, alpha, power) * sd

"""Verdicts on paired comparisons that say what the data could detect (pure functions).

A comparison of two settings run on the same seeds is read from the per-seed differences ``d``:

- the **estimate**: mean of ``d`` with its 95% t-interval and ``n`` (:mod:`.intervals`, clipped
  to the metric's range and flagged);
- the **p-value** of the two-sided one-sample t-test of mean(d) = 0 (statsmodels'
  ``DescrStatsW.ttest_mean``; the same test as ``scipy.stats.ttest_rel``);
- the **minimal detectable effect** (MDE): the smallest true mean difference the test detects with
  80% power at two-sided α = 0.05, in the metric's units: ``d_min · sd(d)``, with ``d_min`` the
  standardized effect from statsmodels' ``TTestPower.solve_power`` (1.68 at n = 5, 3.26 at n = 3);
- with a **margin** m, the TOST equivalence test against ±m (two one-sided t-tests, statsmodels'
  ``DescrStatsW.ttost_mean``, the one-sample form of ``ttost_paired``; Schuirmann 1987).

The **verdict** is exactly one of ``higher``, ``lower``, ``equivalent within ±m`` or
``inconclusive (could detect ≥ x)``, decided in this order:

1. ``higher`` / ``lower``: the difference is significant (p < α; equivalently the 95% interval
   excludes 0), signed by the estimate. This comes first, so a difference that is both
   significant and inside the margin reads as a difference;
2. ``equivalent within ±m``: a margin is given and the TOST p-value is below α (equivalently the
   90% interval lies inside ±m);
3. ``inconclusive (could detect ≥ x)``, x the MDE: neither could be shown, and x says how large a
   difference the seeds could have revealed. With fewer than two values nothing can be tested
   and the verdict reads ``inconclusive (n = 1: nothing detectable)``.

Degenerate data: NaN marks a missing seed and is dropped (``n`` counts the rest); an infinite
value raises a ``ValueError``. When every difference is the same (sd = 0) the t statistics are
±∞ or 0/0: the p-value is 0 for a non-zero difference and 1 for a zero one, the TOST p-value 0
inside the margin and 1 outside, and the MDE is 0.

A **claim tested over several settings** (e.g. DEL − Random at every budget and epoch count) is a
family of tests: :func:`holm` adjusts the p-values of the differences, and separately the TOST
p-values, with Holm's step-down method (Holm 1979; :func:`holm_adjusted`, equal to statsmodels'
``multipletests(method="holm")``), which keeps the family-wise error at α. The adjusted MDE is
taken at α/k, Holm's strictest step for k settings (what every setting can detect whatever its
rank). The intervals stay 95% per setting. :func:`summarize` counts the settings per verdict
(``lower in 3 of 6 (Holm)``).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any, Literal

import numpy as np

from unlearn_pl.stats.intervals import Estimate, Range, check_range, difference_range, present_values, t_interval
from unlearn_pl.stats.power import ALPHA, POWER, check_level, minimal_detectable_effect

VerdictKind = Literal["higher", "lower", "equivalent", "inconclusive"]
#: The verdict words, in the order :func:`summarize` lists ties.
VERDICT_KINDS: tuple[str, ...] = ("higher", "lower", "equivalent", "inconclusive")


@dataclass(frozen=True)
class PairedComparison:
    """A paired comparison: estimate and interval, test, minimal detectable effect, optional TOST.

    Build one with :func:`compare_paired` (two settings' per-seed values) or
    :func:`compare_differences` (the per-seed differences); :func:`holm` returns adjusted copies.
    :attr:`verdict` is the sentence a report prints; :attr:`kind` its first word.

    Attributes:
        estimate: mean difference, its 95% interval (clipped to the difference's range) and ``n``.
        sd: standard deviation of the differences (NaN when ``n < 2``).
        p_value: two-sided p-value of mean difference = 0 (Holm-adjusted after :func:`holm`).
        mde: minimal detectable effect at :data:`POWER` (at α/k after :func:`holm`).
        margin: the equivalence margin m, or ``None`` (no equivalence test).
        tost_p: TOST p-value against ±m (NaN without a margin or with ``n < 2``).
        alpha: the level the verdict compares p-values with.
        power: the power the MDE is stated at.
        adjustment: ``""``, or ``"Holm"`` after :func:`holm`.

    >>> c = compare_differences([-0.06, -0.04, -0.05, -0.07, -0.03])
    >>> c.verdict, f"{c.estimate:+.3f}"
    ('lower', '-0.050 [-0.070, -0.030]')
    """

    estimate: Estimate
    sd: float
    p_value: float
    mde: float
    margin: float | None = None
    tost_p: float = math.nan
    alpha: float = ALPHA
    power: float = POWER
    adjustment: str = ""

    @property
    def n(self) -> int:
        """Number of paired differences."""
        return self.estimate.n

    @property
    def kind(self) -> VerdictKind:
        """``higher``, ``lower``, ``equivalent`` or ``inconclusive`` (precedence in the module docstring)."""
        if self.n >= 2 and self.p_value < self.alpha:
            return "higher" if self.estimate.mean > 0 else "lower"
        if self.margin is not None and self.tost_p < self.alpha:
            return "equivalent"
        return "inconclusive"

    def verdict_text(self, spec: str = ".3g") -> str:
        """The verdict with its numbers in the format ``spec``: ``higher``, ``lower``,
        ``equivalent within ±m`` or ``inconclusive (could detect ≥ x)``."""
        kind = self.kind
        if kind == "equivalent":
            return f"equivalent within ±{self.margin:{spec}}"
        if kind == "inconclusive":
            if self.n < 2:
                return f"inconclusive (n = {self.n}: nothing detectable)"
            return f"inconclusive (could detect ≥ {self.mde:{spec}})"
        return kind

    @property
    def verdict(self) -> str:
        """:meth:`verdict_text` with three significant digits."""
        return self.verdict_text()


def _difference_array(differences: Sequence[float] | Mapping[Any, float], value_range: Range | None) -> np.ndarray:
    values = list(differences.values()) if isinstance(differences, Mapping) else differences
    if isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise TypeError(f"differences must be a sequence of numbers or a {{seed: number}} mapping; got {differences!r}")
    return present_values(list(values), value_range)


def _check_margin(margin: float | None) -> float | None:
    if margin is None:
        return None
    if isinstance(margin, bool) or not isinstance(margin, Real) or not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"an equivalence margin must be a positive finite number or None; got {margin!r}")
    return float(margin)


def compare_differences(
    differences: Sequence[float] | Mapping[Any, float],
    margin: float | None = None,
    value_range: Range | None = None,
    alpha: float = ALPHA,
    power: float = POWER,
) -> PairedComparison:
    """The :class:`PairedComparison` of per-seed differences (a sequence, or ``{seed: difference}``).

    Args:
        differences: per-seed differences; NaN marks a missing seed and is dropped.
        margin: equivalence margin m > 0 in the metric's units (``None``: no equivalence test).
        value_range: the range of a *difference* (e.g. ``(-1, 1)`` for accuracies; see
            :func:`~unlearn_pl.stats.intervals.difference_range`); clips the interval.
        alpha: two-sided level of the tests; the interval is at 1 − α.
        power: power at which the MDE is stated.

    >>> compare_differences([0.01, -0.01, 0.0, 0.005, -0.005], margin=0.05).verdict
    'equivalent within ±0.05'
    >>> compare_differences([0.08, -0.05, 0.02], margin=0.05).verdict
    'inconclusive (could detect ≥ 0.212)'
    """
    alpha, power = check_level("alpha", alpha), check_level("power", power)
    margin = _check_margin(margin)
    checked = check_range(value_range)
    d = _difference_array(differences, checked)
    estimate = t_interval(d, 1 - alpha, checked)
    n = estimate.n
    if n < 2:
        return PairedComparison(estimate, math.nan, math.nan, math.nan, margin, math.nan, alpha, power)
    sd = float(d.std(ddof=1))
    mean = estimate.mean
    if sd == 0.0:
        # t = mean / 0: ±∞ (p = 0) for a non-zero difference, 0/0 for a zero one (no evidence: p = 1).
        p_value = 0.0 if mean != 0 else 1.0
        tost_p = math.nan if margin is None else (0.0 if abs(mean) < margin else 1.0)
    else:
        # Imported on use, as in power.py: statsmodels slows every process start, not only reports.
        from statsmodels.stats.weightstats import DescrStatsW

        described = DescrStatsW(d)
        p_value = float(described.ttest_mean(0.0, alternative="two-sided")[1])
        tost_p = math.nan if margin is None else float(described.ttost_mean(-margin, margin)[0])
    mde = minimal_detectable_effect(sd, n, alpha, power)
    return PairedComparison(estimate, sd, p_value, mde, margin, tost_p, alpha, power)


def compare_paired(
    a: Mapping[Any, float],
    b: Mapping[Any, float],
    margin: float | None = None,
    metric_range: Range | None = None,
    alpha: float = ALPHA,
    power: float = POWER,
) -> PairedComparison:
    """Compare ``a`` with ``b`` (``{seed: value}``) on the seeds both have: the verdict reads
    ``higher`` when ``a`` is higher. ``metric_range`` is the range of the metric's values (e.g.
    :data:`~unlearn_pl.stats.intervals.UNIT_RANGE`); the interval is clipped to the range of a difference.

    >>> compare_paired({0: 0.91, 1: 0.88, 2: 0.90}, {0: 0.81, 1: 0.80, 2: 0.79}, metric_range=(0, 1)).verdict
    'higher'
    """
    checked = check_range(metric_range)
    if checked is not None:  # the inputs themselves, not only their differences, must be in range
        present_values([*a.values(), *b.values()], checked)
    common = sorted(s for s in a if s in b and not math.isnan(a[s]) and not math.isnan(b[s]))
    return compare_differences([a[s] - b[s] for s in common], margin, difference_range(checked), alpha, power)


def holm_adjusted(p_values: Sequence[float]) -> list[float]:
    """Holm's (1979) step-down adjusted p-values, in the order given: the i-th smallest of k is
    multiplied by k − i + 1, made non-decreasing along that order, and capped at 1.

    The values equal statsmodels' ``multipletests(p, method="holm")[1]`` (tested), which is not
    called here: its Holm branch runs a full ``gc.collect()`` on every call, about 0.2 s in a
    process that holds a study, and a study's report adjusts one family per claim and metric.
    """
    p = np.asarray(p_values, dtype=float)
    order = np.argsort(p, kind="stable")
    stepped = np.maximum.accumulate(p[order] * np.arange(len(p), 0, -1))
    out = np.empty_like(p)
    out[order] = np.minimum(stepped, 1.0)
    return [float(v) for v in out]


def holm(comparisons: Sequence[PairedComparison]) -> list[PairedComparison]:
    """The comparisons of one claim over k settings, Holm-adjusted as one family.

    The p-values of the differences are adjusted together, the TOST p-values (of the settings
    with a margin) as a second family; settings with ``n < 2`` test nothing and are left out of k.
    Each copy's MDE is restated at α/k. Verdicts then follow from the adjusted values.
    """
    comparisons = list(comparisons)
    alphas = {c.alpha for c in comparisons}
    if len(alphas) > 1:
        raise ValueError(f"a family of comparisons needs one alpha; got {sorted(alphas)}")
    if any(c.adjustment for c in comparisons):
        raise ValueError("these comparisons are adjusted already; pass the unadjusted ones")
    if not comparisons:
        return []
    alpha = alphas.pop()

    def adjusted(values: list[float]) -> list[float]:
        tested = [i for i, p in enumerate(values) if not math.isnan(p)]
        out = [math.nan] * len(values)
        for i, p in zip(tested, holm_adjusted([values[i] for i in tested]), strict=True):
            out[i] = p
        return out

    p_values = adjusted([c.p_value for c in comparisons])
    tost_ps = adjusted([c.tost_p for c in comparisons])
    k = sum(not math.isnan(p) for p in p_values)
    return [
        dataclasses.replace(
            c,
            p_value=p,
            tost_p=t,
            adjustment="Holm",
            mde=minimal_detectable_effect(c.sd, c.n, alpha / max(k, 1), c.power),
        )
        for c, p, t in zip(comparisons, p_values, tost_ps, strict=True)
    ]


def summarize(comparisons: Sequence[PairedComparison]) -> str:
    """How many settings of a claim reach each verdict, most frequent first (ties in the order of
    :data:`VERDICT_KINDS`), e.g. ``lower in 3 of 6, inconclusive in 3 of 6 (Holm)``.

    >>> summarize(holm([compare_differences(d) for d in ([-3, -2, -2.5], [-3, -2, -2.6], [1, -1, 0.5])]))
    'lower in 2 of 3, inconclusive in 1 of 3 (Holm)'
    """
    comparisons = list(comparisons)
    if not comparisons:
        raise ValueError("summarize needs at least one comparison")
    counts = Counter(c.kind for c in comparisons)
    total = len(comparisons)
    margins = {c.margin for c in comparisons if c.kind == "equivalent"}
    words = {kind: kind for kind in VERDICT_KINDS}
    if len(margins) == 1:
        words["equivalent"] = f"equivalent within ±{margins.pop():.3g}"
    order = sorted(counts, key=lambda kind: (-counts[kind], VERDICT_KINDS.index(kind)))
    text = ", ".join(f"{words[kind]} in {counts[kind]} of {total}" for kind in order)
    adjustments = {c.adjustment for c in comparisons if c.adjustment}
    return f"{text} ({adjustments.pop()})" if len(adjustments) == 1 else text

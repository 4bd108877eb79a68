"""Statistics of replicated runs: means and intervals over seeds (:mod:`.intervals`), and verdicts
on paired comparisons with their power, equivalence tests and Holm adjustment (:mod:`.verdicts`)."""

from unlearn_pl.stats.intervals import (
    CONFIDENCE,
    UNIT_RANGE,
    Estimate,
    Range,
    difference_range,
    mean_ci,
    paired_difference,
    paired_values,
)
from unlearn_pl.stats.verdicts import (
    ALPHA,
    HOLM_COLUMNS,
    POWER,
    VERDICT_COLUMNS,
    VERDICT_KINDS,
    PairedComparison,
    compare_differences,
    compare_paired,
    detectable_effect_size,
    holm,
    metric_range,
    minimal_detectable_effect,
    summarize,
    verdict_rows,
)

__all__ = [
    "ALPHA", "CONFIDENCE", "HOLM_COLUMNS", "POWER", "UNIT_RANGE", "VERDICT_COLUMNS", "VERDICT_KINDS", "Estimate",
    "PairedComparison", "Range", "compare_differences", "compare_paired", "detectable_effect_size", "difference_range",
    "holm", "mean_ci", "metric_range", "minimal_detectable_effect", "paired_difference", "paired_values", "summarize",
    "verdict_rows",
]

"""Statistics of replicated runs: means and intervals over seeds (:mod:`.intervals`), what n seeds
can detect (:mod:`.power`), verdicts on paired comparisons with equivalence tests and Holm
adjustment (:mod:`.verdicts`), and those verdicts on the rows of a table of differences (:mod:`.tables`)."""

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
from unlearn_pl.stats.power import ALPHA, POWER, detectable_effect_size, minimal_detectable_effect
from unlearn_pl.stats.tables import HOLM_COLUMNS, VERDICT_COLUMNS, metric_range, verdict_rows
from unlearn_pl.stats.verdicts import (
    VERDICT_KINDS,
    PairedComparison,
    compare_differences,
    compare_paired,
    holm,
    holm_adjusted,
    summarize,
)

__all__ = [
    "ALPHA",
    "CONFIDENCE",
    "HOLM_COLUMNS",
    "POWER",
    "UNIT_RANGE",
    "VERDICT_COLUMNS",
    "VERDICT_KINDS",
    "Estimate",
    "PairedComparison",
    "Range",
    "compare_differences",
    "compare_paired",
    "detectable_effect_size",
    "difference_range",
    "holm",
    "holm_adjusted",
    "mean_ci",
    "metric_range",
    "minimal_detectable_effect",
    "paired_difference",
    "paired_values",
    "summarize",
    "verdict_rows",
]

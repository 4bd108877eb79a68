"""Evaluation: per-example statistics and the validation callbacks built on them."""

from unlearn_pl.metrics.accuracy import SplitAccuracy
from unlearn_pl.metrics.base import EvaluationCallback, Results
from unlearn_pl.metrics.per_example import EvaluationOutputs, PerExampleStats, deduplicate, example_stats
from unlearn_pl.metrics.report import RunReport, format_table

__all__ = [
    "SplitAccuracy", "EvaluationCallback", "Results", "EvaluationOutputs", "PerExampleStats",
    "deduplicate", "example_stats", "RunReport", "format_table",
]

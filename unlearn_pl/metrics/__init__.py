"""Evaluation: per-example statistics and the validation callbacks built on them."""

from typing import Any

from unlearn_pl.metrics.accuracy import SplitAccuracy
from unlearn_pl.metrics.base import EvaluationCallback, Results
from unlearn_pl.metrics.mia import LossAttack, MIAEfficacy, loss_attack, mia_efficacy
from unlearn_pl.metrics.per_example import (
    EvaluationOutputs,
    PerExampleStats,
    deduplicate,
    example_stats,
)
from unlearn_pl.metrics.region_plots import log_figure, plot_regions
from unlearn_pl.metrics.regions import DecisionRegions
from unlearn_pl.metrics.run_report import RunReport
from unlearn_pl.metrics.tow import TugOfWar, tug_of_war
from unlearn_pl.metrics.ulira import ULiRA
from unlearn_pl.report import format_table
from unlearn_pl.ulira.bank import ShadowBank
from unlearn_pl.utils.describe import instantiate

#: The metrics an :class:`~unlearn_pl.UnlearningModule` evaluates unless given others, as the
#: ``class_path`` blocks ``--print_config`` shows: accuracy and loss per split with gaps to the
#: oracle, ToW, the loss attack and MIA-efficacy, all cheap next to a validation pass. Decision
#: regions cost ``2 · num_planes · 50²`` extra forward passes per model and write plots, so they
#: are opted into (``configs/metrics/full.yaml``).
DEFAULT_METRICS: Any = tuple(
    {"class_path": f"unlearn_pl.metrics.{cls.__name__}"} for cls in (SplitAccuracy, TugOfWar, LossAttack, MIAEfficacy)
)


def default_metrics() -> list[EvaluationCallback]:
    """New instances of :data:`DEFAULT_METRICS`."""
    return [instantiate(config) for config in DEFAULT_METRICS]


__all__ = [
    "SplitAccuracy",
    "EvaluationCallback",
    "Results",
    "EvaluationOutputs",
    "PerExampleStats",
    "deduplicate",
    "example_stats",
    "RunReport",
    "format_table",
    "TugOfWar",
    "tug_of_war",
    "LossAttack",
    "MIAEfficacy",
    "loss_attack",
    "mia_efficacy",
    "DecisionRegions",
    "plot_regions",
    "log_figure",
    "DEFAULT_METRICS",
    "default_metrics",
    "ULiRA",
    "ShadowBank",
]

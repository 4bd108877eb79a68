"""One method's audit from its banks: the challenge's F and final score, the ε histogram and KLOM's
three distributions, each with a bootstrap interval over the models.

The banks are paired by seed: row s of the unlearned bank and row s of the oracle bank come from
the same model seed (the unlearned model starts from the original of that seed, which shares its
initial weights with the oracle). Each bootstrap resample draws N seeds with replacement and
takes both models of each drawn seed; every statistic is computed from the same resamples. A
plain resample ties repeated models, which moves F and KLOM far from what fresh models give, so
the confidences and margins get kernel noise and the interval is recentred on the estimate
(:func:`~unlearn_pl.functional.smoothed_bootstrap_over_models`; the accuracies are resampled as
they are). It is an interval over the models for the fixed forget set and samples;
``benchmarks/calibrate_audit_intervals.py`` measures its coverage.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from unlearn_pl.functional import (
    KLOMSummary,
    challenge_confidence,
    challenge_score,
    epsilon_buckets,
    epsilon_points,
    forgetting_epsilons,
    klom,
    klom_margins,
    smoothed_bootstrap_over_models,
    summarize_klom,
)
from unlearn_pl.stats import Estimate

#: The splits KLOM is reported on: forgetting (forget) and collateral damage (retain, validation).
KLOM_SPLITS: tuple[str, ...] = ("forget", "retain", "val")
#: The summaries of each KLOM distribution that get an interval.
KLOM_STATISTICS: tuple[str, ...] = ("median", "q1", "q3", "p95")


@dataclass
class Banks:
    """One method's records over N seeds (row s: seed s), and its oracles'.

    Attributes:
        logits: ``{split: (N, E, C)}`` of the unlearned models on the recorded examples.
        oracle_logits: the same for the oracles.
        labels: ``{split: (E,)}`` training labels of the recorded examples.
        accuracy: ``{split: (N,)}`` of the unlearned models on each whole split.
        oracle_accuracy: the same for the oracles.
    """

    logits: dict[str, np.ndarray]
    oracle_logits: dict[str, np.ndarray]
    labels: dict[str, np.ndarray]
    accuracy: dict[str, np.ndarray]
    oracle_accuracy: dict[str, np.ndarray]

    @property
    def num_models(self) -> int:
        return len(self.logits["forget"])


@dataclass
class MethodAudit:
    """The audit of one method (see :func:`audit_method`); each :class:`~unlearn_pl.stats.Estimate`
    has the value on all models and its bootstrap interval, ``n`` the models per bank."""

    num_models: int
    forget_quality: Estimate
    score: Estimate
    retain_ratio: Estimate
    test_ratio: Estimate
    #: Per forget example: its ε (NaN where no decision rule gives a finite one) and points.
    epsilons: np.ndarray
    points: np.ndarray
    #: Upper edges of the ε buckets (the last bucket, ε at or above the top edge, scores 0).
    bucket_edges: np.ndarray
    bucket_points: np.ndarray
    #: Per bucket: the fraction of the forget examples (with a defined ε) in it.
    histogram: list[Estimate]
    histogram_counts: np.ndarray
    klom: dict[str, KLOMSummary]
    klom_intervals: dict[str, dict[str, Estimate]]
    klom_values: dict[str, np.ndarray]
    accuracy: dict[str, dict[str, float]] = field(default_factory=dict)

    @property
    def undefined_epsilons(self) -> int:
        return int(np.isnan(self.epsilons).sum())


def _statistics(
    conf_u: np.ndarray, conf_o: np.ndarray, acc_u: np.ndarray, acc_o: np.ndarray, *margins: np.ndarray
) -> np.ndarray:
    """``[F, score, retain ratio, test ratio, bucket fractions…, KLOM statistics per split…]``."""
    n = len(conf_u)
    eps = forgetting_epsilons(conf_u, conf_o, undefined="nan")
    defined = eps[~np.isnan(eps)]
    quality = float(np.nanmean(epsilon_points(eps, n))) if defined.size else np.nan
    edges, _ = epsilon_buckets(n)
    counts = np.bincount(np.searchsorted(edges, defined, side="right"), minlength=len(edges) + 1)
    fractions = counts / max(defined.size, 1) if defined.size else np.full(len(edges) + 1, np.nan)
    retain_ratio, test_ratio = acc_u.mean(0) / acc_o.mean(0)
    score = challenge_score(quality, acc_u[:, 0], acc_o[:, 0], acc_u[:, 1], acc_o[:, 1]) if defined.size else np.nan
    out = [quality, score, retain_ratio, test_ratio, *fractions]
    for unlearned, oracle in zip(margins[0::2], margins[1::2], strict=True):
        values = klom(unlearned, oracle)
        values = values[~np.isnan(values)]
        out.extend(np.quantile(values, [0.5, 0.25, 0.75, 0.95]) if values.size else [np.nan] * 4)
    return np.asarray(out, dtype=np.float64)


def _within(e: Estimate, low: float, high: float) -> Estimate:
    return Estimate(e.mean, float(np.clip(e.low, low, high)), float(np.clip(e.high, low, high)), e.n)


def audit_method(banks: Banks, n_resamples: int = 200, seed: int = 0) -> MethodAudit:
    """F, the final score with both utility ratios, the ε histogram and KLOM per split, each with
    a smoothed paired bootstrap interval over the seeds (``n_resamples`` resamples, seeded by ``seed``).

    The confidences are the challenge's (:func:`~unlearn_pl.functional.challenge_confidence`, its
    float precision as published) and the margins KLOM's authors' (:func:`~unlearn_pl.functional.klom_margins`
    of the float32 logits); ε and KLOM take the published defaults.

    Raises:
        ValueError: fewer than 2 models, no test accuracy, or no forget example with a defined ε.
    """
    n = banks.num_models
    if n < 2:
        raise ValueError(f"an audit compares distributions over models: it needs at least 2 seeds; got {n}")
    for which, accuracy in (("unlearned", banks.accuracy), ("oracle", banks.oracle_accuracy)):
        if "retain" not in accuracy or "test" not in accuracy:
            raise ValueError(f"the {which} models have no retain or test accuracy; the challenge's score needs both")
    conf_u = challenge_confidence(
        banks.logits["forget"], np.broadcast_to(banks.labels["forget"], banks.logits["forget"].shape[:2])
    )
    conf_o = challenge_confidence(
        banks.oracle_logits["forget"], np.broadcast_to(banks.labels["forget"], banks.oracle_logits["forget"].shape[:2])
    )
    margins = []
    for split in KLOM_SPLITS:
        for logits in (banks.logits[split], banks.oracle_logits[split]):
            margins.append(klom_margins(logits, np.broadcast_to(banks.labels[split], logits.shape[:2])))
    acc_u = np.stack([banks.accuracy["retain"], banks.accuracy["test"]], 1)
    acc_o = np.stack([banks.oracle_accuracy["retain"], banks.oracle_accuracy["test"]], 1)

    epsilons = forgetting_epsilons(conf_u, conf_o, undefined="nan")
    if np.isnan(epsilons).all():
        raise ValueError(
            "no forget example has a defined ε (every unlearned and oracle confidence is constant or "
            "separated by less than the threshold grid's step): F is undefined"
        )
    estimates = smoothed_bootstrap_over_models(
        _statistics,
        conf_u,
        conf_o,
        acc_u,
        acc_o,
        *margins,
        smooth=[True, True, False, False, *[True] * len(margins)],
        n_resamples=n_resamples,
        seed=seed,
    )
    edges, points = epsilon_buckets(n)
    buckets = len(edges) + 1
    # A recentred interval may cross a bound the statistic cannot: F and fractions lie in [0, 1], KLOM >= 0.
    # Recentring may move an interval past a bound: F lies in [0, 1], the score and ratios are >= 0.
    quality = _within(estimates[0], 0, 1)
    score, retain_ratio, test_ratio = (_within(e, 0, np.inf) for e in estimates[1:4])
    histogram = [_within(e, 0, 1) for e in estimates[4 : 4 + buckets]]
    klom_estimates = [_within(e, 0, np.inf) for e in estimates[4 + buckets :]]
    klom_values = {split: klom(margins[2 * k], margins[2 * k + 1]) for k, split in enumerate(KLOM_SPLITS)}
    defined = epsilons[~np.isnan(epsilons)]
    return MethodAudit(
        num_models=n,
        forget_quality=quality,
        score=score,
        retain_ratio=retain_ratio,
        test_ratio=test_ratio,
        epsilons=epsilons,
        points=epsilon_points(epsilons, n),
        bucket_edges=edges,
        bucket_points=points,
        histogram=histogram,
        histogram_counts=np.bincount(np.searchsorted(edges, defined, side="right"), minlength=buckets),
        klom={split: summarize_klom(values) for split, values in klom_values.items()},
        klom_intervals={
            split: dict(zip(KLOM_STATISTICS, klom_estimates[4 * k : 4 * k + 4], strict=True))
            for k, split in enumerate(KLOM_SPLITS)
        },
        klom_values=klom_values,
        accuracy={
            "unlearned": {s: float(a.mean()) for s, a in banks.accuracy.items()},
            "oracle": {s: float(a.mean()) for s, a in banks.oracle_accuracy.items()},
        },
    )


__all__ = ["KLOM_SPLITS", "KLOM_STATISTICS", "Banks", "MethodAudit", "audit_method"]

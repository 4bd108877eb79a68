"""Confidence intervals of per-example audits by resampling the models (``scipy.stats.bootstrap``).

The per-example audits (the unlearning challenge's forgetting quality, KLOM) compare two banks
of models, ``(models, examples)`` each. Their uncertainty comes from which models were trained:
the replicate is a model, and a model contributes a whole row, so a resample draws model indices
with replacement, independently per bank (``paired=False``: the unlearned and the retrained
models are separate draws) or the same indices for all banks (``paired=True``: row i of every bank
comes from one seed and the seeds are the replicates). SciPy's bootstrap does the drawing and the
interval; here it resamples *indices*, so the statistic sees whole rows.

Resampling with replacement repeats models, which ties values in a bank: statistics that react to
ties (the challenge's peakiness cap, a histogram's top edge) see slightly peakier banks than the
models' distribution would give. The interval is over the models of a fixed set of examples.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from unlearn_pl.stats import CONFIDENCE, Estimate

Method = Literal["percentile", "basic", "BCa"]


def bootstrap_over_models(
    statistic: Callable[..., float],
    *banks: ArrayLike,
    n_resamples: int = 1000,
    confidence: float = CONFIDENCE,
    method: Method = "percentile",
    paired: bool = False,
    seed: int = 0,
) -> Estimate:
    """The statistic of ``banks`` with a bootstrap interval over their models (axis 0).

    Args:
        statistic: called as ``statistic(*resampled_banks)``; returns one number.
        banks: arrays with the models on axis 0 (e.g. unlearned and retrained confidences).
        n_resamples: number of bootstrap resamples.
        confidence: the interval's level, in (0, 1).
        method: SciPy's interval method; ``"percentile"`` by default since ``"BCa"`` costs one
            extra evaluation per model (its jackknife).
        paired: draw the same model indices for every bank (they must have as many models).
        seed: seed of the resampling.

    Returns:
        an :class:`~unlearn_pl.stats.Estimate` whose ``mean`` is the statistic on all models (the
        point estimate), ``low``/``high`` the interval and ``n`` the number of models per bank.

    >>> rng = np.random.default_rng(0)
    >>> u, r = rng.normal(0, 1, (20, 5)), rng.normal(1, 1, (20, 5))
    >>> e = bootstrap_over_models(lambda a, b: float(b.mean() - a.mean()), u, r, n_resamples=200)
    >>> e.low < e.mean < e.high
    True
    """
    def one(*resampled: np.ndarray) -> np.ndarray:
        return np.asarray([float(statistic(*resampled))])

    (estimate,) = bootstrap_many_over_models(
        one, *banks, n_resamples=n_resamples, confidence=confidence, method=method, paired=paired, seed=seed
    )
    return estimate


def bootstrap_many_over_models(
    statistic: Callable[..., ArrayLike],
    *banks: ArrayLike,
    n_resamples: int = 1000,
    confidence: float = CONFIDENCE,
    method: Method = "percentile",
    paired: bool = False,
    seed: int = 0,
) -> list[Estimate]:
    """Several statistics of the same resamples: ``statistic`` returns a 1-d array, and each entry
    gets its interval (:func:`bootstrap_over_models` for one number). Statistics that share costly
    work (the challenge's per-example ε behind F, the final score and the ε histogram) compute it
    once per resample this way. A NaN entry in any resample makes that entry's interval NaN; the
    point estimates must be finite.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(0, 1, (30, 4))
    >>> mean, spread = bootstrap_many_over_models(lambda a: [a.mean(), a.std()], x, n_resamples=200)
    >>> mean.low < mean.mean < mean.high and spread.low < spread.mean < spread.high
    True
    """
    if not banks:
        raise ValueError("give at least one bank of models")
    arrays = [np.asarray(bank) for bank in banks]
    sizes = [len(a) if a.ndim else 0 for a in arrays]
    if min(sizes) < 2:
        raise ValueError(f"every bank needs at least 2 models on axis 0 to resample; got {sizes}")
    if paired and len(set(sizes)) != 1:
        raise ValueError(f"paired resampling needs banks with as many models each; got {sizes}")
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer; got {n_resamples}")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1); got {confidence}")
    if method not in ("percentile", "basic", "BCa"):
        raise ValueError(f"method must be 'percentile', 'basic' or 'BCa'; got {method!r}")

    def on_indices(*indices: np.ndarray) -> np.ndarray:
        resampled = (a[np.asarray(i, dtype=np.intp)] for a, i in zip(arrays, indices, strict=True))
        return np.asarray(statistic(*resampled), dtype=np.float64).reshape(-1)

    point = on_indices(*(np.arange(n) for n in sizes))
    if point.size == 0 or not np.isfinite(point).all():
        raise ValueError(f"the statistic on all models is {point.tolist()}; a bootstrap interval needs finite values")
    rng = np.random.default_rng(seed)
    # ``rng`` replaced ``random_state`` in SciPy 1.15; the package supports older SciPy too.
    seeding = {"rng": rng} if "rng" in inspect.signature(stats.bootstrap).parameters else {"random_state": rng}
    result = stats.bootstrap(
        tuple(np.arange(n) for n in sizes), on_indices, n_resamples=int(n_resamples), vectorized=False,
        paired=paired, confidence_level=confidence, method=method, **seeding,
    )
    low = np.broadcast_to(np.asarray(result.confidence_interval.low, dtype=np.float64), point.shape)
    high = np.broadcast_to(np.asarray(result.confidence_interval.high, dtype=np.float64), point.shape)
    return [Estimate(float(p), float(lo), float(hi), sizes[0]) for p, lo, hi in zip(point, low, high, strict=True)]


__all__ = ["bootstrap_many_over_models", "bootstrap_over_models"]

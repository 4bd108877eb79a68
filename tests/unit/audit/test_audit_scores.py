"""One method's audit from synthetic banks: known answers, the functions it is made of, refusals."""

from __future__ import annotations

import numpy as np
import pytest

from unlearn_pl.audit import Banks, audit_method
from unlearn_pl.functional import (
    challenge_confidence,
    challenge_score,
    epsilon_histogram,
    forgetting_quality,
    klom,
    klom_margins,
    summarize_klom,
)

SPLITS = {"forget": 12, "retain": 20, "val": 15}


def banks(models: int, shift: float = 0.0, seed: int = 0, same: bool = False) -> Banks:
    """Logits of 10 classes; the unlearned models' true-class logit moved by ``shift``."""
    rng = np.random.default_rng(seed)
    labels = {s: rng.integers(0, 10, e) for s, e in SPLITS.items()}
    oracle = {s: rng.normal(0, 2, (models, e, 10)).astype(np.float32) for s, e in SPLITS.items()}
    unlearned = {
        s: oracle[s].copy() if same else rng.normal(0, 2, (models, e, 10)).astype(np.float32) for s, e in SPLITS.items()
    }
    for s in SPLITS:
        unlearned[s][:, np.arange(SPLITS[s]), labels[s]] += shift
    accuracy = {"retain": rng.uniform(0.8, 1.0, models), "test": rng.uniform(0.7, 0.9, models)}
    oracle_accuracy = accuracy if same else {"retain": np.full(models, 0.95), "test": np.full(models, 0.85)}
    return Banks(unlearned, oracle, labels, accuracy, oracle_accuracy)


def test_identical_banks_get_the_ideal_everywhere():
    a = audit_method(banks(6, same=True), n_resamples=30)
    assert (a.forget_quality.mean, a.forget_quality.low, a.forget_quality.high) == (1.0, 1.0, 1.0)
    assert a.score.mean == pytest.approx(1.0) and a.retain_ratio.mean == pytest.approx(1.0)
    for split in SPLITS:
        assert a.klom[split].median == 0.0 and a.klom_intervals[split]["p95"].high == 0.0
    assert a.histogram_counts.tolist() == [12, 0, 0, 0, 0] and a.histogram[0].mean == 1.0  # ⌈ln 5⌉ = 2: 4 buckets + 1


def test_the_audit_is_the_published_functions_of_the_banks():
    b = banks(8, shift=1.5, seed=1)
    a = audit_method(b, n_resamples=30)
    labels = np.broadcast_to(b.labels["forget"], (8, 12))
    u, o = challenge_confidence(b.logits["forget"], labels), challenge_confidence(b.oracle_logits["forget"], labels)
    quality = forgetting_quality(u, o)
    assert a.forget_quality.mean == pytest.approx(quality)
    assert a.score.mean == pytest.approx(
        challenge_score(
            quality, b.accuracy["retain"], b.oracle_accuracy["retain"], b.accuracy["test"], b.oracle_accuracy["test"]
        )
    )
    assert a.histogram_counts.tolist() == epsilon_histogram(a.epsilons, 8).tolist()
    assert sum(e.mean for e in a.histogram) == pytest.approx(1.0)
    for split, size in SPLITS.items():
        lab = np.broadcast_to(b.labels[split], (8, size))
        values = klom(klom_margins(b.logits[split], lab), klom_margins(b.oracle_logits[split], lab))
        np.testing.assert_array_equal(a.klom_values[split], values)
        assert a.klom[split] == summarize_klom(values)
        assert a.klom_intervals[split]["median"].mean == pytest.approx(np.nanmedian(values))
    for e in (a.forget_quality, a.score, *a.histogram, *a.klom_intervals["retain"].values()):
        assert e.low <= e.mean <= e.high or np.isclose(e.low, e.mean) or np.isclose(e.mean, e.high)
        assert e.n == 8


def test_a_shift_on_the_forget_set_lowers_f_and_raises_klom():
    near, far = (
        audit_method(banks(8, shift=0.0, seed=2), n_resamples=10),
        audit_method(banks(8, shift=8.0, seed=2), n_resamples=10),
    )
    assert far.forget_quality.mean < near.forget_quality.mean
    assert far.klom["forget"].median > near.klom["forget"].median


def test_bad_banks_are_refused():
    with pytest.raises(ValueError, match="at least 2 seeds"):
        audit_method(banks(1))
    b = banks(4)
    del b.oracle_accuracy["test"]
    with pytest.raises(ValueError, match="no retain or test accuracy"):
        audit_method(b)

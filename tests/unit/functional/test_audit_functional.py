"""The unlearning challenge's forgetting score, KLOM and the bootstrap over models: against CPU
transcriptions of the published code (``_published_audits.py``), on synthetic and on real
confidences, and against known answers."""

from __future__ import annotations

import doctest
import itertools
import math

import _published_audits as published
import numpy as np
import pytest
import torch

from unlearn_pl.functional import bootstrap as bootstrap_module
from unlearn_pl.functional import (
    bootstrap_many_over_models,
    bootstrap_over_models,
    challenge_confidence,
    challenge_score,
    epsilon_buckets,
    epsilon_histogram,
    epsilon_points,
    forgetting_epsilons,
    forgetting_quality,
    klom,
    klom_margins,
    smoothed_bootstrap_over_models,
    summarize_klom,
)
from unlearn_pl.functional import challenge_epsilons as epsilons_module
from unlearn_pl.functional import challenge_logits as confidence_module
from unlearn_pl.functional import challenge_rules as rules_module
from unlearn_pl.functional import challenge_scoring as score_module
from unlearn_pl.functional import margin_divergence as klom_module
from unlearn_pl.functional.lira import logit_confidence

TOLERANCE = 1e-6


@pytest.mark.parametrize(
    "module", [confidence_module, epsilons_module, rules_module, score_module, klom_module, bootstrap_module]
)
def test_docstring_examples_hold(module):
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


# --- synthetic banks ------------------------------------------------------------------------------


def synthetic_banks(seed: int, models: int, examples: int) -> tuple[np.ndarray, np.ndarray]:
    """Retrained confidences and unlearned ones that are the same, shifted, narrower, wider, peaky,
    tied or far apart, mixed over the examples."""
    rng = np.random.default_rng(seed)
    retrained = rng.normal(rng.uniform(-3, 6, examples), rng.uniform(0.3, 3, examples), (models, examples))
    kind = np.arange(examples) % 7
    unlearned = rng.normal(0, 1, (models, examples))
    unlearned = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4, kind == 5],
        [
            retrained.mean(0) + retrained.std(0) * unlearned,  # same distribution
            retrained.mean(0) + 1.5 + retrained.std(0) * unlearned,  # shifted
            retrained.mean(0) + 0.1 * unlearned,  # narrower
            retrained.mean(0) + 4 * unlearned,  # wider
            retrained.mean(0) + 1e-3 * unlearned,  # peaky: range below 1% of the other
            np.round(retrained.mean(0) + unlearned, 1),  # ties
        ],
        retrained.mean(0) + 30 + unlearned,  # disjoint
    )
    return unlearned, retrained


# The transcription takes about a second per example on a busy CPU (dense comparisons of every
# model with 160,000 threshold pairs): one bank of every kind by default, more as slow tests.
@pytest.mark.parametrize(
    ("seed", "models", "examples"),
    [(0, 3, 7), (2, 8, 7)]
    + [pytest.param(*p, 14, marks=pytest.mark.slow) for p in [(1, 4), (3, 16), (4, 32), (5, 64)]],
)
def test_epsilons_and_quality_equal_the_published_scorer(seed, models, examples):
    unlearned, retrained = synthetic_banks(seed, models, examples)
    score, eps = published.compute_forget_score_from_confs(unlearned, retrained)
    ours = forgetting_epsilons(unlearned, retrained)
    assert np.abs(ours - eps).max() <= TOLERANCE
    assert abs(forgetting_quality(unlearned, retrained) - score) <= TOLERANCE


def test_two_models_score_nothing_as_published():
    unlearned, retrained = synthetic_banks(5, 2, examples=3)
    score, eps = published.compute_forget_score_from_confs(unlearned, retrained)
    assert np.abs(forgetting_epsilons(unlearned, retrained) - eps).max() <= TOLERANCE
    assert score == forgetting_quality(unlearned, retrained) == 0.0  # ⌈ln 1⌉ = 0: an empty bucket table


def test_values_on_the_threshold_grids_are_counted_as_published():
    """Confidences placed exactly on thresholds: only identical grids and comparisons agree here."""
    rng = np.random.default_rng(7)
    models, examples = 8, 4
    retrained = np.sort(rng.uniform(0, 3, (models, examples)), axis=0)
    unlearned = np.sort(rng.uniform(0.5, 2.5, (models, examples)), axis=0)
    retrained[0], retrained[-1] = 0.0, 3.0  # fix both samples' extremes, hence both grids
    unlearned[0], unlearned[-1] = 0.5, 2.5
    single = (
        torch.linspace(torch.tensor(0.0, dtype=torch.float64), torch.tensor(3.0, dtype=torch.float64), 300)
        .double()
        .numpy()
    )
    unlearned[1:4] = single[rng.integers(0, 300, (3, examples))]
    width = 2.0  # the narrower (unlearned) range
    rights = np.linspace(0.5 + width - 2.0, 2.5 + 2.0, math.ceil(((2.5 + 2.0) - (0.5 + width - 2.0)) * 100))
    retrained[1:3] = rights[rng.integers(0, len(rights), (2, examples))].clip(0, 3)
    lefts = np.linspace(rights[200] - width - 2.0, rights[200] - width + 2.0, 400)
    retrained[3:5] = lefts[rng.integers(150, 250, (2, examples))].clip(0, 3)
    score, eps = published.compute_forget_score_from_confs(unlearned, retrained)
    assert np.abs(forgetting_epsilons(unlearned, retrained) - eps).max() <= TOLERANCE
    assert abs(forgetting_quality(unlearned, retrained) - score) <= TOLERANCE


def test_constant_banks_follow_the_published_scorer():
    models = 6
    spread = np.linspace(0, 1, models)
    unlearned = np.stack([np.full(models, 2.0), np.full(models, 2.0), spread], 1)
    retrained = np.stack([spread + 1.5, np.full(models, 9.0), np.full(models, 0.3)], 1)
    score, eps = published.compute_forget_score_from_confs(unlearned, retrained)
    ours = forgetting_epsilons(unlearned, retrained)
    # one constant side: peaky, capped; two different constants: a perfect separation, capped.
    assert ours.tolist() == eps.tolist() == [50.0, 50.0, 50.0]
    assert forgetting_quality(unlearned, retrained) == score == 0.0


def test_no_finite_epsilon_is_an_error_as_in_the_published_scorer_or_nan_on_request():
    constant = np.full((5, 3), 1.25)
    constant[:, 0] = np.arange(5.0)
    with pytest.raises(AssertionError):
        published.compute_forget_score_from_confs(constant, constant.copy())
    with pytest.raises(ValueError, match=r"for 2 example\(s\) \(indices \[1, 2\]\)"):
        forgetting_epsilons(constant, constant)
    eps = forgetting_epsilons(constant, constant, undefined="nan")
    assert eps[0] == 0.0 and np.isnan(eps[1:]).all()
    assert np.isnan(epsilon_points(eps, 5)[1:]).all()


# --- known answers --------------------------------------------------------------------------------


def test_identical_banks_score_the_ideal():
    unlearned, _ = synthetic_banks(8, 16, examples=10)
    assert forgetting_epsilons(unlearned, unlearned.copy()).tolist() == [0.0] * 10
    assert forgetting_quality(unlearned, unlearned.copy()) == 1.0


def test_disjoint_banks_get_the_cap_and_no_points():
    rng = np.random.default_rng(9)
    retrained = rng.normal(0, 1, (16, 10))
    for unlearned in (retrained + 20, retrained - 20):
        eps = forgetting_epsilons(unlearned, retrained)
        assert eps.tolist() == [50.0] * 10
        assert epsilon_points(eps, 16).tolist() == [0.0] * 10
        assert forgetting_quality(unlearned, retrained) == 0.0
    assert forgetting_epsilons(retrained + 20, retrained, epsilon_cap=7.0).tolist() == [7.0] * 10


def rank_epsilon(labels: np.ndarray, delta: float = 1e-5) -> float:
    """ε of one example from the order of its 2N values alone (0 unlearned, 1 retrained), with every
    single-threshold cut and every window of consecutive values as a rule: an independent, loop-
    by-loop reading of the definition, valid where the threshold grids fall between all values."""
    n = len(labels) // 2
    ranks_u, ranks_r = np.flatnonzero(labels == 0), np.flatnonzero(labels == 1)
    positive = 1 if np.median(ranks_r) > np.median(ranks_u) else 0

    def bound(true_pos: int, false_pos: int) -> float | None:
        fpr, fnr = false_pos / n, (n - true_pos) / n
        if fpr == 0 and fnr == 0:
            return math.inf
        if fpr == 0 or fnr == 0:
            return None
        terms = [math.log((1 - delta - a) / b) for a, b in ((fpr, fnr), (fnr, fpr)) if 1 - delta - a > 0]
        return max(0.0, *terms) if terms else None

    found = []
    is_pos = labels == positive
    found += [bound(int(is_pos[c:].sum()), int((~is_pos[c:]).sum())) for c in range(2 * n)]
    span_u, span_r = np.ptp(ranks_u), np.ptp(ranks_r)
    span_pos, span_neg = (span_r, span_u) if positive == 1 else (span_u, span_r)
    narrow = labels == ((1 - positive) if span_pos >= span_neg else positive)
    for i, j in itertools.combinations_with_replacement(range(2 * n), 2):
        found.append(bound(int(narrow[i : j + 1].sum()), int((~narrow[i : j + 1]).sum())))
    return min(max(v for v in found if v is not None), 50.0)


@pytest.mark.parametrize(("models", "expected"), [(4, 0.25), (5, 41 / 168)])
def test_same_distribution_scores_its_expected_quality(models, expected):
    """Unlearned and retrained models drawn from one distribution: every order of the 2N values is
    equally likely, so E[F] is the mean over all C(2N, N) orders. Values on a grid of 1/16 make
    every cut and window a rule of the published grids (steps about 0.01)."""
    orders = []
    for ones in itertools.combinations(range(2 * models), models):
        labels = np.zeros(2 * models, dtype=int)
        labels[list(ones)] = 1
        orders.append(labels)
    values = np.arange(2 * models) / 16
    unlearned = np.stack([values[o == 0] for o in orders], 1)
    retrained = np.stack([values[o == 1] for o in orders], 1)
    by_rank = np.array([rank_epsilon(o) for o in orders])
    assert epsilon_points(by_rank, models).mean() == pytest.approx(expected, abs=1e-12)
    eps = forgetting_epsilons(unlearned, retrained)
    assert np.abs(eps - by_rank).max() <= TOLERANCE  # float32 rates against float64
    assert forgetting_quality(unlearned, retrained) == pytest.approx(expected, abs=1e-12)


# --- options ---------------------------------------------------------------------------------------


def test_each_option_changes_what_its_docstring_says():
    unlearned, retrained = synthetic_banks(10, 8, examples=20)
    base = forgetting_epsilons(unlearned, retrained)
    single = forgetting_epsilons(unlearned, retrained, rules=("single",))
    double = forgetting_epsilons(unlearned, retrained, rules=("double",))
    assert np.array_equal(base, np.maximum(single, double))
    assert (single != double).any()
    # A narrow unlearned sample (range 0.02, a third of 1% of the other's) with two retrained
    # values inside it: no rule separates them, only the peakiness check gives the cap.
    narrow = np.c_[np.linspace(-0.01, 0.01, 8)]
    wide = np.c_[[-3.0, -2.0, -1.0, 0.0, 0.005, 1.0, 2.0, 3.0]]
    assert forgetting_epsilons(narrow, wide).tolist() == [50.0]
    assert 0.0 < forgetting_epsilons(narrow, wide, peaky_ratio=0.0)[0] < 50.0
    assert forgetting_epsilons(narrow, wide, peaky_ratio=0.001)[0] < 50.0
    wide = forgetting_epsilons(unlearned, retrained, rate_dtype="float64")
    assert np.abs(wide - base).max() <= TOLERANCE
    assert (forgetting_epsilons(unlearned, retrained, delta=0.1) <= base).all()
    coarse = forgetting_epsilons(unlearned, retrained, thresholds_per_unit=5, window_buffer=0.5)
    assert (coarse <= base + TOLERANCE).any() and not np.array_equal(coarse, base)


def test_bucket_table_and_histogram():
    edges, points = epsilon_buckets(512)  # the challenge's N: ⌈ln 511⌉ = 7
    assert edges.tolist() == [0.5 * k for k in range(1, 15)] and points.tolist() == [2.0**-k for k in range(14)]
    assert epsilon_buckets(2)[0].size == 0
    edges, points = epsilon_buckets(32, bucket_size=1.0, max_epsilon=2.5)
    assert edges.tolist() == [1.0, 2.0] and points.tolist() == [1.0, 0.5]
    assert epsilon_points([0.99, 1.0, 2.0], 32, bucket_size=1.0, max_epsilon=2.5).tolist() == [1.0, 0.5, 0.0]
    counts = epsilon_histogram([0.1, 0.6, 0.7, 9.0], 32)
    assert counts.tolist() == [1, 2, 0, 0, 0, 0, 0, 0, 1] and counts.sum() == 4
    with pytest.raises(ValueError, match="NaN"):
        epsilon_histogram([0.1, np.nan], 32)


def test_final_score_equals_the_published_adjustment():
    rng = np.random.default_rng(11)
    accs = [rng.uniform(0.5, 1.0, 8) for _ in range(4)]
    expected = published.final_score(0.4, accs[0], accs[1], accs[2], accs[3])
    assert challenge_score(0.4, accs[0], accs[2], accs[1], accs[3]) == pytest.approx(expected, abs=1e-12)
    assert challenge_score(1.0, 90.0, 90.0, 80.0, 80.0) == 1.0  # percentages work too


# --- argument checks -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("unlearned", "retrained", "match"),
    [
        (np.zeros((4, 3)), np.zeros((4, 2)), r"unlearned has shape \(4, 3\) but retrained has \(4, 2\)"),
        (np.zeros((5, 3)), np.zeros((4, 3)), r"\(5, 3\) but retrained has \(4, 3\)"),
        (np.zeros(4), np.zeros(4), r"must have shape \(models, examples\); got \(4,\)"),
        (np.zeros((1, 3)), np.zeros((1, 3)), "at least 2 models on each side to compare distributions; got 1"),
        (np.zeros((4, 0)), np.zeros((4, 0)), "at least one example"),
        (
            np.array([[0.0, np.nan], [1.0, 2.0]]),
            np.zeros((2, 2)),
            r"unlearned contains 1 NaN .* \(model 0, example 1\)",
        ),
        (
            np.zeros((2, 2)),
            np.array([[0.0, 1.0], [np.inf, 2.0]]),
            r"retrained contains 1 NaN .* \(model 1, example 0\)",
        ),
        (np.array([["a", "b"], ["c", "d"]]), np.zeros((2, 2)), "unlearned must be a numeric array"),
    ],
)
def test_bad_banks_are_refused_by_name(unlearned, retrained, match):
    with pytest.raises(ValueError, match=match):
        forgetting_epsilons(unlearned, retrained)
    with pytest.raises(ValueError, match=match.replace("retrained", "oracle")):
        klom(unlearned, retrained)


@pytest.mark.parametrize(
    ("option", "match"),
    [
        ({"delta": 0.0}, r"delta must be in \(0, 1\)"),
        ({"epsilon_cap": 0}, "epsilon_cap"),
        ({"thresholds_per_unit": 0}, "thresholds_per_unit"),
        ({"window_buffer": -1.0}, "window_buffer"),
        ({"peaky_ratio": 2.0}, "peaky_ratio"),
        ({"rules": ("triple",)}, "rules"),
        ({"rules": "single"}, "rules"),
        ({"rate_dtype": "float16"}, "rate_dtype"),
        ({"undefined": "zero"}, "undefined"),
    ],
)
def test_bad_options_are_refused_by_name(option, match):
    with pytest.raises(ValueError, match=match):
        forgetting_epsilons(np.zeros((3, 2)), np.ones((3, 2)), **option)


def test_bad_scoring_inputs_are_refused():
    with pytest.raises(ValueError, match="num_models must be >= 2"):
        epsilon_buckets(1)
    with pytest.raises(ValueError, match="forget_quality must be in"):
        challenge_score(1.5, 1, 1, 1, 1)
    with pytest.raises(ValueError, match="retain accuracy is 0"):
        challenge_score(0.5, [0.9], [0.0], [0.9], [0.9])
    with pytest.raises(ValueError, match="unlearned_test_accuracy"):
        challenge_score(0.5, [0.9], [0.9], [np.nan], [0.9])


# --- confidences and margins -----------------------------------------------------------------------


def synthetic_logits(
    seed: int, models: int, examples: int, classes: int, scale: float
) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    targets = rng.integers(0, classes, examples)
    means = rng.normal(0, scale, (examples, classes))
    means[np.arange(examples), targets] += rng.uniform(-scale, 3 * scale, examples)
    return means + rng.normal(0, scale / 4, (models, examples, classes)), targets


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("scale", [1.0, 10.0, 40.0])
def test_challenge_confidence_equals_the_published_helper(scale, dtype):
    logits, targets = synthetic_logits(12, 4, 50, 10, scale)
    logits = logits.astype(dtype)
    ours = challenge_confidence(logits, np.broadcast_to(targets, (4, 50)))
    for m in range(4):
        _, conf = published.compute_logit_scaled_confidence(logits[m], targets)
        assert np.abs(ours[m] - conf).max() <= TOLERANCE
    tensor = challenge_confidence(torch.from_numpy(logits), torch.from_numpy(targets).expand(4, 50))
    assert np.array_equal(tensor, ours)


def test_challenge_confidence_in_float64_avoids_float32_underflow():
    logits, targets = synthetic_logits(13, 1, 400, 10, 30.0)
    z = logits[0].astype(np.float32)
    exact = logit_confidence(torch.from_numpy(z), torch.from_numpy(targets)).numpy()
    assert np.abs(challenge_confidence(z, targets, floor=0.0, precision="float64") - exact).max() <= 1e-9
    # float64 arithmetic: the published formula on the same logits without float32 rounding.
    _, in_float64 = published.compute_logit_scaled_confidence(z.astype(np.float64), targets)
    floored = challenge_confidence(z, targets, precision="float64")
    assert np.abs(floored - in_float64).max() <= TOLERANCE
    # The published float32 exponentials lose digits from gaps of ~87 on and round to 0 past ~104;
    # the floor meets the float64 values only past ~120.
    published_way = challenge_confidence(z, targets)
    subnormal = (np.abs(exact) > 88) & (np.abs(exact) < 120)  # beyond, both sit at the floor
    assert subnormal.any() and np.abs(published_way[subnormal] - floored[subnormal]).max() > 1e-3
    assert np.abs(published_way[~subnormal] - floored[~subnormal]).max() <= 1e-4
    with pytest.raises(ValueError, match="infinite"):
        challenge_confidence(z, targets, floor=0.0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_klom_margins_equal_the_published_helper(dtype):
    logits, targets = synthetic_logits(14, 5, 40, 10, 6.0)
    z, y = torch.from_numpy(logits).to(dtype), torch.from_numpy(targets)
    ours = klom_margins(z, y.expand(5, 40))
    assert ours.dtype == (np.float32 if dtype == torch.float32 else np.float64)
    assert np.array_equal(ours, published.get_margins_from_multimodel_logits(z, y).numpy())
    # The margin is the exact logit-scaled confidence.
    exact = challenge_confidence(logits, np.broadcast_to(targets, (5, 40)), floor=0.0, precision="float64")
    assert np.abs(klom_margins(logits, np.broadcast_to(targets, (5, 40))) - exact).max() <= 1e-9


def test_helpers_refuse_bad_logits():
    for helper in (challenge_confidence, klom_margins):
        with pytest.raises(ValueError, match="C >= 2"):
            helper(np.zeros((3, 1)), np.zeros(3, dtype=int))
        with pytest.raises(ValueError, match="leading shape"):
            helper(np.zeros((3, 4)), np.zeros(2, dtype=int))
        with pytest.raises(ValueError, match=r"class indices in \[0, 3\]"):
            helper(np.zeros((3, 4)), np.array([0, 1, 4]))
        with pytest.raises(ValueError, match="1 NaN or infinite"):
            helper(np.array([[0.0, np.nan], [1.0, 2.0]]), np.array([0, 1]))
    with pytest.raises(ValueError, match="precision must be"):
        challenge_confidence(np.zeros((3, 4)), np.zeros(3, dtype=int), precision="float32")


# --- KLOM -------------------------------------------------------------------------------------------


def synthetic_margins(seed: int, models: int, examples: int, dtype: type) -> tuple[np.ndarray, np.ndarray]:
    """Oracle margins and unlearned ones that are equal, noisier, shifted, constant, clipped, tied."""
    rng = np.random.default_rng(seed)
    oracle = rng.normal(rng.uniform(-5, 15, examples), rng.uniform(0.5, 4, examples), (models, examples))
    kind = rng.integers(0, 7, examples)
    noise = rng.normal(0, 1, (models, examples))
    unlearned = np.select(
        [kind == 0, kind == 1, kind == 2, kind == 3, kind == 4, kind == 5],
        [
            oracle.copy(),
            oracle + noise,
            oracle + 3 + 2 * noise,
            np.full_like(oracle, 4.0),
            oracle + 150,
            np.round(oracle),
        ],
        oracle + rng.uniform(-1, 1) * 300,  # clipped on one side or the other
    )
    return unlearned.astype(dtype), oracle.astype(dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize(("seed", "models"), [(0, 2), (1, 3), (2, 8), (3, 32), (4, 100)])
def test_klom_equals_the_published_code(seed, models, dtype):
    unlearned, oracle = synthetic_margins(seed, models, 300, dtype)
    u, o = torch.from_numpy(unlearned), torch.from_numpy(oracle)
    cases = [
        (published.kl_from_margins(u, o), klom(unlearned, oracle)),  # eval.py's definition
        (published.kl_from_margins(o, u), klom(unlearned, oracle, reverse=True)),  # run.py's call
        (published.klom_from_margins(o, u), klom(unlearned, oracle, renormalize=False)),  # EasyDUB-code
    ]
    for theirs, ours in cases:
        assert np.array_equal(np.isnan(theirs), np.isnan(ours))
        defined = ~np.isnan(theirs)
        assert np.abs(ours[defined] - theirs[defined]).max() <= TOLERANCE


def test_klom_known_answers():
    rng = np.random.default_rng(15)
    oracle = rng.normal(0, 1, (16, 4))
    assert klom(oracle, oracle.copy()).tolist() == [0.0] * 4
    above = np.full((16, 4), 50.0)  # every unlearned margin at the top edge: dropped by np.digitize
    assert np.isnan(klom(above, oracle)).all()
    assert klom(above, oracle, renormalize=False).tolist() == [0.0] * 4
    # Closing the last bin: all unlearned mass where the oracle has none, raised to 1e-5, renormalized.
    assert klom(above, oracle, top_edge="include") == pytest.approx(np.full(4, math.log((1 + 1e-5) / 1e-5)))
    assert klom(above, oracle, top_edge="include", renormalize=False) == pytest.approx(np.full(4, math.log(1e5)))
    far = oracle + 60.0  # disjoint, not constant: the smoothing floor sets the size
    assert (klom(far, oracle) > 10).all()


def test_klom_options_and_chunks(monkeypatch):
    unlearned, oracle = synthetic_margins(16, 12, 50, np.float64)
    whole = klom(unlearned, oracle, bins=7, smoothing=1e-3, clip=(-20.0, 20.0))
    monkeypatch.setattr(klom_module, "_CHUNK", 8)
    assert np.array_equal(klom(unlearned, oracle, bins=7, smoothing=1e-3, clip=(-20.0, 20.0)), whole, equal_nan=True)
    expected = [
        published.compute_binned_KL_div(unlearned[:, e], oracle[:, e], bin_count=7, eps=1e-3, min_val=-20, max_val=20)
        for e in range(50)
    ]
    assert np.allclose(whole, expected, atol=TOLERANCE, equal_nan=True)
    for option, match in [
        ({"bins": 0}, "bins"),
        ({"smoothing": 0.0}, "smoothing"),
        ({"clip": (1.0, -1.0)}, "clip"),
        ({"top_edge": "keep"}, "top_edge"),
    ]:
        with pytest.raises(ValueError, match=match):
            klom(unlearned, oracle, **option)


def test_klom_summary():
    s = summarize_klom([0.0, 1.0, 2.0, 3.0, 4.0, np.nan])
    assert (s.median, s.q1, s.q3, s.p95, s.n, s.undefined) == (2.0, 1.0, 3.0, pytest.approx(3.8), 6, 1)
    assert f"{s:.1f}" == "2.0 [1.0, 3.0]"
    for bad, match in [([], "no KLOM values"), ([np.nan], "all 1 KLOM values are NaN"), ([-1.0], "finite and >= 0")]:
        with pytest.raises(ValueError, match=match):
            summarize_klom(bad)


# --- real confidences: logistic regressions on digits --------------------------------------------


@pytest.fixture(scope="module")
def digits_banks() -> dict[str, np.ndarray]:
    """Logits of 6 retrained models (trained without 12 forget examples) and of 6 models trained on
    everything (an unlearning method that forgot nothing), each on its own 70% of its data."""
    from sklearn.datasets import load_digits
    from sklearn.linear_model import LogisticRegression

    x, y = load_digits(return_X_y=True)
    x = x / 16.0
    rng = np.random.default_rng(0)
    order = rng.permutation(len(y))
    forget, retain, val = order[:12], order[12:1400], order[1400:]
    logits: dict[str, list[np.ndarray]] = {"unlearned": [], "retrained": []}
    for seed in range(6):
        for name, pool in (("unlearned", np.r_[forget, retain]), ("retrained", retain)):
            chosen = np.random.default_rng(100 + seed).permutation(pool)[: int(0.7 * len(pool))]
            if name == "unlearned":
                chosen = np.union1d(chosen, forget)  # every "unlearned" model saw the forget set
            model = LogisticRegression(C=1.0, max_iter=100, tol=1e-3).fit(x[chosen], y[chosen])
            logits[name].append(model.decision_function(x))
    banks = {name: np.stack(v) for name, v in logits.items()}  # (models, examples, classes)
    banks.update(y=y, forget=forget, retain=retain[:60], val=val[:60])
    return banks


def test_published_and_our_scores_agree_on_digits(digits_banks):
    b, forget = digits_banks, digits_banks["forget"]
    targets = np.broadcast_to(b["y"][forget], (6, len(forget)))
    confs = {}
    for name in ("unlearned", "retrained"):
        ours = challenge_confidence(b[name][:, forget], targets)
        theirs = np.stack([published.compute_logit_scaled_confidence(m[forget], b["y"][forget])[1] for m in b[name]])
        assert np.abs(ours - theirs).max() <= TOLERANCE
        confs[name] = theirs
    score, eps = published.compute_forget_score_from_confs(confs["unlearned"], confs["retrained"])
    assert np.abs(forgetting_epsilons(confs["unlearned"], confs["retrained"]) - eps).max() <= TOLERANCE
    ours = forgetting_quality(confs["unlearned"], confs["retrained"])
    assert abs(ours - score) <= TOLERANCE
    assert forgetting_quality(confs["retrained"], confs["retrained"].copy()) == 1.0
    assert ours < 1.0  # models that kept the forget set are told apart on some examples


def test_published_and_our_klom_agree_on_digits(digits_banks):
    b = digits_banks
    for split in ("forget", "retain", "val"):
        idx = b[split]
        labels = torch.from_numpy(b["y"][idx])
        margins = {}
        for name in ("unlearned", "retrained"):
            z = torch.from_numpy(b[name][:, idx]).float()  # float32, as a network's logits
            margins[name] = published.get_margins_from_multimodel_logits(z, labels).numpy()
            assert np.array_equal(klom_margins(z, labels.expand(6, -1)), margins[name])
        theirs = published.kl_from_margins(
            torch.from_numpy(margins["unlearned"]), torch.from_numpy(margins["retrained"])
        )
        ours = klom(margins["unlearned"], margins["retrained"])
        assert np.array_equal(np.isnan(theirs), np.isnan(ours))
        assert np.nanmax(np.abs(ours - theirs)) <= TOLERANCE


# --- bootstrap over models --------------------------------------------------------------------------


def test_bootstrap_resamples_whole_models():
    rng = np.random.default_rng(17)
    first, second = rng.normal(0, 1, (10, 4)), rng.normal(0, 1, (12, 4))
    rows = {tuple(r) for r in first}

    def whole_rows(a, b):
        assert a.shape == first.shape and b.shape == second.shape
        assert all(tuple(r) in rows for r in a)
        return float(a.mean() - b.mean())

    e = bootstrap_over_models(whole_rows, first, second, n_resamples=50)
    assert e.mean == pytest.approx(first.mean() - second.mean()) and e.low <= e.mean <= e.high and e.n == 10
    assert bootstrap_over_models(whole_rows, first, second, n_resamples=50) == e  # seeded
    assert bootstrap_over_models(whole_rows, first, second, n_resamples=50, seed=1) != e


def test_bootstrap_pairs_models_on_request():
    x = np.random.default_rng(18).normal(0, 1, (8, 3))
    paired = bootstrap_over_models(lambda a, b: float(np.abs(a - b).max()), x, x.copy(), n_resamples=30, paired=True)
    assert (paired.low, paired.mean, paired.high) == (0.0, 0.0, 0.0)
    unpaired = bootstrap_over_models(lambda a, b: float(np.abs(a - b).max()), x, x.copy(), n_resamples=30)
    assert unpaired.high > 0.0


def test_bootstrap_interval_has_the_width_of_a_mean():
    x = np.random.default_rng(19).normal(0, 1, (400, 1))
    e = bootstrap_over_models(lambda a: float(a.mean()), x, n_resamples=2000)
    assert e.high - e.low == pytest.approx(2 * 1.96 * x.std() / math.sqrt(400), rel=0.15)


def test_bootstrap_of_the_forgetting_quality():
    unlearned, retrained = synthetic_banks(20, 8, examples=6)
    e = bootstrap_over_models(forgetting_quality, unlearned, retrained, n_resamples=20)
    assert e.mean == forgetting_quality(unlearned, retrained)
    assert 0.0 <= e.low <= e.high <= 1.0


def test_bootstrap_refuses_bad_arguments():
    x = np.zeros((5, 2))
    for kwargs, banks, match in [
        ({}, (), "at least one bank"),
        ({}, (np.zeros((1, 2)),), "at least 2 models"),
        ({"paired": True}, (x, np.zeros((6, 2))), "as many models"),
        ({"n_resamples": 0}, (x,), "n_resamples"),
        ({"confidence": 1.0}, (x,), "confidence"),
        ({"method": "normal"}, (x,), "method"),
    ]:
        with pytest.raises(ValueError, match=match):
            bootstrap_over_models(lambda *a: 0.0, *banks, **kwargs)
    with pytest.raises(ValueError, match="finite value"):
        bootstrap_over_models(lambda a: math.nan, x)


def test_several_statistics_share_one_set_of_resamples():
    rng = np.random.default_rng(21)
    first, second = rng.normal(0, 1, (9, 3)), rng.normal(1, 1, (9, 3))

    def both(a, b):
        return [float(a.mean()), float(b.mean() - a.mean())]

    together = bootstrap_many_over_models(both, first, second, n_resamples=40, paired=True, seed=3)
    alone = [
        bootstrap_over_models(lambda a, b, k=k: both(a, b)[k], first, second, n_resamples=40, paired=True, seed=3)
        for k in range(2)
    ]
    assert together == alone  # the same draws: entry k is the one-number bootstrap of statistic k
    with pytest.raises(ValueError, match="finite values"):
        bootstrap_many_over_models(lambda a: [0.0, math.nan], first)


def dense_window_cells(pos, neg, pos_range, neg_range, per_unit=100, buffer=2.0):
    """The double-threshold rules' cells counted at every one of the published scorer's windows."""
    n = len(pos)
    if pos_range >= neg_range:
        pos, neg = neg, pos
    width = min(pos_range, neg_range)
    low, high = pos[0] + width - buffer, pos[-1] + buffer
    rights = np.linspace(low, high, num=math.ceil((high - low) * per_unit))
    lefts = np.linspace(rights - width - buffer, rights - width + buffer, num=math.ceil(2 * buffer * per_unit), axis=1)

    def inside(sample):
        return np.maximum(np.searchsorted(sample, rights[:, None], side="right") - np.searchsorted(sample, lefts), 0)

    return set((inside(pos) * (n + 1) + inside(neg)).ravel().tolist())


@pytest.mark.parametrize("seed", range(12))
def test_window_rules_are_counted_where_their_edges_cross_the_values(seed):
    """The crossings give the cells of all 160,000 windows, values on the edges and ties included."""
    rng = np.random.default_rng(seed)
    n = int(rng.integers(2, 40))
    decimals = int(rng.integers(0, 4))  # rounded values fall on the 0.01-spaced edges
    pos = np.sort(np.round(rng.normal(0, rng.uniform(0.01, 3), n), decimals))
    neg = np.sort(np.round(rng.normal(rng.uniform(-2, 2), rng.uniform(0.01, 3), n), decimals))
    ours = rules_module.window_cells(pos, neg, np.ptp(pos), np.ptp(neg), 100, 2.0)
    assert set(ours.tolist()) == dense_window_cells(pos, neg, np.ptp(pos), np.ptp(neg))


def test_window_rules_without_crossings_try_every_window(monkeypatch):
    """Where a row's left edges have a zero step (values near 1e17), np.linspace computes them
    another way and every window is tried: the same cells."""
    rng = np.random.default_rng(30)
    pos, neg = np.sort(np.round(rng.normal(0, 1, 16), 2)), np.sort(np.round(rng.normal(0.5, 2, 16), 2))
    crossed = set(rules_module.window_cells(pos, neg, np.ptp(pos), np.ptp(neg), 100, 2.0).tolist())
    monkeypatch.setattr(rules_module, "_crossings", lambda *args: None)
    tried = set(rules_module.window_cells(pos, neg, np.ptp(pos), np.ptp(neg), 100, 2.0).tolist())
    assert tried == crossed == dense_window_cells(pos, neg, np.ptp(pos), np.ptp(neg))


def test_the_smoothed_bootstrap_breaks_ties_and_centres_on_the_estimate():
    rng = np.random.default_rng(31)
    x = rng.normal(0, 1, (10, 5))
    seen = []

    def record(a, b, accuracy):
        seen.append((a.copy(), b.copy(), accuracy.copy()))
        return [float(np.median(a)), float(np.abs(a - b).max()), float(accuracy.mean())]

    accuracy = rng.uniform(0.5, 1.0, (10, 1))
    median, gap, acc = smoothed_bootstrap_over_models(
        record, x, x.copy(), accuracy, smooth=[True, True, False], n_resamples=40, seed=2
    )
    a, b, resampled_accuracy = seen[-1]
    assert len({tuple(row) for row in a}) == 10  # repeated models are distinct draws near them
    assert np.array_equal(a, b)  # paired banks holding equal values keep them equal
    assert set(resampled_accuracy.ravel()) <= set(accuracy.ravel())  # not smoothed: values of the bank
    assert (gap.low, gap.mean, gap.high) == (0.0, 0.0, 0.0)
    assert median.mean == np.median(x) and median.low < median.mean < median.high
    assert acc.mean == pytest.approx(accuracy.mean()) and acc.n == 10
    again = smoothed_bootstrap_over_models(
        record, x, x.copy(), accuracy, smooth=[True, True, False], n_resamples=40, seed=2
    )
    assert again == [median, gap, acc]  # seeded
    for kwargs, match in [
        ({"smooth": [True]}, "one entry per bank"),
        ({"smooth": [True, True, False], "n_resamples": 1}, "n_resamples"),
    ]:
        with pytest.raises(ValueError, match=match):
            smoothed_bootstrap_over_models(record, x, x, accuracy, **kwargs)
    with pytest.raises(ValueError, match="as many models"):
        smoothed_bootstrap_over_models(record, x, x[:5], accuracy, smooth=[True, True, False])

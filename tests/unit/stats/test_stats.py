"""Verdicts on paired comparisons, checked against statsmodels and scipy on known data, and
intervals of bounded metrics that never leave the metric's range."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from unlearn_pl.stats import (
    HOLM_COLUMNS,
    UNIT_RANGE,
    VERDICT_COLUMNS,
    Estimate,
    compare_differences,
    compare_paired,
    detectable_effect_size,
    difference_range,
    holm,
    holm_adjusted,
    mean_ci,
    metric_range,
    minimal_detectable_effect,
    paired_difference,
    summarize,
    verdict_rows,
)

# Two settings on the same five seeds (accuracies).
A = {0: 0.812, 1: 0.797, 2: 0.845, 3: 0.831, 4: 0.790}


def shifted(by: list[float]) -> dict[int, float]:
    return {s: A[s] + d for s, d in zip(A, by, strict=True)}


def arrays(a: dict[int, float], b: dict[int, float]) -> tuple[np.ndarray, np.ndarray]:
    return np.array([a[s] for s in sorted(a)]), np.array([b[s] for s in sorted(a)])


# ----------------------------------------------------------------------------- minimal detectable effect
def test_the_detectable_effect_is_the_published_one_and_statsmodels_two_sided_solution():
    # With 5 seeds the smallest paired difference detectable at 80% power is 1.68 SD; with 3, 3.26 SD.
    assert detectable_effect_size(5) == pytest.approx(1.682, abs=5e-4)
    assert detectable_effect_size(3) == pytest.approx(3.264, abs=5e-4)
    for n in (3, 5, 10, 15):
        two_sided = TTestPower().solve_power(effect_size=None, nobs=n, alpha=0.05, power=0.8, alternative="two-sided")
        assert detectable_effect_size(n) == pytest.approx(two_sided, rel=1e-4)
        assert TTestPower().power(
            effect_size=detectable_effect_size(n), nobs=n, alpha=0.05, alternative="two-sided"
        ) == pytest.approx(0.8, abs=1e-4)
    assert minimal_detectable_effect(0.05, 5) == pytest.approx(0.05 * detectable_effect_size(5))
    assert math.isnan(minimal_detectable_effect(0.05, 1))
    with pytest.raises(ValueError, match="n >= 2"):
        detectable_effect_size(1)


def test_the_detectable_effect_holds_where_statsmodels_two_sided_solver_fails():
    # n = 2 at α = 0.0025 (Holm's first step over 20 settings): statsmodels' two-sided solver
    # returns its bracket edge, 10.0. A seeded simulation of the t-test checks our d_min directly.
    n, alpha = 2, 0.0025
    d = detectable_effect_size(n, alpha)
    assert d > 20
    rng = np.random.default_rng(0)
    samples = rng.normal(loc=d, scale=1.0, size=(200_000, n))
    t = samples.mean(axis=1) / (samples.std(axis=1, ddof=1) / math.sqrt(n))
    rejected = np.mean(np.abs(t) > stats.t.isf(alpha / 2, n - 1))
    assert rejected == pytest.approx(0.8, abs=0.005)


# ----------------------------------------------------------------------------- single comparisons
def test_a_significant_difference_reads_lower_as_scipy_and_statsmodels_test_it():
    b = shifted([-0.031, -0.052, -0.040, -0.047, -0.029])
    c = compare_paired(b, A, metric_range=UNIT_RANGE)
    x, y = arrays(b, A)
    assert c.p_value == pytest.approx(stats.ttest_rel(x, y).pvalue)
    ci = stats.ttest_rel(x, y).confidence_interval(0.95)
    assert (c.estimate.low, c.estimate.high) == (pytest.approx(ci.low), pytest.approx(ci.high))
    assert c.n == 5 and c.sd == pytest.approx(np.std(x - y, ddof=1))
    assert c.mde == pytest.approx(detectable_effect_size(5) * c.sd)
    assert c.kind == "lower" and c.verdict == "lower" and c.estimate.direction == "lower"
    assert compare_paired(A, b).verdict == "higher"


def test_an_equivalent_difference_matches_statsmodels_ttost_paired():
    b = shifted([0.004, -0.006, 0.002, 0.007, -0.003])
    c = compare_paired(b, A, margin=0.02)
    x, y = arrays(b, A)
    assert c.tost_p == pytest.approx(ttost_paired(x, y, -0.02, 0.02)[0])
    assert c.tost_p < 0.05 < c.p_value
    assert c.kind == "equivalent" and c.verdict == "equivalent within ±0.02"
    # The same data with a margin it cannot show: inconclusive, with what the seeds could detect.
    narrow = compare_paired(b, A, margin=0.002)
    assert narrow.tost_p == pytest.approx(ttost_paired(x, y, -0.002, 0.002)[0]) and narrow.tost_p > 0.05
    assert narrow.verdict == f"inconclusive (could detect ≥ {narrow.mde:.3g})"
    # Without a margin no equivalence is tested.
    assert math.isnan(compare_paired(b, A).tost_p) and compare_paired(b, A).kind == "inconclusive"


def test_a_noisy_difference_is_inconclusive_and_says_what_it_could_detect():
    b = shifted([0.08, -0.05, 0.02, -0.06, 0.07])
    c = compare_paired(b, A, margin=0.02)
    x, y = arrays(b, A)
    assert c.p_value == pytest.approx(stats.ttest_rel(x, y).pvalue) and c.p_value > 0.05
    assert c.tost_p == pytest.approx(ttost_paired(x, y, -0.02, 0.02)[0]) and c.tost_p > 0.05
    expected = 1.682 * np.std(x - y, ddof=1)
    assert c.mde == pytest.approx(expected, rel=1e-3)
    assert c.verdict == f"inconclusive (could detect ≥ {c.mde:.3g})" and c.verdict_text(".2f").endswith(f"{c.mde:.2f})")


def test_a_significant_difference_inside_the_margin_reads_as_a_difference():
    # Significance comes first: a small but consistent shift inside ±m is "higher", not "equivalent".
    c = compare_differences([0.010, 0.012, 0.011, 0.009, 0.010], margin=0.05)
    assert c.p_value < 0.05 and c.tost_p < 0.05
    assert c.verdict == "higher"


def test_degenerate_inputs_never_print_a_non_finite_number_as_a_verdict():
    for values in ([], [0.1], [0.1, math.nan]):
        c = compare_differences(values, margin=0.05)
        assert c.n == len([v for v in values if not math.isnan(v)])
        assert c.kind == "inconclusive" and c.verdict == f"inconclusive (n = {c.n}: nothing detectable)"
        assert math.isnan(c.p_value) and math.isnan(c.mde) and math.isnan(c.tost_p)
    # NaN marks a missing seed: dropped, like paired_difference.
    assert compare_differences([0.1, math.nan, 0.3, 0.2]).n == 3
    # Every difference the same: the t statistic is ±∞ or 0/0.
    same = compare_differences([0.25, 0.25, 0.25, 0.25])
    assert (same.sd, same.p_value, same.mde, same.verdict) == (0.0, 0.0, 0.0, "higher")
    zero = compare_differences([0.0, 0.0, 0.0], margin=0.01)
    assert (zero.p_value, zero.tost_p, zero.verdict) == (1.0, 0.0, "equivalent within ±0.01")
    assert compare_differences([0.0, 0.0, 0.0]).verdict == "inconclusive (could detect ≥ 0)"
    assert compare_differences([0.02, 0.02], margin=0.01).verdict == "higher"
    for bad in ([0.1, math.inf, 0.2], [-math.inf, 0.0]):
        with pytest.raises(ValueError, match="finite"):
            compare_differences(bad)
    for margin in (0, -0.1, math.nan, math.inf, True):
        with pytest.raises(ValueError, match="margin"):
            compare_differences([0.1, 0.2], margin=margin)
    with pytest.raises(ValueError, match="alpha"):
        compare_differences([0.1, 0.2], alpha=1.5)
    with pytest.raises(TypeError, match="sequence of numbers"):
        compare_differences("0.1, 0.2")


# ----------------------------------------------------------------------------- a claim over several settings
def test_holm_turns_a_nominal_difference_inconclusive_as_statsmodels_adjusts_it():
    settings = [
        [-0.051, -0.043, -0.060, -0.048, -0.055],  # clearly lower
        [-0.020, 0.000, -0.035, -0.010, -0.026],  # lower at 5% (p = 0.041), not after Holm
        [0.060, -0.050, 0.010, -0.040, 0.045],  # noise
    ]
    raw = [compare_differences(d, margin=0.03) for d in settings]
    adjusted = holm(raw)
    expected = multipletests([c.p_value for c in raw], alpha=0.05, method="holm")[1]
    assert [c.p_value for c in adjusted] == pytest.approx(list(expected))
    tost_expected = multipletests([c.tost_p for c in raw], alpha=0.05, method="holm")[1]
    assert [c.tost_p for c in adjusted] == pytest.approx(list(tost_expected))
    assert [c.kind for c in raw] == ["lower", "lower", "inconclusive"]
    assert [c.kind for c in adjusted] == ["lower", "inconclusive", "inconclusive"]
    # The MDE after adjustment is stated at Holm's strictest step, α/k.
    sd = np.std(settings[1], ddof=1)
    assert adjusted[1].mde == pytest.approx(detectable_effect_size(5, 0.05 / 3) * sd)
    assert adjusted[1].mde > raw[1].mde
    assert adjusted[1].verdict == f"inconclusive (could detect ≥ {adjusted[1].mde:.3g})"
    # Intervals stay per setting.
    assert adjusted[1].estimate == raw[1].estimate
    assert summarize(adjusted) == "inconclusive in 2 of 3, lower in 1 of 3 (Holm)"
    assert summarize(raw) == "lower in 2 of 3, inconclusive in 1 of 3"
    with pytest.raises(ValueError, match="adjusted already"):
        holm(adjusted)


@pytest.mark.parametrize("k", [1, 2, 7, 40])
def test_holm_adjusted_p_values_equal_statsmodels(k):
    rng = np.random.default_rng(k)
    p = rng.uniform(0, 0.2, size=k) ** 2
    p[: k // 3] = p[0]  # ties
    p[-1] = 0.9  # capped at 1 once multiplied
    assert holm_adjusted(list(p)) == pytest.approx(list(multipletests(p, method="holm")[1]), abs=1e-15)
    assert holm_adjusted([]) == []


def test_holm_leaves_untestable_settings_out_of_the_family_and_summarizes_equivalence():
    raw = [compare_differences(d, margin=0.05) for d in ([0.001, -0.002, 0.0015, -0.001], [0.3], [0.002, -0.001, 0.0])]
    adjusted = holm(raw)
    tested = multipletests([raw[0].p_value, raw[2].p_value], method="holm")[1]
    assert (adjusted[0].p_value, adjusted[2].p_value) == (pytest.approx(tested[0]), pytest.approx(tested[1]))
    assert math.isnan(adjusted[1].p_value) and adjusted[1].verdict == "inconclusive (n = 1: nothing detectable)"
    assert summarize(adjusted) == "equivalent within ±0.05 in 2 of 3, inconclusive in 1 of 3 (Holm)"
    assert holm([]) == []
    with pytest.raises(ValueError, match="at least one"):
        summarize([])


# ----------------------------------------------------------------------------- bounded metrics
def test_an_accuracy_interval_is_clipped_to_its_range_and_flagged():
    values = [0.99, 1.0, 0.97]
    free, bounded = mean_ci(values), mean_ci(values, value_range=UNIT_RANGE)
    assert free.high > 1.0 and not free.clipped
    assert bounded.clipped and bounded.high == 1.0 and bounded.low == pytest.approx(free.low)
    assert bounded.mean == pytest.approx(free.mean)
    assert f"{bounded:.3f}" == f"{free.mean:.3f} [{free.low:.3f}, 1.000]*"
    # Inside the range nothing changes (and nothing is flagged).
    inside = mean_ci([0.81, 0.79, 0.86], value_range=UNIT_RANGE)
    assert inside == mean_ci([0.81, 0.79, 0.86]) and f"{inside}" == f"{mean_ci([0.81, 0.79, 0.86])}"
    with pytest.raises(ValueError, match=r"1\.2 is outside the metric's range \[0\.0, 1\.0\]"):
        mean_ci([0.9, 1.2], value_range=UNIT_RANGE)
    with pytest.raises(ValueError, match="low < high"):
        mean_ci([0.5], value_range=(1.0, 0.0))


def test_a_difference_of_accuracies_stays_in_minus_one_to_one_and_its_verdict_is_unchanged():
    a, b = {0: 0.0, 1: 0.02, 2: 0.3}, {0: 1.0, 1: 1.0, 2: 1.0}
    free, bounded = paired_difference(a, b), paired_difference(a, b, metric_range=UNIT_RANGE)
    assert free.low < -1.0 and bounded.low == -1.0 and bounded.clipped and bounded.high == pytest.approx(free.high)
    c_free, c_bounded = compare_paired(a, b), compare_paired(a, b, metric_range=UNIT_RANGE)
    assert c_bounded.estimate.low == -1.0 and c_bounded.estimate.clipped
    assert (c_bounded.p_value, c_bounded.kind) == (c_free.p_value, c_free.kind) == (c_free.p_value, "lower")
    with pytest.raises(ValueError, match="outside the metric's range"):
        compare_paired({0: 1.5, 1: 0.5}, {0: 0.5, 1: 0.5}, metric_range=UNIT_RANGE)


def test_metric_ranges_follow_the_study_metric_names():
    assert metric_range("test_acc") == metric_range("oracle/mia_loss_acc") == metric_range("mia_efficacy") == (0, 1)
    assert metric_range("J") == metric_range("goal") == metric_range("test_acc_gap_noise_floor") == (0, 1)
    assert metric_range("forget_acc_gap") == (-1, 1)
    assert metric_range("forget_loss") is None and metric_range("tow") is None
    # A duration is bounded below only: its interval stops at 0, a difference of two is unbounded.
    assert metric_range("seconds") == metric_range("oracle/duration_s") == (0, math.inf)
    assert difference_range(metric_range("seconds")) is None
    spread = mean_ci([1.0, 1.0, 100.0], value_range=metric_range("seconds"))
    assert spread.low == 0.0 and spread.high > 100 and spread.clipped
    assert not mean_ci([1.0, 2.0, 1.5], value_range=(0, math.inf)).clipped
    with pytest.raises(ValueError, match="a finite end"):
        mean_ci([1.0, 2.0], value_range=(-math.inf, math.inf))


def test_the_estimate_api_stays():
    e = Estimate(0.5, 0.25, 0.75, 3)
    assert f"{e}" == "0.500 [0.250, 0.750]" and f"{e:+.2f}" == "+0.50 [+0.25, +0.75]"
    assert not e.clipped and e.half_width == 0.25 and e.direction == "higher"


# ----------------------------------------------------------------------------- report rows
def rows() -> list[dict]:
    """differences.csv-like rows (DEL − Random at three budgets) with per-seed differences."""
    per_seed = {
        0.1: {0: -0.051, 1: -0.043, 2: -0.060, 3: -0.048, 4: -0.055},
        0.3: {0: -0.020, 1: 0.000, 2: -0.035, 3: -0.010, 4: -0.026},
        0.5: {0: 0.060, 1: -0.050, 2: 0.010, 3: -0.040, 4: 0.045},
    }
    out = []
    for budget, values in per_seed.items():
        e = paired_difference(values, dict.fromkeys(values, 0.0))
        out.append(
            {
                "axis": "localizer",
                "comparison": "DEL - Random",
                "budget": budget,
                "metric": "test_acc",
                "difference": e.mean,
                "ci_low": e.low,
                "ci_high": e.high,
                "n": e.n,
                "per_seed": values,
            }
        )
    out.append(
        {
            "axis": "localizer",
            "comparison": "DEL - Random",
            "budget": 0.1,
            "metric": "forget_loss",
            "difference": "",
            "n": "",
            "per_seed": [0.2, 0.1, 0.3],
        }
    )
    return out


def test_report_rows_gain_power_equivalence_and_holm_columns():
    out = verdict_rows(rows(), margins={"test_acc": 0.03}, claim_keys=("comparison", "metric"))
    assert [r["budget"] for r in out] == [0.1, 0.3, 0.5, 0.1] and all(set(VERDICT_COLUMNS) <= set(r) for r in out)
    acc = out[:3]
    singles = [compare_differences(r["per_seed"], margin=0.03, value_range=(-1, 1)) for r in rows()[:3]]
    for row, c, h in zip(acc, singles, holm(singles), strict=True):
        assert (row["difference"], row["n"], row["p_value"], row["tost_p"], row["mde"], row["margin"]) == (
            pytest.approx(c.estimate.mean),
            5,
            pytest.approx(c.p_value),
            pytest.approx(c.tost_p),
            pytest.approx(c.mde),
            0.03,
        )
        assert row["verdict"] == c.verdict and row["verdict_holm"] == h.verdict
        assert row["p_value_holm"] == pytest.approx(h.p_value) and row["mde_holm"] == pytest.approx(h.mde)
    assert [r["verdict"] for r in acc][:2] == ["lower", "lower"]
    assert acc[0]["verdict_holm"] == "lower" and acc[1]["verdict_holm"].startswith("inconclusive (could detect ≥ ")
    assert {r["claim"] for r in acc} == {"inconclusive in 2 of 3, lower in 1 of 3 (Holm)"}
    # An unbounded metric without a margin: no clipping, no TOST; its own claim of one setting.
    loss = out[3]
    assert math.isnan(loss["margin"]) and math.isnan(loss["tost_p"]) and not loss["ci_clipped"]
    assert loss["claim"] == f"{loss['verdict_holm'].split(' (')[0]} in 1 of 1 (Holm)"
    assert set(HOLM_COLUMNS) <= set(loss)
    # Without claim keys: no Holm columns.
    assert not set(HOLM_COLUMNS) & set(verdict_rows(rows())[0])


def test_report_rows_refuse_per_seed_values_that_do_not_belong_to_the_row():
    bad = rows()[0] | {"difference": 0.2}
    with pytest.raises(ValueError, match="difference 0.2 is not the mean of its per-seed differences"):
        verdict_rows([bad])
    with pytest.raises(ValueError, match="n = 4 but 5 per-seed differences"):
        verdict_rows([rows()[0] | {"n": 4}])
    with pytest.raises(ValueError, match="needs 'metric' and 'per_seed'"):
        verdict_rows([{"metric": "test_acc", "difference": 0.1}])
    with pytest.raises(ValueError, match="metric 'test_acc': value 1.5 is outside"):
        verdict_rows([{"metric": "test_acc", "per_seed": [1.5, 0.2]}])
    # An explicit range overrides the name's: 1.5 is a fine difference of an unbounded metric.
    assert verdict_rows([{"metric": "test_acc", "per_seed": [1.5, 0.2]}], ranges={"test_acc": None})[0]["n"] == 2
    with pytest.raises(ValueError, match="claim_keys"):
        verdict_rows(rows(), claim_keys=("setting",))


def test_the_attack_accuracy_interval_over_target_models_stays_in_zero_to_one():
    from unlearn_pl.ulira import BankAttack

    per_model = np.array([0.99, 1.0, 0.97])
    attack = BankAttack(
        summary={},
        before={},
        population={},
        population_before={},
        per_model={"after": per_model},
        success=np.array([]),
        success_before=np.array([]),
        fit=None,
        num_scored=0,
        tolerance=0.0,
    )
    e = attack.interval("after")
    assert e.clipped and e.high == 1.0 and e.low == pytest.approx(mean_ci(per_model.tolist()).low)

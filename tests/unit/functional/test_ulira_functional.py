"""The pure U-LiRA functions against hand computations and known Gaussians."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import norm

from unlearn_pl.functional.lira import (
    auc,
    balanced_accuracy,
    balanced_membership,
    chance_tolerance,
    fit_gaussians,
    fit_population,
    likelihood_ratio,
    logit_confidence,
    min_negatives,
    per_example_success,
    per_model_accuracy,
    tpr_at_fpr,
)


def test_logit_confidence_matches_the_definition_and_survives_confident_logits():
    logits = torch.tensor([[2.0, 0.0, -1.0], [0.0, 0.0, 0.0]])
    target = torch.tensor([0, 2])
    p = torch.softmax(logits.double(), 1)[torch.arange(2), target]
    assert torch.allclose(logit_confidence(logits, target), torch.log(p) - torch.log1p(-p))
    assert logit_confidence(logits, target)[1].item() == pytest.approx(math.log(0.5))  # 1/3 vs 2/3
    confident = torch.tensor([[200.0, 0.0, 0.0]])
    # p_y rounds to 1: the naive form is inf; the stable one is 200 - log 2.
    assert logit_confidence(confident, torch.tensor([0])).item() == pytest.approx(200 - math.log(2))
    with pytest.raises(ValueError, match="C >= 2"):
        logit_confidence(torch.zeros(3, 1), torch.zeros(3, dtype=torch.long))


def test_fit_and_scores_match_a_hand_computation():
    # 4 shadow models, 2 examples; example 0 in for models 0, 1; example 1 in for models 1, 3.
    phi = np.array([[1.0, 0.0], [3.0, 4.0], [0.0, 1.0], [-2.0, 6.0]])
    member = np.array([[True, False], [True, True], [False, False], [False, True]])
    fit = fit_gaussians(phi, member, "per_example")
    assert fit.mean_in.tolist() == [2.0, 5.0] and fit.mean_out.tolist() == [-1.0, 0.5]
    # Unbiased per-example std: sqrt(((1-2)^2 + (3-2)^2) / 1) = sqrt(2), etc.
    assert np.allclose(fit.std_in, [math.sqrt(2), math.sqrt(2)])
    assert np.allclose(fit.std_out, [math.sqrt(2), math.sqrt(0.5)])
    fixed = fit_gaussians(phi, member, "global")
    assert fixed.mean_in.tolist() == [2.0, 5.0]  # the means stay per example
    # One spread per side over every value: in-values 1, 3, 4, 6 (mean 3.5) → variance 3.25.
    assert np.allclose(fixed.std_in, math.sqrt(3.25))
    # Out-values 0, -2, 0, 1 (mean -0.25) → variance (0.0625 + 3.0625 + 0.0625 + 1.5625) / 4.
    assert np.allclose(fixed.std_out, math.sqrt(4.75 / 4))
    target_phi = np.array([[2.0, 0.5], [-1.0, 5.0]])
    lr = likelihood_ratio(target_phi, fit)
    expected = norm.logpdf(target_phi, fit.mean_in, fit.std_in) - norm.logpdf(target_phi, fit.mean_out, fit.std_out)
    assert np.allclose(lr, expected)
    # At the in-mean of example 0 with equal spreads: log ratio = (2 - (-1))^2 / (2 * 2) = 9/4.
    assert lr[0, 0] == pytest.approx(9 / 4)
    target_member = np.array([[True, False], [False, True]])
    assert (lr > 0).tolist() == [[True, False], [False, True]]
    assert balanced_accuracy(lr, target_member) == 1.0
    assert auc(lr, target_member) == 1.0


def test_known_gaussians_give_the_bayes_accuracy():
    """in ~ N(2, 1), out ~ N(0, 1): LR = 2φ − 2, so the attack thresholds at φ = 1 and its
    balanced accuracy is Φ(1) ≈ 0.841; the AUC is Φ(2/√2) ≈ 0.921."""
    rng = np.random.default_rng(0)
    k, t, n = 64, 64, 200
    member = balanced_membership(k + t, n, seed=1)
    phi = np.where(member, rng.normal(2.0, 1.0, member.shape), rng.normal(0.0, 1.0, member.shape))
    for variance in ("global", "per_example"):
        fit = fit_gaussians(phi[:k], member[:k], variance)
        scores = likelihood_ratio(phi[k:], fit)
        assert balanced_accuracy(scores, member[k:]) == pytest.approx(norm.cdf(1.0), abs=0.02)
        assert auc(scores, member[k:]) == pytest.approx(norm.cdf(2 / math.sqrt(2)), abs=0.02)
    success = per_example_success(likelihood_ratio(phi[k:], fit_gaussians(phi[:k], member[:k])), member[k:])
    assert success.shape == (n,) and np.nanmean(success) == pytest.approx(norm.cdf(1.0), abs=0.02)


def test_global_variance_works_with_two_shadow_models():
    member = balanced_membership(2, 30, seed=0)
    fit = fit_gaussians(np.random.default_rng(0).normal(size=member.shape) + member, member, "global")
    assert np.isfinite(fit.std_in).all() and (fit.std_in > 0).all()


def test_no_signal_stays_within_the_chance_tolerance():
    rng = np.random.default_rng(3)
    k, t, n = 32, 8, 150
    member = balanced_membership(k + t, n, seed=4)
    phi = rng.normal(size=member.shape) + rng.normal(size=(1, n)) * 3  # per-example offsets, no membership signal
    scores = likelihood_ratio(phi[k:], fit_gaussians(phi[:k], member[:k]))
    assert abs(balanced_accuracy(scores, member[k:]) - 0.5) <= chance_tolerance(t * n)
    assert chance_tolerance(400) == pytest.approx(3 * 0.5 / 20)


def test_balanced_membership_puts_every_example_in_half_the_models():
    m = balanced_membership(10, 50, seed=0)
    assert m.shape == (10, 50) and (m.sum(0) == 5).all()
    assert not (m == balanced_membership(10, 50, seed=1)).all()
    assert (m == balanced_membership(10, 50, seed=0)).all()


def test_tpr_at_fpr_from_the_roc_curve_and_not_available_for_few_negatives():
    scores = np.arange(200, dtype=float)
    member = scores >= 100  # perfectly separable
    assert tpr_at_fpr(scores, member, 0.01) == 1.0
    assert tpr_at_fpr(scores, member, 0.001) is None  # 100 negatives cannot resolve 0.1%
    assert min_negatives(0.01) == 100 and min_negatives(0.001) == 1000
    # One negative above every member: at FPR 1% (1 of 100) every member counts, at 0 FPR none.
    scores2 = scores.copy()
    scores2[0] = 1000.0
    assert tpr_at_fpr(scores2, member, 0.01) == 1.0
    assert tpr_at_fpr(scores2, member, 0.005) is None


def test_per_example_success_is_nan_without_both_sides():
    scores = np.array([[1.0, 1.0], [-1.0, 1.0]])
    member = np.array([[True, True], [False, True]])
    success = per_example_success(scores, member)
    assert success[0] == 1.0 and math.isnan(success[1])


@pytest.mark.parametrize(
    ("variance", "k", "match"),
    [("per_example", 3, "at least 2 shadow model"), ("global", 1, "at least 1 shadow model")],
)
def test_too_few_shadow_models_for_the_variance_mode(variance, k, match):
    member = balanced_membership(k, 20, seed=0)
    with pytest.raises(ValueError, match=match):
        fit_gaussians(np.zeros(member.shape), member, variance)


def test_bad_arguments_are_named():
    member = np.array([[True, False]])
    with pytest.raises(ValueError, match="variance must be one of"):
        fit_gaussians(np.zeros((1, 2)), member, "robust")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="boolean"):
        balanced_accuracy([0.0, 1.0], [1, 0])
    with pytest.raises(ValueError, match="shape"):
        auc([0.0, 1.0, 2.0], [True, False])
    with pytest.raises(ValueError, match="NaN"):
        balanced_accuracy([np.nan, 1.0], [True, False])
    with pytest.raises(ValueError, match="both members and non-members"):
        balanced_accuracy([0.0, 1.0], [True, True])


def test_population_fit_shares_one_gaussian_pair_and_misses_per_example_offsets():
    """Examples with their own offsets: the per-example attack separates in from out, the
    population attack (one Gaussian pair for all) mostly sees the offsets."""
    rng = np.random.default_rng(5)
    k, t, n = 32, 16, 100
    member = balanced_membership(k + t, n, seed=6)
    offsets = rng.normal(0, 5, size=(1, n))
    phi = offsets + 1.5 * member + rng.normal(0, 0.5, size=member.shape)
    population = fit_population(phi[:k], member[:k])
    assert np.allclose(population.mean_in, phi[:k][member[:k]].mean()) and np.ptp(population.std_out) == 0
    per_example = fit_gaussians(phi[:k], member[:k], "per_example")
    acc_population = balanced_accuracy(likelihood_ratio(phi[k:], population), member[k:])
    acc_per_example = balanced_accuracy(likelihood_ratio(phi[k:], per_example), member[k:])
    assert acc_per_example > 0.9 and acc_population < 0.7


def test_per_model_accuracy_is_each_rows_balanced_accuracy():
    scores = np.array([[1.0, -1.0, 1.0, -1.0], [1.0, 1.0, 1.0, 1.0]])
    member = np.array([[True, False, False, True], [True, False, True, False]])
    assert per_model_accuracy(scores, member).tolist() == [0.5, 0.5]
    assert per_model_accuracy(-scores, ~member).tolist() == [0.5, 0.5]
    assert per_model_accuracy(np.array([[2.0, -2.0]]), np.array([[True, False]])).tolist() == [1.0]

"""CPU transcriptions of the two published per-example audits, kept only to test our own versions.

- ``compute_logit_scaled_confidence`` and ``compute_forget_score_from_confs`` with its helpers:
  ``metric.py`` of github.com/google-deepmind/unlearning_evaluation (commit ffae0ff, Apache 2.0,
  Copyright 2024 DeepMind Technologies Limited), the scorer of the NeurIPS 2023 Machine
  Unlearning Challenge.
- ``get_margins_from_multimodel_logits``, ``compute_binned_KL_div`` and ``kl_from_margins``:
  ``unlearning_bench/eval.py`` of github.com/RoyRin/data-unlearning-bench (commit eb261f9, MIT),
  and ``binned_kl_divergence``/``klom_from_margins`` of ``easydub/eval.py`` in
  github.com/easydub/EasyDUB-code (commit 5de3c4c, MIT), the later repackaging.

Line for line as published, except:
- ``.cuda()`` calls are dropped (the tensors stay on the CPU); progress bars, the unused
  auxiliary outputs (per-threshold rates and threshold lists kept for plotting) are left out, and
  the NaN filter's list comprehension is ``np.flatnonzero`` (same indices, less time);
- ``assert thr_eps`` in ``_get_epsilons`` reads ``assert thr_eps.size``: ``thr_eps`` is a NumPy
  array there, and ``bool()`` of an array with more than one element raises ``ValueError``, so the
  published line fails on every example that is not capped beforehand. Its evident intent is
  "some threshold gave a finite ε", which is what ``size`` tests.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from scipy import stats

# --- google-deepmind/unlearning_evaluation, metric.py -------------------------------------------

DELTA = 1e-05
EPSILON_CAP = 50
NUM_THRESHOLDS_PER_UNIT = 100


def compute_logit_scaled_confidence(logits, targets):
    count = logits.shape[0]
    logits = logits.copy()  # the published function shifts the caller's array in place
    logits -= np.max(logits, axis=1, keepdims=True)
    probs = np.array(np.exp(logits), dtype=np.float64)
    probs /= np.sum(probs, axis=1, keepdims=True)
    prob_correct = probs[np.arange(count), targets[:count]]
    probs[np.arange(count), targets[:count]] = 0
    prob_wrong = np.sum(probs, axis=1)
    conf = np.log(prob_correct + 1e-45) - np.log(prob_wrong + 1e-45)
    return prob_correct, conf


def _get_double_threshold_rates(pos_confs_, neg_confs_):
    pos_diff = pos_confs_.max() - pos_confs_.min()
    neg_diff = neg_confs_.max() - neg_confs_.min()
    smallest = neg_diff if pos_diff > neg_diff else pos_diff
    if pos_diff >= neg_diff:
        pos_confs_, neg_confs_ = neg_confs_, pos_confs_
    buffer = 2.0
    width = smallest
    min_ = (pos_confs_.min() + width - buffer).detach().cpu().numpy()
    max_ = (pos_confs_.max() + buffer).detach().cpu().numpy()
    num_right_thresholds = int(np.ceil((max_ - min_) * NUM_THRESHOLDS_PER_UNIT))
    right_thresholds_ = np.linspace(min_, max_, num=num_right_thresholds)
    width = width.detach().cpu().numpy()
    num_left_thresholds = int(np.ceil(2 * buffer * NUM_THRESHOLDS_PER_UNIT))
    thr_left_ = np.concatenate(
        [np.linspace(tr - width - buffer, tr - width + buffer, num=num_left_thresholds) for tr in right_thresholds_],
        axis=0,
    )
    thr_right_ = np.tile(np.reshape(right_thresholds_, (-1, 1)), (1, num_left_thresholds)).reshape(-1)
    total_num_thresholds = len(thr_left_)
    num_models = pos_confs_.shape[0]
    thr_right_ = np.tile(np.expand_dims(thr_right_, 0), (num_models, 1))
    thr_left_ = np.tile(np.expand_dims(thr_left_, 0), (num_models, 1))
    pos_confs_ = torch.tile(pos_confs_[:, None], (1, total_num_thresholds))
    neg_confs_ = torch.tile(neg_confs_[:, None], (1, total_num_thresholds))
    thr_right_ = torch.from_numpy(thr_right_)
    thr_left_ = torch.from_numpy(thr_left_)

    def _is_pp(c):
        return torch.logical_and(torch.le(thr_left_, c), torch.le(c, thr_right_)).type(torch.float32)

    def _is_pn(c):
        return torch.logical_not(_is_pp(c)).type(torch.float32)

    tpr = torch.mean(_is_pp(pos_confs_), 0)
    fnr = torch.mean(_is_pn(pos_confs_), 0)
    fpr = torch.mean(_is_pp(neg_confs_), 0)
    tnr = torch.mean(_is_pn(neg_confs_), 0)
    return tpr, fnr, fpr, tnr


def _get_single_threshold_rates(pos_confs_, neg_confs_):
    all_confs = torch.cat([pos_confs_, neg_confs_])
    min_val = all_confs.min()
    max_val = all_confs.max()
    num_thresholds = int(torch.ceil((max_val - min_val) * NUM_THRESHOLDS_PER_UNIT))
    thresholds_ = torch.linspace(min_val, max_val, num_thresholds)
    num_models = pos_confs_.shape[0]
    thresholds_ = torch.tile(thresholds_[None, :], (num_models, 1))
    pos_confs_ = torch.tile(pos_confs_[:, None], (1, num_thresholds))
    neg_confs_ = torch.tile(neg_confs_[:, None], (1, num_thresholds))
    tpr = torch.mean((pos_confs_ >= thresholds_).type(torch.float32), 0)
    fpr = torch.mean((neg_confs_ >= thresholds_).type(torch.float32), 0)
    tnr = torch.mean((neg_confs_ < thresholds_).type(torch.float32), 0)
    fnr = torch.mean((pos_confs_ < thresholds_).type(torch.float32), 0)
    return tpr, fnr, fpr, tnr


def _get_epsilons(pos_confs, neg_confs, delta):
    epsilons = []
    num_examples = pos_confs.shape[1]
    for i in range(num_examples):
        pos_confs_ = pos_confs[:, i].reshape(-1)
        neg_confs_ = neg_confs[:, i].reshape(-1)
        pos_diff = np.max(pos_confs_) - np.min(pos_confs_)
        neg_diff = np.max(neg_confs_) - np.min(neg_confs_)
        largest = pos_diff if pos_diff > neg_diff else neg_diff
        smallest = neg_diff if pos_diff > neg_diff else pos_diff
        with np.errstate(invalid="ignore", divide="ignore"):
            peaky = smallest / largest < 0.01
        if peaky:
            epsilons.append(EPSILON_CAP)
            continue
        pos_confs_ = torch.from_numpy(pos_confs_)
        neg_confs_ = torch.from_numpy(neg_confs_)
        tpr_d, fnr_d, fpr_d, tnr_d = _get_double_threshold_rates(pos_confs_, neg_confs_)
        tpr_s, fnr_s, fpr_s, tnr_s = _get_single_threshold_rates(pos_confs_, neg_confs_)
        tpr = torch.cat([tpr_d, tpr_s], 0)
        fnr = torch.cat([fnr_d, fnr_s], 0)
        fpr = torch.cat([fpr_d, fpr_s], 0)
        tnr = torch.cat([tnr_d, tnr_s], 0)
        total_num_thresholds = tpr.shape[0]
        thr_eps = torch.zeros(total_num_thresholds)
        fpr_fnr_both_zero = torch.eq(fpr + fnr, torch.zeros(total_num_thresholds))
        tpr_tnr_both_ones = torch.eq(tpr + tnr, 2 * torch.ones(total_num_thresholds))
        thr_eps = torch.where(fpr_fnr_both_zero * tpr_tnr_both_ones, torch.full(thr_eps.shape, np.inf), thr_eps)
        thr_eps_is_zero = torch.eq(thr_eps, torch.zeros_like(thr_eps))
        fpr_or_fnr_is_zero = torch.eq(fpr * fnr, torch.zeros_like(thr_eps))
        thr_eps = torch.where(thr_eps_is_zero * fpr_or_fnr_is_zero, torch.full(thr_eps.shape, np.nan), thr_eps)
        with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # nanmax's all-NaN slices; the published code prints them
            candidate = np.clip(
                np.nanmax(
                    [
                        np.log(1 - delta - fpr.detach().cpu().numpy()) - np.log(fnr.detach().cpu().numpy()),
                        np.log(1 - delta - fnr.detach().cpu().numpy()) - np.log(fpr.detach().cpu().numpy()),
                    ],
                    axis=0,
                ),
                0,
                None,
            )
        thr_eps = torch.where(torch.eq(thr_eps, torch.zeros_like(thr_eps)), torch.from_numpy(candidate), thr_eps)
        keep_inds = np.flatnonzero(~np.isnan(thr_eps.detach().cpu().numpy()))
        thr_eps = thr_eps.detach().cpu().numpy()[keep_inds]
        assert thr_eps.size, "Something went wrong, all thresholds gave nan epsilon..."
        thr_eps = np.array(thr_eps)
        epsilons.append(np.nanmax(thr_eps))
    epsilons = np.clip(epsilons, 0, EPSILON_CAP)
    return epsilons


def compute_forget_score_from_confs(unlearned_confs, retrained_confs):
    _, forget_set_size = retrained_confs.shape
    retrain_means = np.median(retrained_confs, axis=0)
    unlearned_means = np.median(unlearned_confs, axis=0)
    retrain_is_positive = retrain_means > unlearned_means
    pos_confs = np.where(retrain_is_positive, retrained_confs, unlearned_confs)
    neg_confs = np.where(retrain_is_positive, unlearned_confs, retrained_confs)
    eps = _get_epsilons(pos_confs, neg_confs, delta=DELTA)
    num_models = unlearned_confs.shape[0]
    max_epsilon = np.ceil(np.log(num_models - 1))
    start_idx = 0
    bucket_size = 0.5
    end_idx = start_idx + bucket_size
    points = 1
    bucket_points = {}
    while end_idx <= max_epsilon:
        bucket_points[start_idx] = points
        points /= 2
        start_idx += bucket_size
        end_idx = start_idx + bucket_size
    forget_score = 0
    for e in eps:
        for start_idx, points in bucket_points.items():
            if e < start_idx + bucket_size:
                forget_score += points
                break
    forget_score /= forget_set_size
    return forget_score, eps


def final_score(forget_score, u_retain_accs, u_test_accs, r_retain_accs, r_test_accs):
    """``main.py``'s utility adjustment."""
    u_r_mean, u_t_mean = np.mean(u_retain_accs), np.mean(u_test_accs)
    r_r_mean, r_t_mean = np.mean(r_retain_accs), np.mean(r_test_accs)
    return forget_score * (u_r_mean / r_r_mean) * (u_t_mean / r_t_mean)


# --- RoyRin/data-unlearning-bench, unlearning_bench/eval.py -------------------------------------


def get_margins_from_multimodel_logits(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    assert logits.dim() == 3
    n_models, n_datapoints, n_classes = logits.shape
    one_hot = torch.nn.functional.one_hot(labels, num_classes=n_classes).bool()
    one_hot = one_hot.unsqueeze(0).expand(n_models, -1, -1)
    logits_correct = logits[one_hot].view(n_models, n_datapoints)
    lse_other = logits.masked_fill(one_hot, -torch.inf).logsumexp(dim=-1)
    return logits_correct - lse_other


def compute_binned_KL_div(p_arr, q_arr, bin_count=20, eps=1e-5, min_val=-100, max_val=100):
    p_arr = np.clip(p_arr, min_val, max_val)
    q_arr = np.clip(q_arr, min_val, max_val)
    bins_start = min(p_arr.min(), q_arr.min())
    bins_end = max(p_arr.max(), q_arr.max())
    if bins_start >= bins_end:
        bins_end = bins_start + 1
    bins = np.linspace(bins_start, bins_end, bin_count + 1)
    p_binned_indices = np.digitize(p_arr, bins)
    q_binned_indices = np.digitize(q_arr, bins)
    p_bin_counts = np.array([np.sum(p_binned_indices == i) for i in range(1, bin_count + 1)])
    q_bin_counts = np.array([np.sum(q_binned_indices == i) for i in range(1, bin_count + 1)])
    p_total = p_bin_counts.sum()
    q_total = q_bin_counts.sum()
    p_bin_probs = p_bin_counts / p_total if p_total > 0 else np.zeros_like(p_bin_counts, dtype=float)
    q_bin_probs = q_bin_counts / q_total if q_total > 0 else np.zeros_like(q_bin_counts, dtype=float)
    q_bin_probs_safe = np.where(p_bin_probs > 0, np.maximum(q_bin_probs, eps), q_bin_probs)
    with np.errstate(invalid="ignore"):
        return stats.entropy(pk=p_bin_probs, qk=q_bin_probs_safe)


def kl_from_margins(all_unlearned_margins, all_oracle_margins, clip_min=-100, clip_max=100):
    assert all_oracle_margins.shape == all_unlearned_margins.shape, "Margin tensors must have the same shape"
    results_list = []
    N = all_oracle_margins.shape[1]
    for sample in range(N):
        oracle_arr = _to_np_cpu(all_oracle_margins[:, sample])
        unlearned_arr = _to_np_cpu(all_unlearned_margins[:, sample])
        results_list.append(compute_binned_KL_div(unlearned_arr, oracle_arr, min_val=clip_min, max_val=clip_max))
    return np.stack(results_list)


def _to_np_cpu(x):
    return x.cpu().numpy() if torch.is_tensor(x) else x


# --- easydub/EasyDUB-code, easydub/eval.py --------------------------------------------------------


def binned_kl_divergence(p_samples, q_samples, bin_count=20, eps=1e-5, min_val=-100.0, max_val=100.0):
    p_arr = np.clip(p_samples, min_val, max_val)
    q_arr = np.clip(q_samples, min_val, max_val)
    bins_start = min(p_arr.min(), q_arr.min())
    bins_end = max(p_arr.max(), q_arr.max())
    if bins_start >= bins_end:
        bins_end = bins_start + 1.0
    edges = np.linspace(bins_start, bins_end, bin_count + 1)
    p_indices = np.digitize(p_arr, edges)
    q_indices = np.digitize(q_arr, edges)
    p_counts = np.array([np.sum(p_indices == i) for i in range(1, bin_count + 1)])
    q_counts = np.array([np.sum(q_indices == i) for i in range(1, bin_count + 1)])
    p_total = p_counts.sum()
    q_total = q_counts.sum()
    p_probs = p_counts / p_total if p_total > 0 else np.zeros_like(p_counts, dtype=float)
    q_probs = q_counts / q_total if q_total > 0 else np.zeros_like(q_counts, dtype=float)
    q_safe = np.where(p_probs > 0.0, np.maximum(q_probs, eps), q_probs)
    mask = p_probs > 0.0
    kl = np.sum(p_probs[mask] * np.log(p_probs[mask] / q_safe[mask]))
    return float(kl)


def klom_from_margins(oracle_margins, unlearned_margins, clip_min=-100.0, clip_max=100.0):
    assert oracle_margins.shape == unlearned_margins.shape
    n_samples = oracle_margins.shape[1]
    results = []
    for idx in range(n_samples):
        oracle_arr = _to_np_cpu(oracle_margins[:, idx])
        unlearned_arr = _to_np_cpu(unlearned_margins[:, idx])
        results.append(
            binned_kl_divergence(p_samples=unlearned_arr, q_samples=oracle_arr, min_val=clip_min, max_val=clip_max)
        )
    return np.asarray(results)

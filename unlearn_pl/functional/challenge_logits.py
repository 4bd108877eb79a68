"""The logit-scaled confidence the NeurIPS 2023 Machine Unlearning Challenge scores models by.

``compute_logit_scaled_confidence`` of the organisers' ``metric.py``
(github.com/google-deepmind/unlearning_evaluation), adapted there from LiRA's ``score.py``
(Carlini et al. 2022); see :mod:`unlearn_pl.functional.challenge_epsilons` for how the challenge
turns these confidences into a forgetting score.
"""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import logsumexp


def challenge_confidence(
    logits: ArrayLike | torch.Tensor,
    targets: ArrayLike | torch.Tensor,
    floor: float = 1e-45,
    precision: Literal["logits", "float64"] = "logits",
) -> np.ndarray:
    """The challenge's logit-scaled confidence ``log(p_y + floor) − log(1 − p_y + floor)``.

    ``p_y`` is the softmax probability of the true class and ``1 − p_y`` the sum of the others,
    as in ``compute_logit_scaled_confidence`` of the challenge's ``metric.py`` (adapted there from
    LiRA's ``score.py``). The published ``floor`` of 1e-45 caps the confidence near ±103.6.

    ``precision="logits"`` (published) shifts each row by its largest logit and exponentiates in
    the logits' own float type before normalizing in float64: for float32 logits a probability
    below ~1e-38 (a class ~87 behind the largest) loses digits and below ~1e-45 becomes 0, so
    confidences saturate at ±103.6 from gaps of ~87 on (elsewhere float32 rounding moves them
    by up to ~2e-6). ``"float64"`` works with log-probabilities in float64 (``logaddexp`` with
    ``log(floor)``), which never underflow; with ``floor=0`` it is the exact confidence, as
    :func:`unlearn_pl.functional.lira.logit_confidence` computes it.

    Args:
        logits: ``(..., C)`` unnormalized scores, ``C >= 2`` (e.g. ``(models, examples, C)``).
        targets: ``(...)`` true class indices, the leading shape of ``logits``.

    Returns:
        ``(...)`` float64 confidences.

    >>> round(float(challenge_confidence([[2.0, 0.0, 0.0]], [0])[0]), 6)  # log(e² / 2) = 2 − log 2
    1.306853
    """
    z = logits.detach().cpu().numpy() if isinstance(logits, torch.Tensor) else np.asarray(logits)
    y = np.asarray(targets.detach().cpu() if isinstance(targets, torch.Tensor) else targets)
    if not (np.issubdtype(z.dtype, np.floating) or np.issubdtype(z.dtype, np.integer)):
        raise ValueError(f"logits must be a numeric array; got dtype {z.dtype}")
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"logits must have shape (..., C) with C >= 2 classes; got {z.shape}")
    if y.shape != z.shape[:-1]:
        raise ValueError(f"targets must have the leading shape of logits, {z.shape[:-1]}; got {y.shape}")
    if y.size and (not np.issubdtype(y.dtype, np.integer) or y.min() < 0 or y.max() >= z.shape[-1]):
        raise ValueError(f"targets must be integer class indices in [0, {z.shape[-1] - 1}]")
    if not np.isfinite(z).all():
        raise ValueError(f"logits contain {int((~np.isfinite(z)).sum())} NaN or infinite values")
    if not floor >= 0:
        raise ValueError(f"floor must be >= 0; got {floor}")
    if precision not in ("logits", "float64"):
        raise ValueError(f"precision must be 'logits' or 'float64'; got {precision!r}")
    if not np.issubdtype(z.dtype, np.floating):
        z = z.astype(np.float64)
    is_true = np.arange(z.shape[-1]) == y[..., None]
    if precision == "float64":
        z = z.astype(np.float64)
        log_total = logsumexp(z, axis=-1)
        log_p_true = np.where(is_true, z, 0.0).sum(-1) - log_total
        log_p_rest = logsumexp(np.where(is_true, -np.inf, z), axis=-1) - log_total
        if floor == 0:
            return log_p_true - log_p_rest
        log_floor = math.log(floor)
        return np.logaddexp(log_p_true, log_floor) - np.logaddexp(log_p_rest, log_floor)
    probs = np.exp(z - z.max(-1, keepdims=True)).astype(np.float64)
    probs /= probs.sum(-1, keepdims=True)
    p_true = np.where(is_true, probs, 0.0).sum(-1)
    p_rest = np.where(is_true, 0.0, probs).sum(-1)
    with np.errstate(divide="ignore"):
        conf = np.log(p_true + floor) - np.log(p_rest + floor)
    if not np.isfinite(conf).all():
        raise ValueError(
            f"{int((~np.isfinite(conf)).sum())} confidence(s) are infinite: a probability rounded to 0 with floor=0; "
            "use floor > 0 or precision='float64'"
        )
    return conf


__all__ = ["challenge_confidence"]

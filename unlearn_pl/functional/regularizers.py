"""Regularizers and their schedules (L1-sparse unlearning, Jia et al., 2023)."""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor


def l1_norm(params: Iterable[Tensor]) -> Tensor:
    """``‖θ‖₁``: the sum of absolute values of all scalars of ``params`` (differentiable)."""
    params = list(params)
    if not params:
        raise ValueError("l1_norm needs at least one parameter tensor")
    return torch.stack([p.abs().sum() for p in params]).sum()


def linear_decay(value: float, step: int | float, total: int | float) -> float:
    """``value · (1 − step/total)``, clamped at 0: the weight decays linearly to 0 over ``total``.

    Example:
        >>> linear_decay(1.0, 2, 10)
        0.8
    """
    if total <= 0:
        raise ValueError(f"total must be > 0; got {total}")
    if step < 0:
        raise ValueError(f"step must be >= 0; got {step}")
    return value * max(0.0, 1.0 - step / total)

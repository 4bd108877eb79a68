"""Optimizer recipes shared by unlearners."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn


def sgd_cosine(
    params: Iterable[nn.Parameter],
    *,
    lr: float,
    total_steps: int | float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    final_lr_fraction: float = 0.01,
) -> OptimizerLRSchedulerConfig:
    """SGD with a per-step cosine decay from ``lr`` to ``final_lr_fraction · lr``."""
    if lr <= 0:
        raise ValueError(f"lr must be > 0; got {lr}")
    if not 0.0 <= final_lr_fraction <= 1.0:
        raise ValueError(f"final_lr_fraction must be in [0, 1]; got {final_lr_fraction}")
    optimizer = torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps = max(1, int(total_steps)) if math.isfinite(total_steps) else 1
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=final_lr_fraction * lr)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

"""The optimizers the reference training and the unlearners build (torch's own, configured here once)."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn

from unlearn_pl.utils.arguments import (
    LearningRate,
    LRFraction,
    Momentum,
    OptimizerName,
    WeightDecay,
    check_arguments,
)


def make_optimizer(
    params: Iterable[nn.Parameter],
    name: OptimizerName,
    *,
    lr: LearningRate,
    momentum: Momentum = 0.0,
    weight_decay: WeightDecay = 0.0,
) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` (with ``momentum``) or ``torch.optim.Adam`` (``momentum`` unused), both
    with L2 ``weight_decay`` added to the gradient, as the SCRUB authors build theirs."""
    check_arguments(make_optimizer, locals())
    # Plain floats: the optimizer's state (param_groups) is saved in checkpoints, which are loaded
    # with torch.load(weights_only=True); jsonargparse's restricted types are not allowed there.
    lr, momentum, weight_decay = float(lr), float(momentum), float(weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def sgd_cosine(
    params: Iterable[nn.Parameter],
    *,
    lr: LearningRate,
    total_steps: int | float,
    momentum: Momentum = 0.9,
    weight_decay: WeightDecay = 0.0,
    final_lr_fraction: LRFraction = 0.01,
) -> OptimizerLRSchedulerConfig:
    """SGD with a per-step cosine decay from ``lr`` to ``final_lr_fraction · lr``.

    ``total_steps`` is usually ``trainer.estimated_stepping_batches``; when it is infinite (a
    training loader without a length) the schedule spans one step.
    """
    check_arguments(sgd_cosine, locals())
    optimizer = make_optimizer(params, "sgd", lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps = max(1, int(total_steps)) if math.isfinite(total_steps) else 1
    eta_min = float(final_lr_fraction) * float(lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=eta_min)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

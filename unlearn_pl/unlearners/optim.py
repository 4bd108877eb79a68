"""Optimizer recipes shared by unlearners."""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import TYPE_CHECKING

import torch
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn

from unlearn_pl.unlearners.base import Unlearner

if TYPE_CHECKING:
    from unlearn_pl.module import UnlearningModule


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


def check_positive(name: str, value: float) -> None:
    """Raise unless ``value`` is > 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"{name} must be a number > 0; got {value!r}")


def check_non_negative(name: str, value: float) -> None:
    """Raise unless ``value`` is >= 0."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0; got {value!r}")


def check_fraction(name: str, value: float) -> None:
    """Raise unless ``value`` is in [0, 1]."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; got {value!r}")


class SGDUnlearner(Unlearner):
    """An unlearner trained with SGD (momentum, weight decay) and a per-step cosine decay.

    Subclasses call :meth:`init_sgd` from their ``__init__`` (listing the arguments explicitly,
    so they show in ``--print_config``) and implement ``training_step``. ``final_lr_fraction=1``
    keeps the learning rate constant, as the SalUn / Unlearn-Sparse baselines do.
    """

    def init_sgd(self, lr: float, momentum: float, weight_decay: float, final_lr_fraction: float) -> None:
        """Validate and store the optimizer's hyperparameters."""
        check_positive("lr", lr)
        check_fraction("momentum", momentum)
        check_non_negative("weight_decay", weight_decay)
        check_fraction("final_lr_fraction", final_lr_fraction)
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.final_lr_fraction = final_lr_fraction

    def configure_optimizers(self, module: UnlearningModule) -> OptimizerLRSchedulerConfig:
        return sgd_cosine(
            module.network.parameters(),
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
            final_lr_fraction=self.final_lr_fraction,
            total_steps=module.trainer.estimated_stepping_batches,
        )

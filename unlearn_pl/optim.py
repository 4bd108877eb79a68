"""Optimizer recipes and argument checks shared by the training recipe and the unlearners.

A neutral, low layer: it imports torch and Lightning only, so ``classifier.py`` (the reference
models' training) and ``unlearners/`` can both use it without one loading the other.

The type aliases (``LearningRate``, ``Momentum``, …) are jsonargparse restricted types: in a
signature they make the command-line parser reject a bad value in one line and show the range
in ``--help``. At runtime they are plain ``int``/``float`` subclasses that check nothing when a
class is built from Python, so constructors also call the ``check_*`` functions below.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from typing import Literal

import torch
from jsonargparse.typing import (
    ClosedUnitInterval,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    restricted_number_type,
)
from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig
from torch import nn

#: A fraction in (0, 1] (a budget, a top-h share). jsonargparse registers one type per restriction.
PositiveFraction = restricted_number_type("PositiveFraction", float, [(">", 0.0), ("<=", 1.0)], join="and")
#: SGD/Adam learning rate, > 0.
LearningRate = PositiveFloat
#: SGD momentum, in [0, 1].
Momentum = ClosedUnitInterval
#: L2 weight decay, >= 0.
WeightDecay = NonNegativeFloat
#: End of a cosine schedule as a fraction of the peak learning rate, in [0, 1].
LRFraction = ClosedUnitInterval
#: An optimizer an unlearner may be asked to use.
OptimizerName = Literal["sgd", "adam"]
OPTIMIZERS: tuple[str, ...] = ("sgd", "adam")

__all__ = [
    "ClosedUnitInterval", "NonNegativeFloat", "NonNegativeInt", "PositiveFloat", "PositiveInt", "PositiveFraction",
    "LearningRate", "Momentum", "WeightDecay", "LRFraction", "OptimizerName", "OPTIMIZERS",
    "check_positive", "check_non_negative", "check_fraction", "check_int", "check_sgd", "check_choice",
    "make_optimizer", "sgd_cosine",
]


def _is_number(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float))


def check_positive(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a number > 0."""
    if not _is_number(value) or not value > 0:
        raise ValueError(f"{name} must be a number > 0; got {value!r}")


def check_non_negative(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a number >= 0."""
    if not _is_number(value) or not value >= 0:
        raise ValueError(f"{name} must be a number >= 0; got {value!r}")


def check_fraction(name: str, value: float) -> None:
    """Raise ``ValueError`` unless ``value`` is a number in [0, 1]."""
    if not _is_number(value) or not 0.0 <= value <= 1.0:
        raise ValueError(f"{name} must be in [0, 1]; got {value!r}")


def check_int(name: str, value: int, minimum: int = 0) -> None:
    """Raise ``ValueError`` unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ValueError(f"{name} must be an int >= {minimum}; got {value!r}")


def check_choice(name: str, value: str, allowed: Sequence[str]) -> None:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed``."""
    if value not in allowed:
        raise ValueError(f"{name} must be one of {tuple(allowed)}; got {value!r}")


def check_sgd(lr: float, momentum: float, weight_decay: float, final_lr_fraction: float) -> None:
    """Validate the SGD hyperparameters shared by the recipe and the unlearners."""
    check_positive("lr", lr)
    check_fraction("momentum", momentum)
    check_non_negative("weight_decay", weight_decay)
    check_fraction("final_lr_fraction", final_lr_fraction)


def make_optimizer(
    params: Iterable[nn.Parameter], name: OptimizerName, *, lr: float, momentum: float = 0.0, weight_decay: float = 0.0
) -> torch.optim.Optimizer:
    """``torch.optim.SGD`` (with ``momentum``) or ``torch.optim.Adam`` (``momentum`` unused), both
    with L2 ``weight_decay`` added to the gradient, as the SCRUB authors build theirs."""
    check_choice("optimizer", name, OPTIMIZERS)
    # Plain floats: the optimizer's state (param_groups) is saved in checkpoints, which are loaded
    # with torch.load(weights_only=True); jsonargparse's restricted types are not allowed there.
    lr, momentum, weight_decay = float(lr), float(momentum), float(weight_decay)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr, weight_decay=weight_decay)
    return torch.optim.SGD(params, lr=lr, momentum=momentum, weight_decay=weight_decay)


def sgd_cosine(
    params: Iterable[nn.Parameter],
    *,
    lr: float,
    total_steps: int | float,
    momentum: float = 0.9,
    weight_decay: float = 0.0,
    final_lr_fraction: float = 0.01,
) -> OptimizerLRSchedulerConfig:
    """SGD with a per-step cosine decay from ``lr`` to ``final_lr_fraction · lr``.

    ``total_steps`` is usually ``trainer.estimated_stepping_batches``; when it is infinite (a
    training loader without a length) the schedule spans one step.
    """
    check_sgd(lr, momentum, weight_decay, final_lr_fraction)
    optimizer = make_optimizer(params, "sgd", lr=lr, momentum=momentum, weight_decay=weight_decay)
    steps = max(1, int(total_steps)) if math.isfinite(total_steps) else 1
    eta_min = float(final_lr_fraction) * float(lr)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=steps, eta_min=eta_min)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

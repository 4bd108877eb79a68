"""Gradient-ascent unlearning: NegGrad (ascent on the forget set) and NegGrad+ (with retain descent)."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from unlearn_pl.protocols import UnlearningModel
from unlearn_pl.unlearners.base import Batch
from unlearn_pl.unlearners.sgd import SGDUnlearner
from unlearn_pl.utils.arguments import (
    ClosedUnitInterval,
    LearningRate,
    WeightDecay,
    check_arguments,
)


class NegGrad(SGDUnlearner):
    """Gradient ascent on the forget set: minimizes ``−CE(F)``.

    Unbounded: it eventually destroys the model, so use a small ``lr`` and 1–5 epochs.

    Args:
        lr: SGD learning rate (keep it small).
        weight_decay: SGD weight decay.
        **kwargs: the other SGD fields of :class:`~unlearn_pl.unlearners.SGDUnlearner`.
    """

    requires = ("forget",)

    def __init__(self, lr: LearningRate = 1e-3, weight_decay: WeightDecay = 0.0, **kwargs: Any) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, **kwargs)

    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        _, x, y = batch["forget"]
        return -F.cross_entropy(module.network(x), y)


class NegGradPlus(SGDUnlearner):
    """NegGrad+ (Kurmanji et al., 2023): ``α·CE(R) − (1−α)·CE(F)`` on paired batches.

    The retain term anchors the model while the forget term ascends. The forget loader is
    cycled so every retain batch has a partner.

    Args:
        alpha: weight of the retain loss in [0, 1] (0.99 by default; 0 is NegGrad).
        **kwargs: the SGD fields of :class:`~unlearn_pl.unlearners.SGDUnlearner`.
    """

    requires = ("retain", "forget")
    combine_mode = "max_size_cycle"

    def __init__(self, alpha: ClosedUnitInterval = 0.99, **kwargs: Any) -> None:
        check_arguments(NegGradPlus.__init__, locals())
        super().__init__(**kwargs)
        self.alpha = alpha

    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        _, xr, yr = batch["retain"]
        _, xf, yf = batch["forget"]
        retain = F.cross_entropy(module.network(xr), yr)
        forget = F.cross_entropy(module.network(xf), yf)
        module.log("train/retain_loss", retain.detach())
        module.log("train/forget_loss", forget.detach())
        return self.alpha * retain - (1.0 - self.alpha) * forget

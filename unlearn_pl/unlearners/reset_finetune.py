"""DEL's unlearning algorithm: reset the localized scalars, then fine-tune them on the retain set."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch.nn.functional as F
from torch import Tensor

from unlearn_pl.functional.init import reset_selected_
from unlearn_pl.protocols import UnlearningModel
from unlearn_pl.unlearners.base import Batch
from unlearn_pl.unlearners.batchnorm import BatchNormRecalibration
from unlearn_pl.unlearners.sgd import SGDUnlearner
from unlearn_pl.utils.arguments import (
    LearningRate,
    LRFraction,
    WeightDecay,
)


class ResetFinetune(BatchNormRecalibration, SGDUnlearner):  # type: ignore[misc]  # the mixin's Callback hooks are run by UnlearningModule only
    """Reset + Finetune (DEL): re-initialize the masked scalars, then train on the retain set only.

    The reset draws a seeded fresh initialization of each module type; fine-tuning is SGD with
    momentum and a per-step cosine decay to ``final_lr_fraction · lr``. With the default
    ``Full`` localizer this is retraining from a random init on the retain set.

    BatchNorm running statistics: the reset keeps them, training updates them as usual, and with
    ``recalibrate_bn=True`` they are recomputed on the retain set (one forward pass over it)
    before every validation during ``fit``, before every checkpoint and at the end of training
    (see :class:`~unlearn_pl.unlearners.batchnorm.BatchNormRecalibration`). Without it, a
    short fine-tune can leave the reset channels' statistics far off, and evaluation (which
    uses them) far below what the weights can do (see :mod:`unlearn_pl.unlearners.batchnorm`).
    The DEL authors' code does not recompute them; it fine-tunes for 30 epochs.

    Args:
        lr: peak learning rate (DEL on CIFAR-10: 0.015).
        weight_decay: SGD weight decay (only selected scalars are affected).
        final_lr_fraction: the cosine schedule ends at this fraction of ``lr``.
        seed: seed of the fresh initialization.
        recalibrate_bn: recompute BatchNorm running statistics on the retain set (see above).
        **kwargs: the other SGD fields of :class:`~unlearn_pl.unlearners.SGDUnlearner` (``momentum``).
    """

    requires = ("retain",)

    def __init__(
        self,
        lr: LearningRate = 0.015,
        weight_decay: WeightDecay = 0.0,
        final_lr_fraction: LRFraction = 0.01,
        seed: int = 0,
        recalibrate_bn: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(lr=lr, weight_decay=weight_decay, final_lr_fraction=final_lr_fraction, **kwargs)
        self.seed = seed
        self.recalibrate_bn = recalibrate_bn
        self.reset_done = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:  # type: ignore[override]  # run by UnlearningModule only
        super().on_fit_start(trainer, pl_module)
        # A resumed run restores ``reset_done`` from its checkpoint: never reset twice.
        if not self.reset_done:
            reset_selected_(pl_module.network, pl_module.masks, self.seed)
            self.reset_done = True

    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        _, x, y = batch["retain"]
        return F.cross_entropy(module.network(x), y)

    def state_dict(self) -> dict[str, Any]:
        return {"reset_done": self.reset_done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.reset_done = bool(state_dict.get("reset_done", False))

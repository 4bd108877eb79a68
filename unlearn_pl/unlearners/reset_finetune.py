"""DEL's unlearning algorithm: reset the localized scalars, then fine-tune them on the retain set."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch.nn.functional as F
from torch import Tensor

from unlearn_pl.functional.init import reset_selected_
from unlearn_pl.unlearners.base import Batch
from unlearn_pl.unlearners.optim import SGDUnlearner

if TYPE_CHECKING:
    from unlearn_pl.module import UnlearningModule


class ResetFinetune(SGDUnlearner):
    """Reset + Finetune (DEL): re-initialize the masked scalars, then train on the retain set only.

    The reset draws a seeded fresh initialization of each module type (BatchNorm running
    statistics are kept); fine-tuning is SGD with momentum and a per-step cosine decay to
    ``final_lr_fraction · lr``. With the default ``Full`` localizer this is retraining from a
    random init on the retain set (with the original BN statistics).

    Args:
        lr: peak learning rate (DEL on CIFAR-10: 0.015).
        momentum: SGD momentum.
        weight_decay: SGD weight decay (only selected scalars are affected).
        final_lr_fraction: the cosine schedule ends at this fraction of ``lr``.
        seed: seed of the fresh initialization.
    """

    requires = ("retain",)

    def __init__(
        self,
        lr: float = 0.015,
        momentum: float = 0.9,
        weight_decay: float = 0.0,
        final_lr_fraction: float = 0.01,
        seed: int = 0,
    ) -> None:
        self.init_sgd(lr, momentum, weight_decay, final_lr_fraction)
        self.seed = seed
        self.reset_done = False

    def on_fit_start(self, trainer: pl.Trainer, pl_module: UnlearningModule) -> None:
        # A resumed run restores ``reset_done`` from its checkpoint: never reset twice.
        if not self.reset_done:
            reset_selected_(pl_module.network, pl_module.masks, self.seed)
            self.reset_done = True

    def training_step(self, module: UnlearningModule, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        _, x, y = batch["retain"]
        return F.cross_entropy(module.network(x), y)

    def state_dict(self) -> dict[str, Any]:
        return {"reset_done": self.reset_done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.reset_done = bool(state_dict.get("reset_done", False))

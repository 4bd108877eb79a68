"""SCRUB (Kurmanji et al., NeurIPS 2023): a student that disobeys its teacher on the forget set only."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from unlearn_pl.functional.divergence import distillation_kl
from unlearn_pl.unlearners.base import Batch
from unlearn_pl.unlearners.optim import SGDUnlearner, check_non_negative, check_positive

if TYPE_CHECKING:
    from unlearn_pl.module import UnlearningModule


class SCRUB(SGDUnlearner):
    """SCRUB: teacher = the original model (frozen), student = the network (starts as the original).

    - *max* steps (epochs ``0 … msteps−1``): on forget batches, maximize
      ``KL(teacher ‖ student)`` at temperature ``T`` — push the student away on F.
    - *min* steps (every epoch): on retain batches, minimize ``γ·CE + α·KL(teacher ‖ student)``
      — stay close to the teacher (and correct) on R.

    The loader pairs retain and forget batches (forget cycled). In a max epoch, each of the
    first ``n_F`` steps (``n_F`` = forget batches per epoch, i.e. one pass over F, the number
    of max steps the authors take per epoch) does a max step on its forget batch, then every
    step does a min step on its retain batch. So max and min steps interleave instead of the
    authors' "all max, then all min" epoch, with the same counts per epoch. Both use one SGD
    optimizer (manual optimization); the localizer's mask hooks still run (``manual_backward``
    fires ``on_after_backward``; values are restored at batch end).

    Args:
        msteps: number of initial epochs that take max steps.
        alpha: weight α of the KL term in the min steps.
        gamma: weight γ of the cross-entropy in the min steps.
        temperature: distillation temperature T.
        lr: SGD learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
    """

    requires = ("retain", "forget")
    combine_mode = "max_size_cycle"
    automatic_optimization = False

    def __init__(
        self,
        msteps: int = 2,
        alpha: float = 0.001,
        gamma: float = 0.99,
        temperature: float = 4.0,
        lr: float = 5e-4,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
    ) -> None:
        if isinstance(msteps, bool) or not isinstance(msteps, int) or msteps < 0:
            raise ValueError(f"msteps must be an int >= 0 (epochs with max steps); got {msteps!r}")
        check_non_negative("alpha", alpha)
        check_non_negative("gamma", gamma)
        check_positive("temperature", temperature)
        # A constant learning rate, as in the SCRUB authors' code (manual optimization: the
        # constant schedule is never stepped).
        self.init_sgd(lr, momentum, weight_decay, final_lr_fraction=1.0)
        self.msteps = msteps
        self.alpha = alpha
        self.gamma = gamma
        self.temperature = temperature
        self.forget_batches = 0

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: UnlearningModule) -> None:
        loaders = trainer.train_dataloader
        forget = loaders.get("forget") if isinstance(loaders, dict) else None
        self.forget_batches = len(forget) if forget is not None else 0

    def is_max_step(self, module: UnlearningModule, batch_idx: int) -> bool:
        """Whether this step takes a max step on its forget batch before the min step."""
        return module.current_epoch < self.msteps and batch_idx < self.forget_batches

    def max_loss(self, module: UnlearningModule, x: Tensor) -> Tensor:
        """``KL(teacher ‖ student)`` on ``x`` (to be maximized)."""
        with torch.no_grad():
            teacher = module.reference("original")(x)
        return distillation_kl(module.network(x), teacher, self.temperature)

    def min_loss(self, module: UnlearningModule, x: Tensor, y: Tensor) -> Tensor:
        """``γ·CE + α·KL(teacher ‖ student)`` on ``(x, y)`` (to be minimized)."""
        with torch.no_grad():
            teacher = module.reference("original")(x)
        logits = module.network(x)
        return self.gamma * F.cross_entropy(logits, y) + self.alpha * distillation_kl(logits, teacher, self.temperature)

    def _step(self, module: UnlearningModule, loss: Tensor) -> None:
        optimizer = module.optimizers()
        optimizer.zero_grad()
        module.manual_backward(loss)
        optimizer.step()

    def training_step(self, module: UnlearningModule, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        if self.is_max_step(module, batch_idx):
            _, xf, _ = batch["forget"]
            kl = self.max_loss(module, xf)
            self._step(module, -kl)
            module.log("train/forget_kl", kl.detach())
        _, xr, yr = batch["retain"]
        loss = self.min_loss(module, xr, yr)
        self._step(module, loss)
        return loss.detach()

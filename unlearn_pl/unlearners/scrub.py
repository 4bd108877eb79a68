"""SCRUB (Kurmanji et al., NeurIPS 2023): a student that disobeys its teacher on the forget set only."""

from __future__ import annotations

from typing import Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from unlearn_pl.functional.divergence import distillation_kl
from unlearn_pl.protocols import CombineMode, UnlearningModel
from unlearn_pl.unlearners.base import Batch, Unlearner
from unlearn_pl.utils.arguments import (
    ClosedUnitInterval,
    LearningRate,
    Momentum,
    NonNegativeFloat,
    NonNegativeInt,
    OptimizerName,
    PositiveFloat,
    PositiveInt,
    WeightDecay,
    check_arguments,
)
from unlearn_pl.utils.optimizers import make_optimizer

ScrubOrder = Literal["sequential", "interleaved"]
ORDERS: tuple[str, ...] = ("sequential", "interleaved")


def decayed_lr(lr: float, epoch: int, decay_epochs: tuple[int, ...], rate: float) -> float:
    """The SCRUB authors' step decay at 0-based ``epoch``: ``lr · rate^(number of decay epochs ≤ epoch)``.

    Their ``adjust_learning_rate`` (SCRUB/thirdparty/repdistiller/helper/util.py:22-30) counts
    ``epoch > lr_decay_epochs`` for the 1-based epoch, i.e. ``≤`` for the 0-based one.
    """
    return lr * rate ** sum(1 for d in decay_epochs if epoch >= d)


class SCRUB(Unlearner):
    """SCRUB: teacher = the original model (frozen), student = the network (starts as the original).

    - *max* steps (epochs ``0 … msteps−1``): on forget batches, maximize
      ``KL(teacher ‖ student)`` at temperature ``T`` — push the student away on F.
    - *min* steps (every epoch): on retain batches, minimize ``γ·CE + α·KL(teacher ‖ student)``
      — stay close to the teacher (and correct) on R.

    Each epoch takes one max step per forget batch (in max epochs) and one min step per retain
    batch, the authors' counts (github meghdadk/SCRUB, ``large_scale_unlearning.ipynb``: the
    epoch loop calls ``train_distill`` on the forget loader with ``"maximize"``, then on the
    retain loader with ``"minimize"``; ``thirdparty/repdistiller/helper/loops.py:137-290``).

    - ``order="sequential"`` (default, the authors'): all max steps of the epoch, then all min
      steps. The training loader serves every forget batch, then every retain batch
      (:class:`~unlearn_pl.data.sequential.SequentialLoader`); in epochs without max steps the
      forget batches are served and skipped, so every epoch has the same length.
    - ``order="interleaved"``: max step on forget batch ``i``, then min step on retain batch
      ``i``. The shorter split is cycled by the loader, but its extra batches are skipped, so
      the counts stay the authors'.

    The learning rate follows the authors' step decay: ×``lr_decay_rate`` at the start of each
    epoch listed in ``lr_decay_epochs`` — the same numbers as the authors' list, as their
    1-based ``epoch > d`` is the 0-based ``epoch >= d``. The optimizer fields are SCRUB's own
    (an optimizer choice and a step decay, not :class:`~unlearn_pl.unlearners.SGDUnlearner`'s
    cosine). The student is put in train mode before every step, as the authors'
    ``train_distill`` does. At the first max step the student equals the teacher, where the
    KL's gradient is zero: it moves once BatchNorm's batch statistics, weight decay or min
    steps make the two differ, in the authors' code as here. One
    optimizer takes both kinds of steps (manual optimization); the localizer's mask hooks run
    on every step (``manual_backward`` fires ``on_after_backward``; values are restored after
    every optimizer step).

    Args:
        msteps: number of initial epochs that take max steps.
        alpha: weight α of the KL term in the min steps.
        gamma: weight γ of the cross-entropy in the min steps.
        temperature: distillation temperature T.
        order: ``sequential`` (the authors') or ``interleaved`` (see above).
        optimizer: ``sgd`` (the authors' large-scale setting) or ``adam`` (their small-scale one).
        lr: learning rate (the authors' ``sgda_learning_rate``).
        momentum: SGD momentum (unused by Adam).
        weight_decay: L2 weight decay.
        lr_decay_epochs: epochs (0-based) at whose start the learning rate is multiplied by
            ``lr_decay_rate`` (the authors' default ``[3, 5, 9]``).
        lr_decay_rate: the decay factor, in [0, 1].
        forget_batch_size: batch size of the forget loader (``None``: the data module's);
            the authors use 512 forget / 256 retain at large scale, 64 / 32 at small scale.
    """

    requires = ("forget", "retain")  # order="interleaved" serves ("retain", "forget") paired
    combine_mode: CombineMode = "sequential"
    automatic_optimization = False

    def __init__(
        self,
        msteps: NonNegativeInt = 2,
        alpha: NonNegativeFloat = 0.001,
        gamma: NonNegativeFloat = 0.99,
        temperature: PositiveFloat = 4.0,
        order: ScrubOrder = "sequential",
        optimizer: OptimizerName = "sgd",
        lr: LearningRate = 5e-4,
        momentum: Momentum = 0.9,
        weight_decay: WeightDecay = 5e-4,
        lr_decay_epochs: tuple[NonNegativeInt, ...] = (3, 5, 9),
        lr_decay_rate: ClosedUnitInterval = 0.1,
        forget_batch_size: PositiveInt | None = None,
    ) -> None:
        check_arguments(SCRUB.__init__, locals())
        self.msteps = msteps
        self.alpha = alpha
        self.gamma = gamma
        self.temperature = temperature
        self.order = order
        self.optimizer = optimizer
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.lr_decay_epochs = tuple(lr_decay_epochs)
        self.lr_decay_rate = lr_decay_rate
        self.forget_batch_size = forget_batch_size
        # The loader the data module serves: the authors' order, or paired batches.
        self.requires = ("forget", "retain") if order == "sequential" else ("retain", "forget")
        self.combine_mode = "sequential" if order == "sequential" else "max_size_cycle"
        self.batch_sizes = {"forget": forget_batch_size} if forget_batch_size is not None else {}
        self.split_batches: dict[str, int] = {}

    # ------------------------------------------------------------ schedule
    def lr_at(self, epoch: int) -> float:
        """The learning rate of 0-based ``epoch``."""
        return decayed_lr(self.lr, epoch, self.lr_decay_epochs, self.lr_decay_rate)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:  # type: ignore[override]  # run by UnlearningModule only
        lr = float(self.lr_at(trainer.current_epoch))
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lr
        loaders = trainer.train_dataloader
        loaders = loaders if isinstance(loaders, dict) else getattr(loaders, "loaders", {})
        self.split_batches = {name: len(loader) for name, loader in loaders.items()}

    def is_max_epoch(self, module: UnlearningModel) -> bool:
        """Whether this epoch takes max steps."""
        return module.current_epoch < self.msteps

    # ------------------------------------------------------------ losses
    def max_loss(self, module: UnlearningModel, x: Tensor) -> Tensor:
        """``KL(teacher ‖ student)`` on ``x`` (to be maximized)."""
        with torch.no_grad():
            teacher = module.reference("original")(x)
        return distillation_kl(module.network(x), teacher, self.temperature)

    def min_loss(self, module: UnlearningModel, x: Tensor, y: Tensor) -> Tensor:
        """``γ·CE + α·KL(teacher ‖ student)`` on ``(x, y)`` (to be minimized)."""
        with torch.no_grad():
            teacher = module.reference("original")(x)
        logits = module.network(x)
        return self.gamma * F.cross_entropy(logits, y) + self.alpha * distillation_kl(logits, teacher, self.temperature)

    def _step(self, module: UnlearningModel, loss: Tensor) -> None:
        optimizer = module.optimizers()
        optimizer.zero_grad()
        module.manual_backward(loss)
        optimizer.step()

    def max_step(self, module: UnlearningModel, batch: Batch) -> Tensor:
        """One ascent step on ``KL(teacher ‖ student)`` over a forget batch; returns the KL."""
        _, x, _ = batch
        kl = self.max_loss(module, x)
        self._step(module, -kl)
        module.log("train/forget_kl", kl.detach())
        return kl.detach()

    def min_step(self, module: UnlearningModel, batch: Batch) -> Tensor:
        """One descent step on the min loss over a retain batch; returns the loss."""
        _, x, y = batch
        loss = self.min_loss(module, x, y)
        self._step(module, loss)
        return loss.detach()

    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> Tensor | None:
        module.network.train()  # the authors set train mode on every pass (loops.py:139-141)
        loss = None
        if "forget" in batch and self.is_max_epoch(module):
            # Interleaved: the forget loader may be cycled past its length; skip those batches.
            if self.order == "sequential" or batch_idx < self.split_batches.get("forget", batch_idx + 1):
                self.max_step(module, batch["forget"])
        if "retain" in batch:
            if self.order == "sequential" or batch_idx < self.split_batches.get("retain", batch_idx + 1):
                loss = self.min_step(module, batch["retain"])
        return loss

    def configure_optimizers(self, module: UnlearningModel) -> torch.optim.Optimizer:
        return make_optimizer(
            module.network.parameters(),
            self.optimizer,
            lr=self.lr,
            momentum=self.momentum,
            weight_decay=self.weight_decay,
        )

"""Recomputing BatchNorm running statistics on the retain set after (part of) an unlearning run.

Why: BatchNorm's running statistics are an exponential moving average (momentum 0.1) of batch
statistics. After DEL's reset, the re-initialized channels produce activations whose variance is
orders of magnitude off the trained network's; a short fine-tune (a few dozen steps) does not
forget those early batches, so running variances stay far too large and the evaluated accuracy
can fall close to chance. Training is unaffected (it uses batch statistics); evaluation uses the
running ones.
"""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from lightning.pytorch.trainer.states import TrainerFn
from torch import nn
from torch.optim.swa_utils import update_bn

from unlearn_pl.protocols import SplitName, UnlearningData, UnlearningModel, attached_data


def batchnorm_buffers(model: nn.Module) -> dict[str, torch.Tensor]:
    """The running statistics (mean, variance, batch count) of every BatchNorm layer of ``model``."""
    return {
        f"{name}.{buffer}": getattr(module, buffer)
        for name, module in model.named_modules()
        if isinstance(module, nn.modules.batchnorm._BatchNorm) and module.track_running_stats
        for buffer in ("running_mean", "running_var", "num_batches_tracked")
    }


def recalibrate_batchnorm(trainer: pl.Trainer, module: UnlearningModel, split: SplitName = "retain") -> bool:
    """Recompute ``module.network``'s BatchNorm running statistics with one pass over ``split``.

    Uses :func:`torch.optim.swa_utils.update_bn` (a cumulative average over the whole split, in
    train mode, without gradients). Under multi-process strategies, global rank 0 makes the pass
    over the whole split and broadcasts the statistics, so every process holds the same ones.

    Returns:
        ``False`` if the network has no BatchNorm layer with running statistics (nothing done).
    """
    buffers = batchnorm_buffers(module.network)
    if not buffers:
        return False
    datamodule = attached_data(trainer)
    if not isinstance(datamodule, UnlearningData):
        raise ValueError(
            "recomputing BatchNorm statistics needs a data module with dataloader(split), e.g. "
            f"UnlearningDataModule; got {type(datamodule).__name__}"
        )
    if trainer.is_global_zero:
        loader = datamodule.dataloader(split)
        # BatchNorm in train mode cannot normalize a batch of one example (one value per channel),
        # so a last batch of one is left out; its example barely moves a split-wide average.
        update_bn((x for _, x, _ in loader if len(x) > 1), module.network, device=module.device)
    if trainer.world_size > 1:
        stats = trainer.strategy.broadcast({k: v.detach().cpu() for k, v in buffers.items()}, src=0)
        with torch.no_grad():
            for key, value in stats.items():
                buffers[key].copy_(value)
    return True


class BatchNormRecalibration:
    """Mixin for unlearners: recompute the BatchNorm statistics on the retain set whenever the
    network has been trained since they were last computed and is about to be used:

    - before each validation during ``fit``;
    - at the end of every training epoch if the trainer has checkpoint callbacks (they save
      after this hook, so every checkpoint holds statistics of its own weights);
    - at the end of training (what ``validate``/``test`` after ``fit`` and the caller see).

    A fit without validation or checkpoints pays one pass over the retain set in all. Subclasses
    set ``self.recalibrate_bn`` and list this class before a ``Callback`` base (e.g.
    ``class MyUnlearner(BatchNormRecalibration, Unlearner)``); the hooks are Lightning's, and a
    subclass overriding one of them calls ``super()``.
    """

    recalibrate_bn: bool = False
    _calibrated_at: int | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:
        # global_step restarts with every fit: forget the step of an earlier fit's recomputation.
        self._calibrated_at = None
        super().on_fit_start(trainer, pl_module)  # type: ignore[misc]  # a mixin: super() is the Lightning Callback after it

    def _recalibrate_if_trained(self, trainer: pl.Trainer, module: UnlearningModel) -> None:
        if self.recalibrate_bn and trainer.global_step != self._calibrated_at:
            recalibrate_batchnorm(trainer, module)
            self._calibrated_at = trainer.global_step

    def on_validation_start(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:
        if trainer.state.fn == TrainerFn.FITTING:  # validation inside fit: the network may have changed
            self._recalibrate_if_trained(trainer, pl_module)

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:
        if trainer.checkpoint_callbacks:
            self._recalibrate_if_trained(trainer, pl_module)

    def on_train_end(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:
        self._recalibrate_if_trained(trainer, pl_module)

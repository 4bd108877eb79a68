"""``SGDUnlearner``: the one place the unlearners' SGD hyperparameters are declared."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lightning.pytorch.utilities.types import OptimizerLRSchedulerConfig

from unlearn_pl.optim import LearningRate, LRFraction, Momentum, WeightDecay, check_sgd, sgd_cosine
from unlearn_pl.unlearners.base import Unlearner

if TYPE_CHECKING:
    from unlearn_pl.module import UnlearningModule


class SGDUnlearner(Unlearner):
    """An unlearner trained with SGD (momentum, weight decay) and a per-step cosine decay.

    The SGD fields are declared here only. Subclasses take ``**kwargs`` and pass them to
    ``super().__init__``; jsonargparse resolves parameters forwarded that way (its "parameter
    resolvers"), so the fields still appear flat in ``--print_config`` and in YAML
    (``init_args.lr``) of every subclass. A subclass with other defaults names just those
    fields and forwards them, e.g. ``def __init__(self, lr: LearningRate = 1e-3, **kwargs):
    super().__init__(lr=lr, **kwargs)``. ``final_lr_fraction=1`` keeps the learning rate
    constant, as the SalUn / Unlearn-Sparse baselines do.

    Args:
        lr: SGD learning rate (the peak of the cosine schedule).
        momentum: SGD momentum.
        weight_decay: SGD weight decay (only selected scalars are affected).
        final_lr_fraction: the per-step cosine schedule ends at this fraction of ``lr``
            (1.0 keeps it constant).
    """

    def __init__(
        self,
        lr: LearningRate = 0.01,
        momentum: Momentum = 0.9,
        weight_decay: WeightDecay = 5e-4,
        final_lr_fraction: LRFraction = 1.0,
    ) -> None:
        check_sgd(lr, momentum, weight_decay, final_lr_fraction)
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

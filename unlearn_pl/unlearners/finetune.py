"""Fine-tuning baselines: plain fine-tuning on the retain set, and with a decaying L1 penalty."""

from __future__ import annotations

from typing import Any

import torch.nn.functional as F
from torch import Tensor

from unlearn_pl.functional.regularizers import l1_norm, linear_decay
from unlearn_pl.functional.scores import trainable_parameters
from unlearn_pl.protocols import UnlearningModel
from unlearn_pl.unlearners.base import Batch
from unlearn_pl.unlearners.sgd import SGDUnlearner
from unlearn_pl.utils.arguments import NonNegativeFloat, PositiveInt, check_arguments


class Finetune(SGDUnlearner):
    """Fine-tune on the retain set only (cross-entropy): forgetting by catastrophic interference.

    Takes the SGD fields of :class:`~unlearn_pl.unlearners.SGDUnlearner` (``lr``, typical
    0.01–0.1 for a few epochs; ``momentum``, ``weight_decay``, ``final_lr_fraction``).
    """

    requires = ("retain",)

    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        _, x, y = batch["retain"]
        return F.cross_entropy(module.network(x), y)


class L1Sparse(SGDUnlearner):
    """L1-sparse unlearning (Jia et al., NeurIPS 2023): ``CE(R) + γ·(1 − t/E)·‖θ‖₁``.

    The L1 weight decays linearly with the epoch ``t`` over ``E`` epochs, so early steps sparsify
    (which the authors show helps forgetting) and late steps recover accuracy. ``‖θ‖₁`` sums over
    all trainable scalars; the mask zeroes its gradient on unselected ones.

    Args:
        gamma: initial L1 weight γ.
        epochs: the decay horizon ``E``; ``None`` uses the trainer's ``max_epochs``.
        **kwargs: the SGD fields of :class:`~unlearn_pl.unlearners.SGDUnlearner`.
    """

    requires = ("retain",)

    def __init__(self, gamma: NonNegativeFloat = 5e-4, epochs: PositiveInt | None = None, **kwargs: Any) -> None:
        check_arguments(L1Sparse.__init__, locals())
        super().__init__(**kwargs)
        self.gamma = gamma
        self.epochs = epochs

    def l1_weight(self, module: UnlearningModel) -> float:
        """``γ·(1 − t/E)`` at the module's current epoch."""
        horizon = self.epochs if self.epochs is not None else module.trainer.max_epochs
        if horizon is None or horizon < 1:
            raise ValueError(
                f"L1Sparse decays over epochs but the trainer's max_epochs is {horizon!r}; set trainer.max_epochs "
                "or L1Sparse(epochs=...)"
            )
        return linear_decay(self.gamma, module.current_epoch, horizon)

    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        _, x, y = batch["retain"]
        ce = F.cross_entropy(module.network(x), y)
        weight = self.l1_weight(module)
        if weight == 0.0:
            return ce
        l1 = l1_norm(trainable_parameters(module.network).values())
        module.log("train/l1_norm", l1.detach())
        return ce + weight * l1

"""SSD — Selective Synaptic Dampening (Foster et al., AAAI 2024): one-shot, retraining-free."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from unlearn_pl.functional.fisher import dampen_, fisher_diagonal, ssd_factors
from unlearn_pl.protocols import UnlearningModel, attached_data
from unlearn_pl.unlearners.base import Batch, Unlearner
from unlearn_pl.utils.arguments import NonNegativeFloat, PositiveInt, check_arguments


class SSD(Unlearner):
    """Dampens the scalars far more important to the forget set than to the training data.

    At fit start: diagonal Fishers ``I_F`` (forget set) and ``I_D`` (train = retain ∪ forget)
    of the original model (eval mode, see :func:`~unlearn_pl.functional.fisher_diagonal`); then
    every *selected* scalar with ``I_F > α·I_D`` is multiplied by ``min(1, λ·I_D/I_F)``. Nothing
    is trained: the fit loop stops after its first (empty) step, so ``max_epochs`` is irrelevant.
    Each process computes the same Fishers on the full splits (deterministic), so all agree.

    Args:
        alpha: selection threshold α (SSD: 10).
        dampening: dampening constant λ (SSD: 1).
        batch_size: batch size of the Fisher passes (the estimate depends on it); ``None`` uses
            the data module's evaluation batch size.
    """

    requires = ("forget",)
    automatic_optimization = False

    def __init__(
        self, alpha: NonNegativeFloat = 10.0, dampening: NonNegativeFloat = 1.0, batch_size: PositiveInt | None = None
    ) -> None:
        check_arguments(SSD.__init__, locals())
        self.alpha = alpha
        self.dampening = dampening
        self.batch_size = batch_size
        self.done = False
        self.dampened = 0

    def factors(self, module: UnlearningModel) -> dict[str, Tensor]:
        """SSD's per-scalar factors for the module's current network (before dampening)."""
        dm = attached_data(module.trainer)
        forget = fisher_diagonal(module.network, dm.dataloader("forget", batch_size=self.batch_size))
        train = fisher_diagonal(module.network, dm.dataloader("train", batch_size=self.batch_size))
        return ssd_factors(forget, train, self.alpha, self.dampening)

    def on_fit_start(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:  # type: ignore[override]  # run by UnlearningModule only
        if self.done:  # a resumed run: the checkpointed weights are already dampened
            return
        masks = pl_module.masks  # computed (and its guard snapshot taken) before we change anything
        self.dampened = dampen_(pl_module.network, self.factors(pl_module), masks)
        self.done = True
        rank_zero_info(f"SSD: dampened {self.dampened} selected scalars (alpha={self.alpha}, lambda={self.dampening})")

    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> None:
        module.trainer.should_stop = True  # one-shot: the work was done at fit start
        return None

    def configure_optimizers(self, module: UnlearningModel) -> torch.optim.Optimizer:
        # Lightning needs an optimizer; SSD never steps it (manual optimization, no steps).
        return torch.optim.SGD(module.network.parameters(), lr=0.0)

    def state_dict(self) -> dict[str, Any]:
        return {"done": self.done, "dampened": self.dampened}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.done = bool(state_dict.get("done", False))
        self.dampened = int(state_dict.get("dampened", 0))

"""NoOp: unlearning that changes nothing, so a run scores the original itself."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor

from unlearn_pl.protocols import UnlearningModel
from unlearn_pl.unlearners.base import Batch, Unlearner


class NoOp(Unlearner):
    """Do nothing: the fit trains zero epochs, so the "unlearned" model is the original.

    A study's do-nothing candidate (``unlearn-pl tune --no_op true`` adds one per point): a tuned
    method should beat it, and when the selection picks it, unlearning did not pay at that λ.
    ``max_epochs`` is set to 0 whatever the trainer was given, so no batch is drawn and no
    optimizer steps; the localizer still computes its masks at fit start (it changes no weight).
    """

    requires = ("retain",)

    def training_epochs(self, recipe: Any, configured: int | None) -> int:
        return 0

    def setup(self, trainer: pl.Trainer, pl_module: UnlearningModel, stage: str) -> None:  # type: ignore[override]  # run by UnlearningModule only
        if stage == "fit":
            trainer.fit_loop.max_epochs = 0

    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> Tensor | None:
        raise AssertionError("NoOp trains zero epochs; Lightning never calls its training_step")

    def configure_optimizers(self, module: UnlearningModel) -> OptimizerLRScheduler:
        # Lightning asks for optimizers even for a fit that takes no step; an empty list is "none".
        return []

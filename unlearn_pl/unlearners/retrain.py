"""Retrain: the oracle as an unlearner — train the selected scalars from their initial values on R."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor

from unlearn_pl.functional.init import reset_selected_
from unlearn_pl.protocols import UnlearningData, UnlearningModel, attached_data
from unlearn_pl.unlearners.base import Batch, Unlearner
from unlearn_pl.utils.arguments import (
    ClosedUnitInterval,
    LearningRate,
    LRFraction,
    Momentum,
    PositiveInt,
    WeightDecay,
    check_arguments,
)
from unlearn_pl.utils.optimizers import sgd_cosine


class Retrain(Unlearner):
    """Retraining from scratch on the retain set, with the original's training recipe.

    At fit start the selected scalars are put back to the *oracle's initial weights* (the
    module's untrained network), so with the default ``Full`` localizer this retrains exactly
    the oracle's starting point (BatchNorm statistics included); with a partial mask it retrains
    only the selected scalars. Every hyperparameter left ``None`` is taken from
    ``module.references.recipe`` (the recipe the original and oracle were trained with), and
    ``epochs`` sets the trainer's ``max_epochs``. The batch size is the data module's: set it to
    the recipe's to reproduce the oracle's schedule.

    Args:
        epochs: training epochs (``None``: the recipe's); overrides ``trainer.max_epochs``.
        lr: peak SGD learning rate (``None``: the recipe's).
        momentum: SGD momentum (``None``: the recipe's).
        weight_decay: SGD weight decay (``None``: the recipe's).
        final_lr_fraction: end of the per-step cosine schedule (``None``: the recipe's).
        label_smoothing: cross-entropy label smoothing (``None``: the recipe's).
        seed: ``None`` restarts from the oracle's initial weights; an int draws a fresh seeded
            initialization instead (a different "from scratch").
    """

    requires = ("retain",)

    def __init__(
        self,
        epochs: PositiveInt | None = None,
        lr: LearningRate | None = None,
        momentum: Momentum | None = None,
        weight_decay: WeightDecay | None = None,
        final_lr_fraction: LRFraction | None = None,
        label_smoothing: ClosedUnitInterval | None = None,
        seed: int | None = None,
    ) -> None:
        check_arguments(Retrain.__init__, locals())
        self.epochs = epochs
        self.lr = lr
        self.momentum = momentum
        self.weight_decay = weight_decay
        self.final_lr_fraction = final_lr_fraction
        self.label_smoothing = label_smoothing
        self.seed = seed
        self.reset_done = False

    def resolved(self, module: UnlearningModel) -> dict[str, Any]:
        """The hyperparameters in effect: the given ones, the recipe's for those left ``None``."""
        recipe = module.references.recipe
        names = ("epochs", "lr", "momentum", "weight_decay", "final_lr_fraction", "label_smoothing")
        return {n: getattr(self, n) if getattr(self, n) is not None else getattr(recipe, n) for n in names}

    def training_epochs(self, recipe: Any, configured: int | None) -> int:
        return self.epochs if self.epochs is not None else recipe.epochs

    def setup(self, trainer: pl.Trainer, pl_module: UnlearningModel, stage: str) -> None:  # type: ignore[override]  # run by UnlearningModule only
        if stage != "fit":
            return
        hp = self.resolved(pl_module)
        if trainer.fit_loop.max_epochs != hp["epochs"]:
            rank_zero_info(
                f"Retrain: training for {hp['epochs']} epochs (was max_epochs={trainer.fit_loop.max_epochs})"
            )
        # Set before configure_optimizers, so the cosine schedule spans the right number of steps.
        trainer.fit_loop.max_epochs = hp["epochs"]
        datamodule = attached_data(trainer)
        batch_size = datamodule.batch_size if isinstance(datamodule, UnlearningData) else None
        if batch_size is not None and batch_size != pl_module.references.recipe.batch_size:
            rank_zero_warn(
                f"Retrain: the data module's batch_size={batch_size} differs from the recipe's "
                f"{pl_module.references.recipe.batch_size}; the result will differ from the oracle's recipe"
            )

    @torch.no_grad()
    def on_fit_start(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:  # type: ignore[override]  # run by UnlearningModule only
        if self.reset_done:  # resumed: never reset twice
            return
        masks = pl_module.masks
        if self.seed is not None:
            reset_selected_(pl_module.network, masks, self.seed)
        else:
            initial = pl_module.initial_network
            start = dict(initial.named_parameters())
            for name, p in pl_module.network.named_parameters():
                mask = masks.get(name)
                if mask is not None and bool(mask.any()):
                    p.copy_(torch.where(mask.to(p.device), start[name].to(p.device), p))
            trainable = [n for n, q in pl_module.network.named_parameters() if q.requires_grad]
            everything = all(n in masks and bool(masks[n].all()) for n in trainable)
            if everything:  # a full retrain also restarts the BatchNorm statistics, as the oracle did
                for buf, init_buf in zip(pl_module.network.buffers(), initial.buffers(), strict=True):
                    buf.copy_(init_buf.to(buf.device))
        self.reset_done = True

    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        _, x, y = batch["retain"]
        return F.cross_entropy(module.network(x), y, label_smoothing=self.resolved(module)["label_smoothing"])

    def configure_optimizers(self, module: UnlearningModel) -> OptimizerLRScheduler:
        hp = self.resolved(module)
        return sgd_cosine(
            module.network.parameters(),
            lr=hp["lr"],
            momentum=hp["momentum"],
            weight_decay=hp["weight_decay"],
            final_lr_fraction=hp["final_lr_fraction"],
            total_steps=module.trainer.estimated_stepping_batches,
        )

    def state_dict(self) -> dict[str, Any]:
        return {"reset_done": self.reset_done}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.reset_done = bool(state_dict.get("reset_done", False))

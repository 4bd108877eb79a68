"""Plain supervised training of the original (retain ∪ forget) and oracle (retain only) models."""

from __future__ import annotations

from dataclasses import dataclass

import lightning.pytorch as pl
import torch.nn.functional as F
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor, nn
from torch.utils.data import DataLoader

from unlearn_pl.optim import (
    ClosedUnitInterval,
    LearningRate,
    LRFraction,
    Momentum,
    PositiveInt,
    WeightDecay,
    check_fraction,
    check_int,
    check_sgd,
    sgd_cosine,
)
from unlearn_pl.seeds import isolated_rng


@dataclass
class TrainingRecipe:
    """How the original and the oracle are trained; both use the same recipe.

    The SGD fields have the same names, types and checks as the unlearners'
    (:mod:`unlearn_pl.optim`); only the defaults differ (a full training run, cosine to 0).

    Attributes:
        epochs: training epochs.
        lr: peak SGD learning rate (cosine-decayed per step to ``final_lr_fraction · lr``).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        final_lr_fraction: end of the cosine schedule, as a fraction of ``lr``.
        batch_size: training batch size.
        label_smoothing: cross-entropy label smoothing.
        seed: seeds the shuffling order (the initial weights are the network's own).
        accelerator: Lightning accelerator for this training (``auto``, ``cpu``, ``gpu``).
    """

    epochs: PositiveInt = 30
    lr: LearningRate = 0.05
    momentum: Momentum = 0.9
    weight_decay: WeightDecay = 5e-4
    final_lr_fraction: LRFraction = 0.0
    batch_size: PositiveInt = 128
    label_smoothing: ClosedUnitInterval = 0.0
    seed: int = 0
    accelerator: str = "auto"

    def __post_init__(self) -> None:
        check_int("epochs", self.epochs, minimum=1)
        check_int("batch_size", self.batch_size, minimum=1)
        check_sgd(self.lr, self.momentum, self.weight_decay, self.final_lr_fraction)
        check_fraction("label_smoothing", self.label_smoothing)


class ClassifierModule(pl.LightningModule):
    """Supervised cross-entropy training of ``network`` with a :class:`TrainingRecipe`.

    Batches are ``(index, x, y)`` as served by :class:`~unlearn_pl.data.UnlearningDataModule`.
    """

    def __init__(self, network: nn.Module, recipe: TrainingRecipe | None = None) -> None:
        super().__init__()
        self.network = network
        self.recipe = recipe or TrainingRecipe()

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        _, x, y = batch
        logits = self.network(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.recipe.label_smoothing)
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", (logits.argmax(1) == y).float().mean(), prog_bar=True)
        return loss

    def configure_optimizers(self) -> OptimizerLRScheduler:
        r = self.recipe
        return sgd_cosine(
            self.network.parameters(),
            lr=r.lr,
            momentum=r.momentum,
            weight_decay=r.weight_decay,
            final_lr_fraction=r.final_lr_fraction,
            total_steps=self.trainer.estimated_stepping_batches,
        )


def train_classifier(network: nn.Module, loader: DataLoader, recipe: TrainingRecipe, progress_bar: bool = True) -> nn.Module:
    """Train ``network`` in place on ``loader`` with a single-device Trainer; returns it in eval mode.

    The global RNG state (and the seed a DDP strategy re-seeds with) is isolated, so a run that
    trains references and one that finds them cached continue with identical random streams.
    """
    with isolated_rng():
        pl.seed_everything(recipe.seed, verbose=False)
        trainer = pl.Trainer(
            max_epochs=recipe.epochs,
            accelerator=recipe.accelerator,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=progress_bar,
            num_sanity_val_steps=0,
            deterministic=True,
        )
        trainer.fit(ClassifierModule(network, recipe), train_dataloaders=loader)
    return network.eval()

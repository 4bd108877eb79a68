"""How the original (retain ∪ forget) and oracle (retain only) models are trained: the recipe and the module."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor, nn

from unlearn_pl.models.execution import NetworkExecution
from unlearn_pl.utils.arguments import (
    ClosedUnitInterval,
    LearningRate,
    LRFraction,
    Momentum,
    PositiveInt,
    Precision,
    WeightDecay,
    check_arguments,
)
from unlearn_pl.utils.optimizers import sgd_cosine

#: Fields that say where and how fast training runs, not what it computes: the trained weights
#: differ only by floating-point rounding (DDP shares one global batch, with synchronized
#: BatchNorm), so cache keys and bank fingerprints leave them out and a model trained on four GPUs
#: is reused on one.
EXECUTION_FIELDS = ("accelerator", "devices", "strategy", "compile", "channels_last")


@dataclass
class TrainingRecipe:
    """How the original and the oracle are trained; both use the same recipe.

    The SGD fields have the same names, types and checks as the unlearners'
    (:mod:`unlearn_pl.utils.arguments`); only the defaults differ (a full training run, cosine to 0).

    Attributes:
        epochs: training epochs.
        lr: peak SGD learning rate (cosine-decayed per step to ``final_lr_fraction · lr``).
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        final_lr_fraction: end of the cosine schedule, as a fraction of ``lr``.
        batch_size: training batch size; the global batch, shared by the ``devices`` processes.
        label_smoothing: cross-entropy label smoothing.
        seed: seeds the shuffling order (the initial weights are the network's own).
        accelerator: Lightning accelerator for this training (``auto``, ``cpu``, ``gpu``).
        precision: Lightning precision; mixed precision trains other weights than fp32, so it is
            part of the cache key.
        devices: processes (GPUs) that train one model with DDP, each on ``batch_size / devices``
            examples per step, with synchronized BatchNorm: the same optimization as one device.
        strategy: how several devices train: ``ddp_spawn`` (``auto`` picks it for ``devices > 1``)
            starts the processes from the running one, which is where reference models are trained
            (before a run's own processes start). ``ddp``, which re-runs the command, cannot.
        compile: compile the network for training (``torch.compile``; :class:`~unlearn_pl.models.NetworkExecution`).
        channels_last: train in the channels-last memory format.
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
    precision: Precision = "32-true"
    devices: PositiveInt = 1
    strategy: Literal["auto", "ddp_spawn"] = "auto"
    compile: bool = False
    channels_last: bool = False

    def __post_init__(self) -> None:
        if self.strategy == "ddp":
            raise ValueError(
                "strategy='ddp' re-runs the command in each process, but reference models are trained inside the "
                "running process; use strategy 'ddp_spawn' (or 'auto', which picks it for devices > 1)"
            )
        check_arguments(TrainingRecipe, dataclasses.asdict(self))
        if self.batch_size % self.devices:
            raise ValueError(
                f"batch_size={self.batch_size} is the global batch, shared by devices={self.devices} processes; "
                f"it must be a multiple of {self.devices} (e.g. {max(1, self.batch_size // self.devices) * self.devices})"
            )

    @property
    def execution(self) -> NetworkExecution:
        """How the network executes while it trains (a callback of :class:`ClassifierModule`)."""
        return NetworkExecution(compile=self.compile, channels_last=self.channels_last)

    def weight_settings(self) -> dict[str, Any]:
        """The fields that determine the trained weights, as cache keys and bank fingerprints record them.

        :data:`EXECUTION_FIELDS` are left out. ``precision`` is recorded only when it is not
        ``32-true``: the keys of fp32 recipes do not depend on the field, so their cached models stay valid.
        """
        settings = {k: v for k, v in dataclasses.asdict(self).items() if k not in EXECUTION_FIELDS}
        if settings["precision"] == "32-true":
            del settings["precision"]
        return settings


class ClassifierModule(pl.LightningModule):
    """Supervised cross-entropy training of ``network`` with a :class:`TrainingRecipe`.

    Batches are ``(index, x, y)`` as served by :class:`~unlearn_pl.data.UnlearningDataModule`.
    """

    def __init__(self, network: nn.Module, recipe: TrainingRecipe | None = None) -> None:
        super().__init__()
        self.network = network
        self.recipe = recipe or TrainingRecipe()
        #: Per epoch, the training examples' accuracy and mean loss as the network saw them while
        #: it learned (train mode, weights changing within the epoch), summed over every process.
        self.history: dict[str, list[float]] = {"train_acc": [], "train_loss": []}
        self._epoch_totals: Tensor | None = None

    def configure_callbacks(self) -> list[Callback]:
        return [self.recipe.execution] if self.recipe.execution.active else []

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def training_step(self, batch: tuple[Tensor, Tensor, Tensor], batch_idx: int) -> Tensor:
        _, x, y = batch
        logits = self.network(x)
        loss = F.cross_entropy(logits, y, label_smoothing=self.recipe.label_smoothing)
        correct = (logits.argmax(1) == y).sum()
        self.log("train/loss", loss, prog_bar=True)
        self.log("train/acc", correct / len(y), prog_bar=True)
        # Exact sums (not a mean of batch means), so the epoch's figures weigh every example once.
        step = torch.stack([correct.float(), torch.tensor(float(len(y)), device=loss.device), loss.detach() * len(y)])
        self._epoch_totals = step if self._epoch_totals is None else self._epoch_totals + step
        return loss

    def on_train_epoch_end(self) -> None:
        if self._epoch_totals is None:
            return
        correct, seen, loss = self.trainer.strategy.reduce(self._epoch_totals, reduce_op="sum").tolist()
        self.history["train_acc"].append(correct / seen)
        self.history["train_loss"].append(loss / seen)
        self._epoch_totals = None

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

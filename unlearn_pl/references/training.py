"""Training one reference model with a :class:`~unlearn_pl.TrainingRecipe`, on one device or on several (DDP)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.accelerators import CPUAccelerator
from lightning.pytorch.callbacks import Callback
from torch import nn
from torch.utils.data import DataLoader

from unlearn_pl.models.execution import NetworkExecution
from unlearn_pl.references.recipe import ClassifierModule, TrainingRecipe
from unlearn_pl.utils.seeds import isolated_rng

if TYPE_CHECKING:
    from unlearn_pl.protocols import SplitName, UnlearningData

_BATCH_NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


class ReferenceData(pl.LightningDataModule):
    """The shuffled training loader of one split, built in each training process for that process.

    ``recipe.batch_size`` is the global batch: each of the trainer's ``world_size`` processes takes
    ``batch_size / world_size`` examples per step, at its positions of one shared order
    (:class:`~unlearn_pl.data.samplers.EpochShuffleSampler`), so together they take the batch one
    process would. With one process this is the loader ``data.dataloader(which, shuffle=True, …)``.

    Args:
        data: the unlearning data module.
        which: the split to train on (``train`` for the original, ``retain`` for the oracle).
        recipe: the batch size and the seed of the order.
    """

    def __init__(self, data: UnlearningData, which: SplitName, recipe: TrainingRecipe) -> None:
        super().__init__()
        self.data, self.which, self.recipe = data, which, recipe

    def train_dataloader(self) -> Any:
        assert self.trainer is not None, "Lightning attaches the trainer before asking for loaders"
        world, rank = self.trainer.world_size, self.trainer.global_rank
        # drop_last: a tiny last batch gives BatchNorm meaningless batch statistics.
        return self.data.dataloader(
            self.which,
            shuffle=True,
            batch_size=self.recipe.batch_size // world,
            seed=self.recipe.seed,
            drop_last=True,
            num_replicas=world,
            rank=rank,
            device=self.trainer.strategy.root_device,
        )


def train_classifier(
    network: nn.Module,
    data: DataLoader | pl.LightningDataModule,
    recipe: TrainingRecipe,
    progress_bar: bool = True,
    callbacks: Sequence[Callback] = (),
    history: dict[str, list[float]] | None = None,
) -> nn.Module:
    """Train ``network`` in place with ``recipe``; returns it in eval mode, uncompiled and contiguous.

    ``history``, if given, receives the training curve (:attr:`ClassifierModule.history`: per
    epoch ``train_acc`` and ``train_loss``) of a training in this process; on several devices it
    stays empty (the spawned processes' records do not come back, only rank 0's weights).

    ``data`` is a training loader (one device) or a data module whose ``train_dataloader`` serves
    each process its share (:class:`ReferenceData`, needed for ``recipe.devices > 1``). Several
    devices train with Lightning's ``ddp_spawn``: the processes start from this one, and when they
    finish, rank 0's weights are loaded into ``network``. BatchNorm layers are synchronized across
    the processes (``SyncBatchNorm``), so the batch statistics are those of the global batch.

    The global RNG state and ``MASTER_PORT`` are restored afterwards, so a run that trains
    references and one that finds them cached continue alike.

    Raises:
        ValueError: ``devices > 1`` with a plain loader (each process would train on all of it), or
            on CPUs with BatchNorm layers (torch synchronizes BatchNorm on GPUs only).
        RuntimeError: ``devices > 1`` inside a process of a running DDP job.
    """
    several = recipe.devices > 1
    if several:
        _check_can_spawn(data)
    with isolated_rng(), _environment_kept("MASTER_PORT"):
        pl.seed_everything(recipe.seed, verbose=False)
        trainer = pl.Trainer(
            max_epochs=recipe.epochs,
            accelerator=recipe.accelerator,
            devices=recipe.devices,
            strategy="ddp_spawn" if several else "auto",
            precision=recipe.precision,
            sync_batchnorm=several,
            use_distributed_sampler=False,  # the loaders shard themselves (ReferenceData)
            callbacks=[*callbacks, _CloseProcessGroup()] if several else list(callbacks),
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=progress_bar,
            num_sanity_val_steps=0,
            deterministic=True,
        )
        if (
            several
            and isinstance(trainer.accelerator, CPUAccelerator)
            and any(isinstance(m, _BATCH_NORMS) for m in network.modules())
        ):
            raise ValueError(
                f"devices={recipe.devices} on CPUs cannot train {type(network).__name__}: it has BatchNorm layers, which "
                "torch synchronizes across processes on GPUs only, so each process would normalize its own share of "
                "the batch and train another model than one process; use devices=1 on CPUs (torch uses every core)"
            )
        module = ClassifierModule(network, recipe)
        if isinstance(data, DataLoader):
            trainer.fit(module, train_dataloaders=data)
        else:
            trainer.fit(module, datamodule=data)
        if history is not None and not several:
            history.update({k: list(v) for k, v in module.history.items()})
    return NetworkExecution.release(network).eval()


class _CloseProcessGroup(Callback):
    """In each ``ddp_spawn`` process, once fit is done: wait for every rank, then close the process group.

    Lightning leaves the group to an ``atexit`` handler, which runs when each spawned process exits:
    a rank whose peer has already closed its end can then abort in gloo's teardown (``terminate
    called without an active exception``, the process killed by SIGABRT), failing the whole launch.
    Closing it while every rank is still alive and past its last collective avoids that race.
    Nothing after ``on_fit_end`` communicates: rank 0 only saves its weights for the launcher.
    """

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.world_size > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            torch.distributed.barrier()
            torch.distributed.destroy_process_group()


def _check_can_spawn(data: object) -> None:
    if isinstance(data, DataLoader):
        raise ValueError(
            "training on several devices needs a data module that serves each process its share of the batch "
            "(unlearn_pl.references.ReferenceData), not a DataLoader: every process would train on all of it"
        )
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        raise RuntimeError(
            "reference models on several devices start their own processes, so they must be trained before a "
            "run's DDP processes start: call module.prepare_models(datamodule) before trainer.fit (the CLI does)"
        )


@contextmanager
def _environment_kept(name: str) -> Iterator[None]:
    """Restore environment variable ``name`` on exit (Lightning's spawn launcher sets ``MASTER_PORT``
    in the launching process, where a later run would otherwise reuse the port)."""
    before = os.environ.get(name)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = before

"""The training loader's rules: which splits an unlearner may train on, the batch size of each
process, and how the loaders of several splits make one training loader."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeGuard

from lightning.pytorch.utilities.combined_loader import CombinedLoader
from torch.utils.data import DataLoader

from unlearn_pl.data.loaders import DeviceLoader
from unlearn_pl.data.sequential import SequentialLoader
from unlearn_pl.protocols import CombineMode, SplitName

#: The splits an unlearner can train on.
TRAINING_SPLITS: tuple[SplitName, ...] = ("retain", "forget", "val", "train")


def is_training_split(name: str) -> TypeGuard[SplitName]:
    """Whether ``name`` is a split an unlearner can train on."""
    return name in TRAINING_SPLITS


def training_splits(requires: tuple[str, ...]) -> tuple[SplitName, ...]:
    """``requires``, checked to name training splits."""
    if not requires:
        raise ValueError("an unlearner must require at least one split (retain, forget, val or train)")
    if unknown := [r for r in requires if not is_training_split(r)]:
        raise ValueError(f"unknown training splits {unknown}; allowed: retain, forget, val, train")
    return tuple(r for r in requires if is_training_split(r))


def per_process_batch_size(batch_size: int, world_size: int, global_batch: bool) -> int:
    """The batch size of one process among ``world_size``: ``batch_size`` itself, or with
    ``global_batch`` its share of ``batch_size`` as the global batch (which must divide evenly)."""
    if not global_batch or world_size <= 1:
        return batch_size
    if batch_size % world_size:
        raise ValueError(
            f"global_batch=True divides batch_size={batch_size} across {world_size} processes, which needs a "
            f"multiple of {world_size}; set batch_size to e.g. {max(1, batch_size // world_size) * world_size}"
        )
    return batch_size // world_size


def combine(loaders: Mapping[str, DataLoader | DeviceLoader], mode: CombineMode) -> CombinedLoader | SequentialLoader:
    """One training loader over the split ``loaders``: a ``CombinedLoader`` in ``mode``, or for
    ``"sequential"`` a :class:`~unlearn_pl.data.sequential.SequentialLoader` (every batch of the
    first split, then of the next), which Lightning's fit loop accepts where it refuses a
    ``CombinedLoader``'s own sequential mode."""
    return SequentialLoader(loaders) if mode == "sequential" else CombinedLoader(dict(loaders), mode=mode)

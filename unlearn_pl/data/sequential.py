"""``SequentialLoader``: all batches of one split, then all of the next, as a training loader.

Lightning's ``CombinedLoader(mode="sequential")`` serves exactly this order, but its fit loop
rejects that mode in training. SCRUB's authors run, each epoch, every forget batch and then every
retain batch (github meghdadk/SCRUB, ``large_scale_unlearning.ipynb``, the ``train_distill``
calls of the epoch loop), so the data module serves this loader for an unlearner whose
``combine_mode`` is ``"sequential"``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from torch.utils.data import DataLoader

from unlearn_pl.data.loaders import DeviceLoader


class _EpochForwarder:
    """Stands in for a sampler: Lightning calls ``loader.sampler.set_epoch(epoch)`` before each
    epoch (``lightning.fabric.utilities.data._set_sampler_epoch``); this forwards it to every
    inner loader's sampler, so each split is reshuffled exactly as when served alone."""

    def __init__(self, loaders: Iterable[DataLoader | DeviceLoader]) -> None:
        self.loaders = list(loaders)

    def set_epoch(self, epoch: int) -> None:
        for loader in self.loaders:
            for sampler in (
                getattr(loader, "sampler", None),
                getattr(getattr(loader, "batch_sampler", None), "sampler", None),
            ):
                set_epoch = getattr(sampler, "set_epoch", None)
                if callable(set_epoch):
                    set_epoch(epoch)


class SequentialLoader:
    """Yields ``{name: batch}`` for every batch of the first loader, then of the next, and so on.

    Its length is the sum of the loaders' lengths, the same every epoch. It is deliberately not a
    ``DataLoader``: Lightning then leaves its (already sharded) inner loaders alone under DDP.

    Args:
        loaders: the loaders by split name, in the order to serve them.
    """

    def __init__(self, loaders: Mapping[str, DataLoader | DeviceLoader]) -> None:
        if not loaders:
            raise ValueError("SequentialLoader needs at least one loader")
        self.loaders = dict(loaders)
        self.sampler = _EpochForwarder(self.loaders.values())

    def __len__(self) -> int:
        return sum(len(loader) for loader in self.loaders.values())

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for name, loader in self.loaders.items():
            for batch in loader:
                yield {name: batch}

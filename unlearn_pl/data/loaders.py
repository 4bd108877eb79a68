"""The loaders of a split: batches gathered on the device for in-memory data, else a DataLoader with
settings that suit the data and the device."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any, Protocol

import torch
from lightning.fabric.utilities.data import suggested_max_num_workers
from torch import Tensor
from torch.utils.data import Dataset

from unlearn_pl.data.datasets import ArrayDataset, IndexedSubset


class PositionOrder(Protocol):
    """An order of positions with a length: a ``Sampler`` that defines ``__len__``, as torch's own do
    (``torch.utils.data.Sampler`` itself leaves ``__len__`` optional)."""

    def __iter__(self) -> Iterator[int]: ...

    def __len__(self) -> int: ...


class DeviceLoader:
    """The batches of ``DataLoader(subset, batch_size, sampler=sampler, drop_last=drop_last)``, gathered
    on ``device`` from a copy of the images kept there.

    The same positions in the same order give the same ``[index, x, y]`` batches (same dtypes) as
    the DataLoader, without its per-batch Python work and host-to-device copy: the images go to the
    device once (:meth:`ArrayDataset.images_on`), and a batch is one gather there, as fast CIFAR
    trainers do (Page 2018, "How to train your ResNet"; Jordan 2024, arXiv 2404.00498). The order
    comes from ``sampler`` (an :class:`~unlearn_pl.data.samplers.EpochShuffleSampler`, which also
    shards it across DDP processes), kept as ``self.sampler`` so Lightning's loops call its
    ``set_epoch`` as they do a DataLoader's (``batch_sampler`` is ``None``, as in a DataLoader
    that batches a sampler's positions).

    Args:
        subset: a split of an :class:`~unlearn_pl.data.ArrayDataset`.
        batch_size: examples per batch.
        device: where batches are served.
        sampler: the order of positions (``None``: ``0 … len(subset)−1``).
        drop_last: drop a last incomplete batch.
    """

    def __init__(
        self,
        subset: IndexedSubset,
        batch_size: int,
        device: torch.device,
        sampler: PositionOrder | None = None,
        drop_last: bool = False,
    ) -> None:
        base = subset.dataset
        if not isinstance(base, ArrayDataset):
            raise TypeError(f"DeviceLoader serves in-memory data (an ArrayDataset); got {type(base).__name__}")
        self.dataset = subset
        self.batch_size, self.sampler, self.drop_last, self.device = batch_size, sampler, drop_last, device
        self.batch_sampler = None
        self.images = base.images_on(device)
        index = torch.as_tensor(subset.indices, dtype=torch.long)
        labels = base.targets[index].clone()
        for position, i in enumerate(subset.indices):
            if i in subset.relabels:
                labels[position] = subset.relabels[i]
        self.index, self.labels = index.to(device), labels.to(device)

    def __len__(self) -> int:
        n = len(self.sampler) if self.sampler is not None else len(self.index)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[list[Tensor]]:
        order = list(self.sampler) if self.sampler is not None else range(len(self.index))
        positions = torch.as_tensor(order, dtype=torch.long).to(self.device)  # one copy per pass
        for b in range(len(self)):
            p = positions[b * self.batch_size : (b + 1) * self.batch_size]
            index = self.index[p]
            yield [index, self.images[index], self.labels[p]]


def loader_options(
    dataset: Dataset, device: torch.device, processes: int, num_workers: int | None, pin_memory: bool | None
) -> dict[str, Any]:
    """``DataLoader`` options for ``dataset`` served to ``device`` by each of ``processes`` processes on a machine.

    What is not set (``None``) follows the data and the device:

    - ``num_workers``: 0 for in-memory data (an :class:`~unlearn_pl.data.ArrayDataset`, whose batch
      is one gather; workers would only add copies between processes), else Lightning's
      ``suggested_max_num_workers``: the cores per process, less one for the process itself, to
      decode files in parallel.
    - ``pin_memory``: on when batches go to a CUDA device (page-locked memory makes the copy asynchronous).

    Workers persist across epochs (``persistent_workers``) instead of restarting each epoch.
    """
    base = dataset.dataset if isinstance(dataset, IndexedSubset) else dataset
    if num_workers is None:
        num_workers = 0 if isinstance(base, ArrayDataset) else suggested_max_num_workers(processes)
    if pin_memory is None:
        pin_memory = device.type == "cuda"
    return {"num_workers": num_workers, "pin_memory": pin_memory, "persistent_workers": num_workers > 0}

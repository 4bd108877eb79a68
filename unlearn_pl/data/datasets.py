"""Dataset containers: in-memory image arrays and the index-carrying view the loaders serve."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor
from torch.utils.data import Dataset

from unlearn_pl.protocols import MapDataset
from unlearn_pl.utils.describe import content_hash

if TYPE_CHECKING:
    from unlearn_pl.data.readers.base import DatasetReader


class ArrayDataset(Dataset):
    """Images held in memory as one float tensor ``(N, C, H, W)`` with integer labels.

    Args:
        images: normalized float images, shape ``(N, C, H, W)``.
        targets: integer class labels, shape ``(N,)``.
        name: a short name used in fingerprints and error messages.
    """

    def __init__(self, images: Tensor, targets: Tensor, name: str) -> None:
        if images.ndim != 4:
            raise ValueError(f"images must have shape (N, C, H, W); got {tuple(images.shape)}")
        if len(images) != len(targets):
            raise ValueError(f"{len(images)} images but {len(targets)} targets")
        self.images = images.float().contiguous()
        self.targets = torch.as_tensor(targets, dtype=torch.long)
        self.name = name
        self._device_images: dict[str, Tensor] = {}

    def images_on(self, device: torch.device | str) -> Tensor:
        """The images on ``device``, copied there on the first call and kept (``self.images`` on the CPU).

        A pickled or copied dataset (a DataLoader worker, a ``ddp_spawn`` process) holds no device
        copy: each process makes its own, on its own device.
        """
        device = torch.device(device)
        if device.type == "cpu":
            return self.images
        if str(device) not in self._device_images:
            self._device_images[str(device)] = self.images.to(device)
        return self._device_images[str(device)]

    def __getstate__(self) -> dict[str, object]:
        return {**self.__dict__, "_device_images": {}}

    def __len__(self) -> int:
        return len(self.targets)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.images[i], int(self.targets[i])

    def get_batch(self, indices: Sequence[int]) -> tuple[Tensor, list[int]]:
        """Images ``(B, C, H, W)`` and labels of ``indices`` in one gather each.

        The batched counterpart of ``[self[i] for i in indices]``: one index operation instead
        of ``B`` Python-level ``__getitem__`` calls.
        """
        idx = torch.as_tensor(indices, dtype=torch.long)
        return self.images[idx], self.targets[idx].tolist()

    def fingerprint(self) -> str:
        """A content hash: two datasets with equal fingerprints hold the same images and labels."""
        return content_hash({"name": self.name, "images": self.images, "targets": self.targets})


def dataset_targets(dataset: MapDataset) -> Tensor:
    """The labels of a map-style dataset as a LongTensor (fast path for ``.targets``)."""
    targets = getattr(dataset, "targets", None)
    if targets is None:
        targets = [dataset[i][1] for i in range(len(dataset))]
    return torch.as_tensor(targets, dtype=torch.long)


def check_dataset(dataset: MapDataset, num_classes: int, what: str) -> None:
    """Raise ``ValueError`` naming the first bad example unless every label is in
    ``0 … num_classes−1`` and (for in-memory datasets) every pixel is finite.

    Without this, a label of 10 in a 10-class dataset surfaces as ``IndexError: Target 10 is out
    of bounds`` deep inside training (or, in the test set, only after the whole run), and a NaN
    pixel as a diverged model.
    """
    targets = dataset_targets(dataset)
    bad = ((targets < 0) | (targets >= num_classes)).nonzero().flatten()
    if len(bad):
        i = int(bad[0])
        values = sorted(set(targets[bad].tolist()))
        raise ValueError(
            f"{what}: label {int(targets[i])} at index {i} is outside 0..{num_classes - 1} ({len(bad)} such "
            f"examples, labels {values[:10]}); the reader declares num_classes={num_classes}"
        )
    images = getattr(dataset, "images", None)
    if isinstance(images, Tensor) and images.is_floating_point():
        finite = torch.isfinite(images.flatten(1)).all(1)
        if not bool(finite.all()):
            i = int((~finite).nonzero()[0])
            raise ValueError(
                f"{what}: image {i} has NaN or infinite pixel values ({int((~finite).sum())} such images); "
                "fix the data files (training on them gives a diverged model)"
            )


def load_checked(reader: DatasetReader) -> tuple[MapDataset, MapDataset]:
    """The reader's train and test partitions, checked (:func:`check_dataset`) before anything trains.

    Raises:
        ValueError: fewer than 2 classes declared or present in the training data, or a bad example.
    """
    if reader.num_classes < 2:
        raise ValueError(
            f"{reader.name} has num_classes={reader.num_classes}; unlearning a classifier needs at least 2 classes "
            "(with one, every model is trivially 100% accurate)"
        )
    train, test = reader.load("train"), reader.load("test")
    check_dataset(train, reader.num_classes, f"{reader.name} train split")
    check_dataset(test, reader.num_classes, f"{reader.name} test split")
    present = torch.unique(dataset_targets(train))
    if len(present) < 2:
        raise ValueError(
            f"{reader.name}'s training split holds only class(es) {present.tolist()}; "
            "unlearning a classifier needs examples of at least 2 classes"
        )
    return train, test


def dataset_fingerprint(dataset: MapDataset) -> str:
    """A stable content hash of a dataset, used in split manifests and the model cache.

    Datasets may define ``fingerprint()``; otherwise the class name, length and labels are hashed.
    """
    if hasattr(dataset, "fingerprint"):
        return str(dataset.fingerprint())
    return content_hash(
        {
            "class": type(dataset).__qualname__,
            "size": len(dataset),
            "targets": dataset_targets(dataset),
        }
    )


class IndexedSubset(Dataset):
    """A view of ``dataset`` at ``indices`` that yields ``(index, x, y)``.

    ``index`` is the example's index in the underlying dataset, so metrics can de-duplicate
    examples that a distributed sampler repeats. ``relabels`` overrides labels by dataset index
    (the ``mislabeled`` forget selector trains on wrong labels).
    """

    def __init__(self, dataset: MapDataset, indices: Sequence[int], relabels: Mapping[int, int] | None = None) -> None:
        self.dataset = dataset
        self.indices = list(indices)
        self.relabels = dict(relabels or {})

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> tuple[int, Tensor, int]:
        i = self.indices[k]
        x, y = self.dataset[i]
        return i, x, self.relabels.get(i, int(y))

    def __getitems__(self, ks: Sequence[int]) -> list[tuple[int, Tensor, int]]:
        """``[self[k] for k in ks]``, fetched with one gather when the dataset supports it.

        PyTorch's ``DataLoader`` calls this with a whole batch of positions instead of calling
        ``__getitem__`` per example. Over an :class:`ArrayDataset` the images are gathered in one
        index operation; the items are the same ``(index, x, y)`` tuples as ``__getitem__``'s
        (``x`` a view into the gathered batch, which ``default_collate`` stacks), so batches are
        bit-identical. Other datasets are fetched item by item.
        """
        indices = [self.indices[k] for k in ks]
        get_batch = getattr(self.dataset, "get_batch", None)
        if get_batch is None:
            return [self[k] for k in ks]
        images, labels = get_batch(indices)
        if self.relabels:
            labels = [self.relabels.get(i, y) for i, y in zip(indices, labels, strict=True)]
        return list(zip(indices, images.unbind(0), labels, strict=True))

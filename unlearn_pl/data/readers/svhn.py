"""SVHN from its ``.mat`` files, through torchvision (scipy, no pickle)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torchvision import datasets as tv_datasets

from unlearn_pl.data.datasets import ArrayDataset
from unlearn_pl.data.readers.base import DatasetReader, Partition, _normalize, _require_files


class SVHN(DatasetReader):
    """SVHN (cropped digits) from ``root/train_32x32.mat`` and ``root/test_32x32.mat``; label 10 → 0.

    A thin wrapper of :class:`torchvision.datasets.SVHN` (which reads the ``.mat`` files with
    ``scipy.io.loadmat``, no pickle, and checks each file's MD5): this class adds the normalization,
    the in-memory :class:`ArrayDataset` the data module serves, and errors that name the files.

    Args:
        root: the folder holding (or receiving) the ``.mat`` files.
        download: fetch a missing file (needs internet).
    """

    num_classes = 10
    in_channels = 3
    _mean, _std = [0.4377, 0.4438, 0.4728], [0.1980, 0.2010, 0.1970]
    _hint = "Get it from http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits), or pass download=True."

    def __init__(self, root: str, download: bool = False) -> None:
        self.root = root
        self.download = download

    def load(self, split: Partition) -> ArrayDataset:
        name = f"{split}_32x32.mat"
        if not self.download:
            _require_files(Path(self.root), [name], self.name, self._hint)
        try:
            data = tv_datasets.SVHN(self.root, split=split, download=self.download)
        except RuntimeError as e:  # torchvision: "Dataset not found or corrupted" (an MD5 mismatch here)
            raise ValueError(
                f"{self.name}: {str(Path(self.root) / name)!r} is corrupt or not the official file (its MD5 differs); "
                f"delete it and download it again. {self._hint}"
            ) from e
        images = np.asarray(data.data, dtype=np.float32) / 255.0  # already (N, C, H, W)
        x = _normalize(images, self._mean, self._std)
        return ArrayDataset(x, torch.as_tensor(np.asarray(data.labels, dtype=np.int64).reshape(-1)), f"svhn-{split}")

"""Dataset readers: each reads one dataset's train and test splits from local files.

Nothing downloads unless asked: a reader whose files are missing raises ``FileNotFoundError``
naming the files it expected and where to get them; the torchvision-backed readers (CIFAR-10/100,
SVHN) take ``download=True`` to fetch them with torchvision's checked download. ``Digits`` ships
with scikit-learn and always works.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from unlearn_pl.protocols import MapDataset

#: A dataset's own train/test partition, as its files hold it.
Partition = Literal["train", "test"]


class DatasetReader(ABC):
    """Base class of dataset readers.

    Subclasses set ``num_classes`` and ``in_channels`` and implement :meth:`load`.

    Example:
        >>> class Ones(DatasetReader):
        ...     num_classes, in_channels = 2, 1
        ...     def load(self, split):
        ...         return ArrayDataset(torch.ones(4, 1, 2, 2), torch.tensor([0, 1, 0, 1]), "ones")
    """

    num_classes: int
    in_channels: int

    @abstractmethod
    def load(self, split: Partition) -> MapDataset:
        """Return the ``"train"`` or ``"test"`` split as a map-style dataset of ``(x, y)``."""

    @property
    def name(self) -> str:
        return type(self).__name__


def _normalize(images: np.ndarray, mean: list[float], std: list[float]) -> torch.Tensor:
    """uint8/float ``(N, H, W, C)`` or ``(N, C, H, W)`` already in [0, 1] → normalized float tensor."""
    x = torch.as_tensor(images, dtype=torch.float32)
    m = torch.tensor(mean).view(1, -1, 1, 1)
    s = torch.tensor(std).view(1, -1, 1, 1)
    return (x - m) / s


def _require_files(root: Path, names: list[str], dataset: str, hint: str) -> None:
    missing = [n for n in names if not (root / n).exists()]
    if missing:
        raise FileNotFoundError(f"{dataset}: data root {str(root)!r} lacks {missing}. Expected files: {names}. {hint}")

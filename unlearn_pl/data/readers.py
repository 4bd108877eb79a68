"""Dataset readers: each reads one dataset's train and test splits from local files.

Nothing here downloads: a reader whose files are missing raises ``FileNotFoundError`` naming the
files it expected and where to get them. ``Digits`` ships with scikit-learn and always works.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets
from torchvision import transforms

from unlearn_pl.data.datasets import ArrayDataset

Split = Literal["train", "test"]


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
    def load(self, split: Split) -> Dataset:
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
        raise FileNotFoundError(
            f"{dataset}: data root {str(root)!r} lacks {missing}. Expected files: {names}. {hint}"
        )


class Digits(DatasetReader):
    """scikit-learn's 8×8 handwritten digits (1,797 images, 10 classes), embedded, no download.

    The dataset has no official test split; ``test_fraction`` of it is held out, stratified, with a
    fixed ``split_seed`` so the test set is a property of the dataset, not of an experiment.
    """

    num_classes = 10
    in_channels = 1

    def __init__(self, test_fraction: float = 0.25, split_seed: int = 0) -> None:
        if not 0.0 < test_fraction < 1.0:
            raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction}")
        self.test_fraction = test_fraction
        self.split_seed = split_seed

    def load(self, split: Split) -> ArrayDataset:
        from sklearn.datasets import load_digits
        from sklearn.model_selection import train_test_split

        digits = load_digits()
        images = digits.images.astype(np.float32) / 16.0
        train_idx, test_idx = train_test_split(
            np.arange(len(images)),
            test_size=self.test_fraction,
            stratify=digits.target,
            random_state=self.split_seed,
        )
        idx = np.sort(train_idx if split == "train" else test_idx)
        x = _normalize(images[idx][:, None], [0.3], [0.37])
        return ArrayDataset(x, torch.as_tensor(digits.target[idx]), f"digits-{split}")


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        data = f.read()
    magic = int.from_bytes(data[:4], "big")
    ndim = magic & 0xFF
    if len(data) < 4 or magic >> 8 != 0x08:  # 0x08 = unsigned byte, the only type MNIST-style files use
        raise ValueError(
            f"{str(path)!r} is not an unsigned-byte idx file (magic {magic:#x}, expected 0x8xx); "
            "the data root holds some other file under an MNIST file name"
        )
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = 4 + 4 * ndim + int(np.prod(shape))
    if len(data) != expected:
        # A download cut short otherwise surfaces as numpy's "cannot reshape array of size …".
        raise ValueError(
            f"{str(path)!r} is truncated or corrupt: its header announces shape {shape} ({expected} bytes) but "
            f"the file has {len(data)} bytes; download it again"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(shape)


class MNIST(DatasetReader):
    """MNIST from its four idx files (``*-idx3-ubyte``/``*-idx1-ubyte``, gzipped or not) in ``root``.

    ``root`` may also be torchvision's layout (``root/MNIST/raw``).
    """

    num_classes = 10
    in_channels = 1
    _folder = "MNIST"
    _mean, _std = [0.1307], [0.3081]
    _hint = "Get them from http://yann.lecun.com/exdb/mnist/ (or torchvision's download on a networked machine)."

    def __init__(self, root: str) -> None:
        self.root = root

    def _files(self, split: Split) -> tuple[str, str]:
        prefix = "train" if split == "train" else "t10k"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    def _resolve(self, name: str) -> Path | None:
        for folder in (Path(self.root), Path(self.root) / self._folder / "raw"):
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.exists():
                    return candidate
        return None

    def load(self, split: Split) -> ArrayDataset:
        names = self._files(split)
        paths = [self._resolve(n) for n in names]
        if not Path(self.root).is_dir() or None in paths:
            missing = [n for n, p in zip(names, paths) if p is None]
            raise FileNotFoundError(
                f"{self.name}: data root {self.root!r} lacks {missing} (also tried '.gz' and "
                f"'{self._folder}/raw/'). Expected files: {list(names)}. {self._hint}"
            )
        images = _read_idx(paths[0]).astype(np.float32) / 255.0  # type: ignore[arg-type]
        labels = _read_idx(paths[1]).astype(np.int64)  # type: ignore[arg-type]
        x = _normalize(images[:, None], self._mean, self._std)
        return ArrayDataset(x, torch.as_tensor(labels), f"{self.name.lower()}-{split}")


class FashionMNIST(MNIST):
    """Fashion-MNIST from its idx files. Default ``root`` is where Debian's
    ``dataset-fashion-mnist`` package puts them (``apt-get install dataset-fashion-mnist``)."""

    _folder = "FashionMNIST"
    _mean, _std = [0.2860], [0.3530]
    _hint = "On Debian: apt-get install dataset-fashion-mnist (files go to /usr/share/datasets/fashion-mnist)."

    def __init__(self, root: str = "/usr/share/datasets/fashion-mnist") -> None:
        super().__init__(root)


class CIFAR10(DatasetReader):
    """CIFAR-10 from the python pickle batches in ``root/cifar-10-batches-py`` (or ``root`` itself)."""

    num_classes = 10
    in_channels = 3
    _folder = "cifar-10-batches-py"
    _train_files = [f"data_batch_{i}" for i in range(1, 6)]
    _test_files = ["test_batch"]
    _label_key = b"labels"
    _mean, _std = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
    _hint = "Get 'cifar-10-python.tar.gz' from https://www.cs.toronto.edu/~kriz/cifar.html and extract it into root."

    def __init__(self, root: str) -> None:
        self.root = root

    def _dir(self, names: list[str]) -> Path:
        for folder in (Path(self.root) / self._folder, Path(self.root)):
            if all((folder / n).exists() for n in names):
                return folder
        _require_files(Path(self.root) / self._folder, names, self.name, self._hint)
        raise AssertionError("unreachable")

    def load(self, split: Split) -> ArrayDataset:
        names = self._train_files if split == "train" else self._test_files
        folder = self._dir(names)
        images, labels = [], []
        for n in names:
            with open(folder / n, "rb") as f:
                batch = pickle.load(f, encoding="bytes")
            images.append(np.asarray(batch[b"data"], dtype=np.uint8).reshape(-1, 3, 32, 32))
            labels.extend(batch[self._label_key])
        x = _normalize(np.concatenate(images).astype(np.float32) / 255.0, self._mean, self._std)
        return ArrayDataset(x, torch.as_tensor(labels), f"{self.name.lower()}-{split}")


class CIFAR100(CIFAR10):
    """CIFAR-100 (fine labels) from ``root/cifar-100-python/{train,test}``."""

    num_classes = 100
    _folder = "cifar-100-python"
    _train_files = ["train"]
    _test_files = ["test"]
    _label_key = b"fine_labels"
    _mean, _std = [0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]
    _hint = "Get 'cifar-100-python.tar.gz' from https://www.cs.toronto.edu/~kriz/cifar.html and extract it into root."


class SVHN(DatasetReader):
    """SVHN (cropped digits) from ``root/train_32x32.mat`` and ``root/test_32x32.mat``; label 10 → 0."""

    num_classes = 10
    in_channels = 3
    _mean, _std = [0.4377, 0.4438, 0.4728], [0.1980, 0.2010, 0.1970]

    def __init__(self, root: str) -> None:
        self.root = root

    def load(self, split: Split) -> ArrayDataset:
        from scipy.io import loadmat

        name = f"{split}_32x32.mat"
        _require_files(
            Path(self.root), [name], self.name,
            "Get it from http://ufldl.stanford.edu/housenumbers/ (format 2, cropped digits).",
        )
        mat = loadmat(str(Path(self.root) / name))
        images = np.transpose(mat["X"], (3, 2, 0, 1)).astype(np.float32) / 255.0  # HWCN → NCHW
        labels = mat["y"].astype(np.int64).reshape(-1) % 10
        x = _normalize(images, self._mean, self._std)
        return ArrayDataset(x, torch.as_tensor(labels), f"svhn-{split}")


class ImageFolder(DatasetReader):
    """An image-folder dataset such as ImageNet-100: ``root/train/<class>/*`` and ``root/val/<class>/*``.

    Images are decoded lazily, resized and center-cropped to ``image_size``.
    """

    in_channels = 3

    def __init__(self, root: str, image_size: int = 224, test_folder: str = "val") -> None:
        self.root = root
        self.image_size = image_size
        self.test_folder = test_folder
        self.num_classes = self._classes()

    def _folder(self, split: Split) -> Path:
        return Path(self.root) / ("train" if split == "train" else self.test_folder)

    def _classes(self) -> int:
        for split in ("train", "test"):
            folder = self._folder(split)  # type: ignore[arg-type]
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"ImageFolder: {str(folder)!r} is not a directory. Expected "
                    f"'{self.root}/train/<class>/<image>' and '{self.root}/{self.test_folder}/<class>/<image>'."
                )
        return sum(1 for p in self._folder("train").iterdir() if p.is_dir())

    def load(self, split: Split) -> Dataset:
        tf = transforms.Compose(
            [
                transforms.Resize(self.image_size),
                transforms.CenterCrop(self.image_size),
                transforms.ToTensor(),
                transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            ]
        )
        return _FingerprintedImageFolder(str(self._folder(split)), transform=tf)


class _FingerprintedImageFolder(tv_datasets.ImageFolder):
    """torchvision's ImageFolder plus a fingerprint of its file list (names, labels, sizes)."""

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for path, label in self.samples:
            h.update(f"{Path(path).name}:{label}:{Path(path).stat().st_size};".encode())
        return h.hexdigest()[:16]

"""CIFAR-10 and CIFAR-100 from their python batches, read by an unpickler that rebuilds arrays only."""

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torchvision import datasets as tv_datasets
from torchvision.datasets.utils import download_and_extract_archive

from unlearn_pl.data.datasets import ArrayDataset
from unlearn_pl.data.readers.base import DatasetReader, Partition, _normalize, _require_files


class _ArrayUnpickler(pickle.Unpickler):
    """An unpickler that rebuilds numpy arrays and plain containers, and nothing else.

    ``pickle.load`` imports and calls whatever a file names, so a crafted data file runs code.
    The CIFAR batches hold only a dict of bytes, lists, ints and one uint8 array; their pickles
    name just numpy's array-rebuilding functions (and ``_codecs.encode``, which protocol-2 pickles
    written by Python 3 use for bytes). Any other global is refused.
    """

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("builtins", "bytearray"),
        ("builtins", "set"),
        ("builtins", "frozenset"),
        ("builtins", "complex"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(
                f"refusing to load global {module}.{name}: a dataset file may hold only numpy arrays and builtins"
            )
        return super().find_class(module, name)


def load_array_pickle(file: BinaryIO, path: str | Path) -> Any:
    """Unpickle a data file that may hold only numpy arrays and builtin containers.

    Raises:
        ValueError: the file names any other global (a crafted file), or is not a pickle at all.
    """
    try:
        return _ArrayUnpickler(file, encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError) as e:
        raise ValueError(
            f"{str(path)!r} is not a dataset batch this reader accepts ({type(e).__name__}: {e}); "
            "replace it with the official file"
        ) from e


class CIFAR10(DatasetReader):
    """CIFAR-10 from the python pickle batches in ``root/cifar-10-batches-py`` (or ``root`` itself).

    torchvision's :class:`torchvision.datasets.CIFAR10` supplies the file layout, the download
    address and its checksum (``download=True``). The batches are read here, not by torchvision,
    because torchvision reads them with plain ``pickle.load``, which runs any code a crafted batch
    file names; :func:`load_array_pickle` rebuilds numpy arrays and builtins only.

    Args:
        root: the folder holding (or receiving) ``cifar-10-batches-py``.
        download: fetch and extract the archive into ``root`` if its files are missing (needs
            internet; the archive's MD5 is checked).
    """

    num_classes = 10
    in_channels = 3
    _torchvision: Any = tv_datasets.CIFAR10
    _label_key = b"labels"
    _mean, _std = [0.4914, 0.4822, 0.4465], [0.2470, 0.2435, 0.2616]
    _hint = (
        "Get 'cifar-10-python.tar.gz' from https://www.cs.toronto.edu/~kriz/cifar.html and extract it into root, "
        "or pass download=True on a machine with internet."
    )

    def __init__(self, root: str, download: bool = False) -> None:
        self.root = root
        self.download = download

    @property
    def _folder(self) -> str:
        return self._torchvision.base_folder

    def _names(self, split: Partition) -> list[str]:
        return [name for name, _ in (self._torchvision.train_list if split == "train" else self._torchvision.test_list)]

    def _dir(self, names: list[str]) -> Path:
        for folder in (Path(self.root) / self._folder, Path(self.root)):
            if all((folder / n).is_file() for n in names):
                return folder
        if self.download:
            tv = self._torchvision
            download_and_extract_archive(tv.url, self.root, filename=tv.filename, md5=tv.tgz_md5)
            return Path(self.root) / self._folder
        _require_files(Path(self.root) / self._folder, names, self.name, self._hint)
        raise AssertionError("unreachable")

    def load(self, split: Partition) -> ArrayDataset:
        names = self._names(split)
        folder = self._dir(names)
        images, labels = [], []
        for n in names:
            path = folder / n
            with open(path, "rb") as f:
                batch = load_array_pickle(f, path)
            if not isinstance(batch, dict) or b"data" not in batch or self._label_key not in batch:
                found = sorted(batch)[:6] if isinstance(batch, dict) else type(batch).__name__
                raise ValueError(
                    f"{str(path)!r} is not a {self.name} batch: expected a dict with b'data' and "
                    f"{self._label_key!r}, found {found}"
                )
            data = np.asarray(batch[b"data"])
            if (
                data.dtype != np.uint8
                or data.ndim != 2
                or data.shape[1] != 3 * 32 * 32
                or len(data) != len(batch[self._label_key])
            ):
                raise ValueError(
                    f"{str(path)!r} holds data of shape {data.shape} ({data.dtype}) and "
                    f"{len(batch[self._label_key])} labels; a {self.name} batch holds uint8 rows of 3072 values, one per label"
                )
            images.append(data.reshape(-1, 3, 32, 32))
            labels.extend(batch[self._label_key])
        x = _normalize(np.concatenate(images).astype(np.float32) / 255.0, self._mean, self._std)
        return ArrayDataset(x, torch.as_tensor(labels), f"{self.name.lower()}-{split}")


class CIFAR100(CIFAR10):
    """CIFAR-100 (fine labels) from ``root/cifar-100-python/{train,test}``; see :class:`CIFAR10`."""

    num_classes = 100
    _torchvision = tv_datasets.CIFAR100
    _label_key = b"fine_labels"
    _mean, _std = [0.5071, 0.4865, 0.4409], [0.2673, 0.2564, 0.2762]
    _hint = (
        "Get 'cifar-100-python.tar.gz' from https://www.cs.toronto.edu/~kriz/cifar.html and extract it into root, "
        "or pass download=True on a machine with internet."
    )

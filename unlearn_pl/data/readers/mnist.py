"""MNIST and Fashion-MNIST from their idx files (plain or gzipped)."""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np
import torch

from unlearn_pl.data.datasets import ArrayDataset
from unlearn_pl.data.readers.base import DatasetReader, Partition, _normalize


def _read_idx(path: Path) -> np.ndarray:
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as f:
            data = f.read()
    except (EOFError, OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
        # gzip's own message ("Compressed file ended before the end-of-stream marker…") names no file.
        raise ValueError(f"{str(path)!r} is truncated or not a valid gzip file ({e}); download it again") from e
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

    def _files(self, split: Partition) -> tuple[str, str]:
        prefix = "train" if split == "train" else "t10k"
        return f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"

    def _resolve(self, name: str) -> Path | None:
        for folder in (Path(self.root), Path(self.root) / self._folder / "raw"):
            for candidate in (folder / name, folder / f"{name}.gz"):
                if candidate.exists():
                    return candidate
        return None

    def load(self, split: Partition) -> ArrayDataset:
        names = self._files(split)
        resolved = [self._resolve(n) for n in names]
        paths = [p for p in resolved if p is not None]
        if not Path(self.root).is_dir() or len(paths) < len(names):
            missing = [n for n, p in zip(names, resolved, strict=True) if p is None]
            raise FileNotFoundError(
                f"{self.name}: data root {self.root!r} lacks {missing} (also tried '.gz' and "
                f"'{self._folder}/raw/'). Expected files: {list(names)}. {self._hint}"
            )
        images = _read_idx(paths[0]).astype(np.float32) / 255.0
        labels = _read_idx(paths[1]).astype(np.int64)
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

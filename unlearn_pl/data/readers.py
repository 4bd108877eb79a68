"""Dataset readers: each reads one dataset's train and test splits from local files.

Nothing downloads unless asked: a reader whose files are missing raises ``FileNotFoundError``
naming the files it expected and where to get them; the torchvision-backed readers (CIFAR-10/100,
SVHN) take ``download=True`` to fetch them with torchvision's checked download. ``Digits`` ships
with scikit-learn and always works.
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import warnings
import zlib
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, BinaryIO, Literal

import numpy as np
import torch
from torch.utils.data import Dataset
from torchvision import datasets as tv_datasets
from torchvision import transforms
from torchvision.datasets.utils import download_and_extract_archive

from unlearn_pl.data.datasets import ArrayDataset
from unlearn_pl.utils.arguments import OpenUnitInterval, PositiveInt, check_arguments

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

    def __init__(self, test_fraction: OpenUnitInterval = 0.25, split_seed: int = 0) -> None:
        check_arguments(Digits.__init__, locals())
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

    def _names(self, split: Split) -> list[str]:
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

    def load(self, split: Split) -> ArrayDataset:
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
            if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32 or len(data) != len(batch[self._label_key]):
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

    def load(self, split: Split) -> ArrayDataset:
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


class ImageFolder(DatasetReader):
    """An image-folder dataset such as ImageNet-100: ``root/train/<class>/*`` and ``root/val/<class>/*``.

    Images are decoded lazily, resized and center-cropped to ``image_size``. Class indices come
    from the training folder's class names (sorted, as torchvision numbers them) and the test set
    uses the same numbering: torchvision would number each folder's classes on its own, so a test
    folder that lacks a class would shift every later label. A test class that the training
    folder lacks is refused; a training class the test folder lacks is warned about.

    Args:
        root: the folder holding ``train/`` and the test folder.
        image_size: side of the square images served.
        test_folder: the test folder's name under ``root``.
        check_files: open every file's header when the data is loaded, so a file that is not an
            image fails at setup rather than hours into training (one ``open`` per file; turn
            off for very large folders whose files are known to be good).
    """

    in_channels = 3

    def __init__(
        self, root: str, image_size: PositiveInt = 224, test_folder: str = "val", check_files: bool = True
    ) -> None:
        check_arguments(ImageFolder.__init__, locals())
        self.root = root
        self.image_size = image_size
        self.test_folder = test_folder
        self.check_files = check_files
        self.class_to_idx = self._classes()
        self.num_classes = len(self.class_to_idx)

    def _folder(self, split: Split) -> Path:
        return Path(self.root) / ("train" if split == "train" else self.test_folder)

    def _classes(self) -> dict[str, int]:
        for split in ("train", "test"):
            folder = self._folder(split)  # type: ignore[arg-type]
            if not folder.is_dir():
                raise FileNotFoundError(
                    f"ImageFolder: {str(folder)!r} is not a directory. Expected "
                    f"'{self.root}/train/<class>/<image>' and '{self.root}/{self.test_folder}/<class>/<image>'."
                )
        train, _ = tv_datasets.folder.find_classes(str(self._folder("train")))
        test = sorted(p.name for p in self._folder("test").iterdir() if p.is_dir())
        unknown = sorted(set(test) - set(train))
        if unknown:
            raise ValueError(
                f"ImageFolder: the test folder {str(self._folder('test'))!r} has classes {unknown[:10]} that the "
                f"training folder {str(self._folder('train'))!r} lacks; both must use the same class folders"
            )
        absent = sorted(set(train) - set(test))
        if absent:
            warnings.warn(
                f"ImageFolder: the test folder {str(self._folder('test'))!r} has no class folder for {absent[:10]}; "
                "those classes are not tested",
                stacklevel=2,
            )
        return {name: i for i, name in enumerate(train)}

    def load(self, split: Split) -> Dataset:
        tf = transforms.Compose(
            [
                transforms.Resize(self.image_size),
                transforms.CenterCrop(self.image_size),
                transforms.ToTensor(),
                transforms.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]),
            ]
        )
        folder = _FingerprintedImageFolder(str(self._folder(split)), self.class_to_idx, transform=tf)
        if self.check_files:
            folder.check_headers()
        return folder


def _open_image(path: str) -> Any:
    """torchvision's default loader, with an error that names the file it could not decode."""
    from PIL import UnidentifiedImageError

    try:
        return tv_datasets.folder.default_loader(path)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as e:
        raise ValueError(f"cannot decode image {path!r} ({type(e).__name__}: {e}); replace or remove it") from e


class _FingerprintedImageFolder(tv_datasets.ImageFolder):
    """torchvision's ImageFolder numbered by a given ``class_to_idx``, plus a fingerprint of its
    file list (names, labels, sizes) and a header check of every file.

    The header check (``PIL.Image.open`` reads the header only) finds files that are not images;
    an image that is damaged past its header is named when it is decoded.
    """

    def __init__(self, root: str, class_to_idx: dict[str, int], **kwargs: Any) -> None:
        self._class_to_idx = class_to_idx
        # allow_empty: a class that this folder lacks is allowed (ImageFolder warned); torchvision would raise.
        super().__init__(root, loader=_open_image, allow_empty=True, **kwargs)

    def find_classes(self, directory: str) -> tuple[list[str], dict[str, int]]:
        return list(self._class_to_idx), dict(self._class_to_idx)

    def check_headers(self) -> None:
        """Raise ``ValueError`` naming the first file whose header PIL cannot read."""
        from PIL import Image, UnidentifiedImageError

        for path, _ in self.samples:
            try:
                with Image.open(path):
                    pass
            except (UnidentifiedImageError, OSError) as e:
                raise ValueError(f"{path!r} is not a readable image ({type(e).__name__}: {e}); replace or remove it") from e

    def fingerprint(self) -> str:
        h = hashlib.sha256()
        for path, label in self.samples:
            h.update(f"{Path(path).name}:{label}:{Path(path).stat().st_size};".encode())
        return h.hexdigest()[:16]

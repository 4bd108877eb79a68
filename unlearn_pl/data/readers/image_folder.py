"""A folder of images, one subfolder per class, with ``train/`` and a test folder."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any, Literal

from torchvision import datasets as tv_datasets
from torchvision import transforms

from unlearn_pl.data.readers.base import DatasetReader, Partition
from unlearn_pl.protocols import MapDataset
from unlearn_pl.utils.arguments import PositiveInt, check_arguments
from unlearn_pl.utils.describe import content_hash


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
        channels: serve every image with 3 channels (RGB; grayscale files are repeated) or 1
            (grayscale; colour files are converted), whatever its files hold.
    """

    def __init__(
        self,
        root: str,
        image_size: PositiveInt = 224,
        test_folder: str = "val",
        check_files: bool = True,
        channels: Literal[1, 3] = 3,
    ) -> None:
        check_arguments(ImageFolder.__init__, locals())
        self.channels = channels
        self.in_channels = channels
        self.root = root
        self.image_size = image_size
        self.test_folder = test_folder
        self.check_files = check_files
        self.class_to_idx = self._classes()
        self.num_classes = len(self.class_to_idx)

    def _folder(self, split: Partition) -> Path:
        return Path(self.root) / ("train" if split == "train" else self.test_folder)

    def _classes(self) -> dict[str, int]:
        for split in ("train", "test"):
            folder = self._folder(split)
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

    def load(self, split: Partition) -> MapDataset:
        tf = transforms.Compose(
            [
                transforms.Resize(self.image_size),
                transforms.CenterCrop(self.image_size),
                # The loader opens every file as RGB (torchvision's default_loader).
                *([transforms.Grayscale(1)] if self.channels == 1 else []),
                transforms.ToTensor(),
                # ImageNet's statistics (torchvision's models), their mean for one channel
                transforms.Normalize(
                    *(([0.449], [0.226]) if self.channels == 1 else ([0.485, 0.456, 0.406], [0.229, 0.224, 0.225]))
                ),
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
                raise ValueError(
                    f"{path!r} is not a readable image ({type(e).__name__}: {e}); replace or remove it"
                ) from e

    def fingerprint(self) -> str:
        return content_hash([f"{Path(path).name}:{label}:{Path(path).stat().st_size}" for path, label in self.samples])

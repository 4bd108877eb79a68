"""Data: readers, forget selectors, the split manifest and the ``UnlearningDataModule``."""

from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.data.datasets import ArrayDataset, IndexedSubset
from unlearn_pl.data.readers import (
    CIFAR10,
    CIFAR100,
    MNIST,
    SVHN,
    DatasetReader,
    Digits,
    FashionMNIST,
    ImageFolder,
)
from unlearn_pl.data.selectors import (
    ClassForget,
    ForgetSelector,
    IndexForget,
    Mislabeled,
    RandomForget,
)
from unlearn_pl.data.split import SplitManifest, make_split
from unlearn_pl.protocols import EVAL_SPLITS

__all__ = [
    "EVAL_SPLITS",
    "UnlearningDataModule",
    "ArrayDataset",
    "IndexedSubset",
    "DatasetReader",
    "Digits",
    "MNIST",
    "FashionMNIST",
    "CIFAR10",
    "CIFAR100",
    "SVHN",
    "ImageFolder",
    "ForgetSelector",
    "RandomForget",
    "ClassForget",
    "IndexForget",
    "Mislabeled",
    "SplitManifest",
    "make_split",
]

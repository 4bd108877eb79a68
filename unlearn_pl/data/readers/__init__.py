"""Dataset readers: each reads one dataset's train and test partitions from local files.

Nothing downloads unless asked: a reader whose files are missing raises ``FileNotFoundError``
naming the files it expected and where to get them; the torchvision-backed readers (CIFAR-10/100,
SVHN) take ``download=True`` to fetch them with torchvision's checked download. ``Digits`` ships
with scikit-learn and always works.
"""

from unlearn_pl.data.readers.base import DatasetReader, Partition
from unlearn_pl.data.readers.cifar import CIFAR10, CIFAR100, load_array_pickle
from unlearn_pl.data.readers.digits import Digits
from unlearn_pl.data.readers.image_folder import ImageFolder
from unlearn_pl.data.readers.mnist import MNIST, FashionMNIST
from unlearn_pl.data.readers.svhn import SVHN

__all__ = [
    "CIFAR10",
    "CIFAR100",
    "MNIST",
    "SVHN",
    "DatasetReader",
    "Digits",
    "FashionMNIST",
    "ImageFolder",
    "Partition",
    "load_array_pickle",
]

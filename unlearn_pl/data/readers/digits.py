"""scikit-learn's digits: 8×8 grayscale images that ship with scikit-learn, for tests and the quick start."""

from __future__ import annotations

import functools

import numpy as np
import torch

from unlearn_pl.data.datasets import ArrayDataset
from unlearn_pl.data.readers.base import DatasetReader, Partition, _normalize
from unlearn_pl.utils.arguments import OpenUnitInterval, check_arguments


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

    def load(self, split: Partition) -> ArrayDataset:
        from sklearn.model_selection import train_test_split

        images, target = _digits()
        train_idx, test_idx = train_test_split(
            np.arange(len(images)),
            test_size=self.test_fraction,
            stratify=target,
            random_state=self.split_seed,
        )
        idx = np.sort(train_idx if split == "train" else test_idx)
        x = _normalize(images[idx][:, None], [0.3], [0.37])
        return ArrayDataset(x, torch.as_tensor(target[idx]), f"digits-{split}")


@functools.cache
def _digits() -> tuple[np.ndarray, np.ndarray]:
    """The images in [0, 1] and the labels, read-only, parsed once per process: scikit-learn parses
    its CSV on every ``load_digits()`` (30 ms, and a run loads both partitions)."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    images, target = digits.images.astype(np.float32) / 16.0, digits.target
    images.flags.writeable = target.flags.writeable = False  # callers index copies, never the cache
    return images, target

"""``UnlearningDataModule``: one dataset split into retain, forget, validation and test sets."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities.combined_loader import CombinedLoader
from torch.utils.data import DataLoader, Dataset

from unlearn_pl.data.datasets import IndexedSubset, dataset_fingerprint, dataset_targets
from unlearn_pl.data.readers import DatasetReader, Digits
from unlearn_pl.data.selectors import ForgetSelector, RandomForget
from unlearn_pl.data.split import Split, make_split

SplitName = Literal["retain", "forget", "val", "test", "train"]
#: Splits evaluated by validation, in dataloader order (``dataloader_idx`` → name).
EVAL_SPLITS: tuple[str, ...] = ("retain", "forget", "val", "test")


class UnlearningDataModule(LightningDataModule):
    """Splits a dataset into retain / forget / validation / test sets and serves their loaders.

    Every batch is ``(index, x, y)``: ``index`` is the example's index in its dataset (train or
    test), so per-example metrics can de-duplicate under distributed samplers. ``train`` denotes
    retain ∪ forget, the original model's training data.

    The training loader of the unlearning stage serves what the attached module's unlearner
    declares it needs (``requires``): one loader for a single split, or a ``CombinedLoader`` of
    ``{"retain": ..., "forget": ...}`` for two-stream methods.

    Args:
        dataset: the reader of the train and test splits.
        forget: the forget-set selector.
        val_fraction: share of the (subsampled) training set held out as validation data.
        train_size: subsample the training set to this many examples first (``None``: all).
        batch_size: batch size of every loader unless a caller overrides it.
        eval_batch_size: batch size of evaluation loaders (default: ``batch_size``).
        num_workers: DataLoader workers.
        seed: seeds the split and the shuffling order.
        manifest: load the split from this manifest instead of drawing it. If the file does
            not exist yet, the drawn split is written there.
    """

    def __init__(
        self,
        dataset: DatasetReader | None = None,
        forget: ForgetSelector | None = None,
        val_fraction: float = 0.1,
        train_size: int | None = None,
        batch_size: int = 128,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        seed: int = 0,
        manifest: str | None = None,
    ) -> None:
        super().__init__()
        self.reader = dataset if dataset is not None else Digits()
        self.selector = forget if forget is not None else RandomForget(0.1)
        self.val_fraction = val_fraction
        self.train_size = train_size
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.manifest = manifest
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        self.split: Split | None = None
        self.train_set: Dataset | None = None
        self.test_set: Dataset | None = None

    @property
    def num_classes(self) -> int:
        return self.reader.num_classes

    def setup(self, stage: str | None = None) -> None:
        """Load the data and draw (or load) the split. Idempotent: later calls reuse it."""
        if self.split is not None:
            return
        self.train_set = self.reader.load("train")
        self.test_set = self.reader.load("test")
        targets = dataset_targets(self.train_set).numpy()
        fingerprint = dataset_fingerprint(self.train_set)
        if self.manifest and Path(self.manifest).exists():
            split = Split.load(self.manifest)
            if split.dataset != fingerprint:
                raise ValueError(
                    f"manifest {self.manifest!r} was made for dataset fingerprint {split.dataset!r}, but "
                    f"the data read now has fingerprint {fingerprint!r}; use the matching data or another manifest"
                )
        else:
            split = make_split(
                targets, self.num_classes, self.selector,
                val_fraction=self.val_fraction, seed=self.seed,
                dataset=fingerprint, train_size=self.train_size,
            )
            if self.manifest:
                split.save(self.manifest)
        self.split = split

    def _require_setup(self) -> Split:
        if self.split is None:
            self.setup()
        assert self.split is not None
        return self.split

    def fingerprint(self, which: SplitName) -> str:
        """Content hash of one split's data (indices, labels, data) — the model cache key part."""
        import hashlib

        split = self._require_setup()
        h = hashlib.sha256(split.dataset.encode())
        h.update(np.asarray(self.indices(which), dtype=np.int64).tobytes())
        h.update(repr(sorted(split.relabels.items())).encode())
        return h.hexdigest()[:16]

    def indices(self, which: SplitName) -> list[int]:
        """Dataset indices of a split (``train`` = retain ∪ forget, sorted)."""
        split = self._require_setup()
        if which == "train":
            return sorted(split.retain + split.forget)
        if which == "test":
            return list(range(len(self.test_set)))  # type: ignore[arg-type]
        if which not in ("retain", "forget", "val"):
            raise ValueError(f"unknown split {which!r}; expected one of retain, forget, val, test, train")
        return list(getattr(split, which))

    def dataset(self, which: SplitName) -> IndexedSubset:
        """The ``(index, x, y)`` dataset of a split; train splits carry the training labels."""
        split = self._require_setup()
        base = self.test_set if which == "test" else self.train_set
        relabels = {} if which == "test" else split.relabels
        return IndexedSubset(base, self.indices(which), relabels)  # type: ignore[arg-type]

    def dataloader(
        self,
        which: SplitName,
        *,
        shuffle: bool = False,
        batch_size: int | None = None,
        seed: int | None = None,
        drop_last: bool = False,
    ) -> DataLoader:
        """A loader over one split. Shuffled loaders use a generator seeded by ``seed`` (default: ``self.seed``).

        ``drop_last`` drops a last incomplete batch, unless that would leave no batch at all.
        """
        generator = torch.Generator().manual_seed(self.seed if seed is None else seed) if shuffle else None
        dataset = self.dataset(which)
        size = batch_size or (self.batch_size if shuffle else self.eval_batch_size)
        return DataLoader(
            dataset,
            batch_size=size,
            shuffle=shuffle,
            drop_last=drop_last and len(dataset) >= size,
            generator=generator,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def unlearning_dataloader(
        self, requires: tuple[str, ...], mode: str = "max_size_cycle"
    ) -> DataLoader | CombinedLoader:
        """The training loader of an unlearner that needs the splits ``requires``."""
        if not requires:
            raise ValueError("an unlearner must require at least one split (retain, forget or train)")
        loaders = {name: self.dataloader(name, shuffle=True) for name in requires}  # type: ignore[arg-type]
        return CombinedLoader(loaders, mode=mode)

    def train_dataloader(self) -> DataLoader | CombinedLoader:
        module = self.trainer.lightning_module if self.trainer is not None else None
        unlearner = getattr(module, "unlearner", None)
        if unlearner is None:
            return self.unlearning_dataloader(("retain",))
        return self.unlearning_dataloader(tuple(unlearner.requires), unlearner.combine_mode)

    def val_dataloader(self) -> list[DataLoader]:
        return [self.dataloader(name) for name in EVAL_SPLITS]  # type: ignore[arg-type]

    def test_dataloader(self) -> list[DataLoader]:
        return self.val_dataloader()

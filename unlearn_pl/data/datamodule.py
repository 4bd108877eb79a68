"""``UnlearningDataModule``: one dataset split into retain, forget, validation and test sets."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities.combined_loader import CombinedLoader
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from unlearn_pl.data.datasets import IndexedSubset, dataset_fingerprint, dataset_targets
from unlearn_pl.data.readers import DatasetReader, Digits
from unlearn_pl.data.sequential import SequentialLoader
from unlearn_pl.data.selectors import ForgetSelector, RandomForget
from unlearn_pl.data.split import Split, make_split

SplitName = Literal["retain", "forget", "val", "test", "train"]
#: Splits evaluated by validation, in dataloader order (``dataloader_idx`` → name).
EVAL_SPLITS: tuple[str, ...] = ("retain", "forget", "val", "test")


class EpochShuffleSampler(DistributedSampler):
    """A shuffling sampler whose order is a pure function of ``(seed, epoch, pass)``, optionally
    sharded across processes.

    ``DataLoader(shuffle=True, generator=torch.Generator().manual_seed(seed))`` draws each
    epoch's order from a generator whose state lives only in memory, so a run resumed from a
    checkpoint (``--ckpt_path``) would replay epoch 0's order instead of the order the
    uninterrupted run saw. This sampler instead derives the order from the epoch number, which
    Lightning sets through :meth:`set_epoch` before every epoch, also on resume.

    - Pass 0 of epoch ``e`` is exactly the order that
      ``DataLoader(shuffle=True, generator=Generator().manual_seed(seed))`` yields in its
      ``e``-th pass, so models trained — and cached — before this sampler existed are
      reproduced bit for bit. (Per pass that loader draws a worker base seed and two
      ``randperm`` from its generator; :meth:`permutation` replays exactly these draws, from
      ``seed`` when the epoch jumps back or ahead — a resumed run — in O(epoch) draws, once.)
    - Further passes within one epoch (a shorter loader cycled by a ``CombinedLoader``) use a
      generator seeded by ``(seed, epoch, pass)``.
    - Without any :meth:`set_epoch` call (a plain training loop) every pass advances the epoch,
      which gives the same sequence as above.
    - With ``num_replicas`` processes, process ``rank`` takes positions ``rank, rank +
      num_replicas, …`` of that one order (padded by repeating its start, as
      ``DistributedSampler`` does). So the processes' k-th batches of size b together are the
      single-process k-th batch of size ``num_replicas · b``: DDP changes the data of a step
      only by the padding. It is a ``DistributedSampler`` so that Lightning keeps it instead of
      injecting its own, whose shuffle would ignore this order.

    Args:
        size: number of examples to permute.
        seed: the seed of the order.
        num_replicas: number of processes sharing the order.
        rank: this process's index in ``0 … num_replicas−1``.
    """

    def __init__(self, size: int, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        if size < 0:
            raise ValueError(f"size must be >= 0; got {size}")
        # Explicit num_replicas/rank: the base class then never queries torch.distributed.
        super().__init__(range(size), num_replicas=num_replicas, rank=rank, shuffle=True, seed=int(seed))  # type: ignore[arg-type]
        self.size = size
        self._pass = 0  # passes already started in the current epoch
        self._epoch_set = False  # whether a loop drives the epoch through set_epoch
        self._generator = torch.Generator().manual_seed(self.seed)
        self._passes = 0  # passes of the legacy generator stream replayed so far

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next pass yields (called by Lightning's loops)."""
        self.epoch = int(epoch)
        self._pass = 0
        self._epoch_set = True

    def _next_pass(self) -> Tensor:
        """Replay one pass of ``RandomSampler(generator=g)`` inside a DataLoader sharing ``g``."""
        self._passes += 1
        torch.empty((), dtype=torch.int64).random_(generator=self._generator)  # the loader's worker base seed
        order = torch.randperm(self.size, generator=self._generator)
        torch.randperm(self.size, generator=self._generator)  # RandomSampler's (empty) remainder draw
        return order

    def permutation(self, epoch: int, pass_: int = 0) -> Tensor:
        """The order of pass ``pass_`` of ``epoch`` (pure: the same arguments give the same order)."""
        if pass_ > 0:
            seed = int(np.random.SeedSequence([self.seed, epoch, pass_]).generate_state(1)[0])
            return torch.randperm(self.size, generator=torch.Generator().manual_seed(seed))
        if self._passes > epoch:  # going back (a second fit, or a repeated epoch): replay from the seed
            self._generator = torch.Generator().manual_seed(self.seed)
            self._passes = 0
        while self._passes < epoch:
            self._next_pass()
        return self._next_pass()

    def __iter__(self) -> Iterator[int]:
        order = self.permutation(self.epoch, self._pass).tolist()
        if self._epoch_set:
            self._pass += 1  # the loop owns the epoch: another pass in it is a cycle
        else:
            self.epoch += 1  # nobody sets epochs: every pass is a new epoch
        if self.num_replicas > 1 and order:
            padding = self.total_size - len(order)
            order = (order + order * (padding // len(order) + 1))[: self.total_size]
            order = order[self.rank : self.total_size : self.num_replicas]
        return iter(order)

    def __len__(self) -> int:
        return self.num_samples


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
        num_replicas: int = 1,
        rank: int = 0,
    ) -> DataLoader:
        """A loader over one split. Shuffled loaders use an :class:`EpochShuffleSampler` seeded by
        ``seed`` (default: ``self.seed``), so the order depends on the epoch only and a resumed run
        sees the same batches as an uninterrupted one.

        ``drop_last`` drops a last incomplete batch, unless that would leave no batch at all.
        ``num_replicas``/``rank`` shard a shuffled loader's order across processes (the data
        module's own training loader does this under DDP).
        """
        dataset = self.dataset(which)
        seed = self.seed if seed is None else seed
        sampler = EpochShuffleSampler(len(dataset), seed, num_replicas, rank) if shuffle else None
        size = batch_size or (self.batch_size if shuffle else self.eval_batch_size)
        return DataLoader(
            dataset,
            batch_size=size,
            sampler=sampler,
            drop_last=drop_last and len(dataset) >= size,
            # The loader draws a worker base seed per pass: from its own generator, as before,
            # so shuffling never consumes the global RNG (the order itself comes from the sampler).
            generator=torch.Generator().manual_seed(seed) if shuffle else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def unlearning_dataloader(
        self,
        requires: tuple[str, ...],
        mode: str = "max_size_cycle",
        num_replicas: int = 1,
        rank: int = 0,
        batch_sizes: dict[str, int] | None = None,
    ) -> DataLoader | CombinedLoader | SequentialLoader:
        """The training loader of an unlearner that needs the splits ``requires`` (sharded for ``rank``).

        ``mode`` is a ``CombinedLoader`` mode, or ``sequential``: every batch of the first split,
        then of the next (:class:`~unlearn_pl.data.sequential.SequentialLoader`). ``batch_sizes``
        overrides the batch size of some splits.
        """
        if not requires:
            raise ValueError("an unlearner must require at least one split (retain, forget or train)")
        sizes = batch_sizes or {}
        loaders = {
            name: self.dataloader(name, shuffle=True, num_replicas=num_replicas, rank=rank, batch_size=sizes.get(name))  # type: ignore[arg-type]
            for name in requires
        }
        if mode == "sequential":
            return SequentialLoader(loaders)
        return CombinedLoader(loaders, mode=mode)

    def train_dataloader(self) -> DataLoader | CombinedLoader | SequentialLoader:
        trainer = self.trainer
        module = trainer.lightning_module if trainer is not None else None
        unlearner = getattr(module, "unlearner", None)
        requires, mode = (("retain",), "max_size_cycle") if unlearner is None else (tuple(unlearner.requires), unlearner.combine_mode)
        # Shard here rather than let Lightning wrap the sampler: its wrapper reshuffles with its own
        # seed, so a DDP run would see other batches than a single process with the same seed.
        replicas = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        batch_sizes = getattr(unlearner, "batch_sizes", None)
        return self.unlearning_dataloader(requires, mode, num_replicas=replicas, rank=rank, batch_sizes=batch_sizes)

    def val_dataloader(self) -> list[DataLoader]:
        return [self.dataloader(name) for name in EVAL_SPLITS]  # type: ignore[arg-type]

    def test_dataloader(self) -> list[DataLoader]:
        return self.val_dataloader()

"""``UnlearningDataModule``: one dataset split into retain, forget, validation and test sets."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.combined_loader import CombinedLoader
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from unlearn_pl.data.datasets import (
    IndexedSubset,
    check_dataset,
    dataset_fingerprint,
    dataset_targets,
)
from unlearn_pl.data.readers import DatasetReader, Digits
from unlearn_pl.data.selectors import ForgetSelector, RandomForget
from unlearn_pl.data.sequential import SequentialLoader
from unlearn_pl.data.split import Split, make_split
from unlearn_pl.utils.arguments import (
    HalfOpenFraction,
    NonNegativeInt,
    PositiveInt,
    check_arguments,
)

SplitName = Literal["retain", "forget", "val", "test", "train"]
#: Splits evaluated by validation, in dataloader order (``dataloader_idx`` → name).
EVAL_SPLITS: tuple[str, ...] = ("retain", "forget", "val", "test")


class EpochShuffleSampler(DistributedSampler):
    """``DistributedSampler`` whose order is a pure function of ``(seed, epoch, pass)``.

    torch's ``DistributedSampler`` already derives its order from ``seed + epoch``, so a run
    resumed from a checkpoint (``--ckpt_path``) sees the order the uninterrupted run saw: Lightning
    sets the epoch through :meth:`set_epoch` before every epoch, also on resume. What this class
    adds:

    - Further passes within one epoch (a shorter loader cycled by a ``CombinedLoader`` in
      ``max_size_cycle`` mode) get new orders, from ``(seed, epoch, pass)``; torch's sampler would
      repeat the epoch's order in every cycle.
    - Without any :meth:`set_epoch` call (a plain training loop) every pass advances the epoch.
    - With ``num_replicas`` processes, process ``rank`` takes positions ``rank, rank +
      num_replicas, …`` of that one order (padded by repeating its start, as torch does). So the
      processes' k-th batches of size b together are the single-process k-th batch of size
      ``num_replicas · b``: DDP changes the data of a step only by the padding. Being a
      ``DistributedSampler``, Lightning keeps it instead of injecting its own.

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

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next pass yields (called by Lightning's loops)."""
        self.epoch = int(epoch)
        self._pass = 0
        self._epoch_set = True

    def permutation(self, epoch: int, pass_: int = 0) -> Tensor:
        """The order of pass ``pass_`` of ``epoch`` (pure: the same arguments give the same order)."""
        # SeedSequence mixes the three numbers, so nearby (seed, epoch) pairs give unrelated orders
        # (torch's seed + epoch makes seed 1's epoch 0 the same order as seed 0's epoch 1).
        seed = int(np.random.SeedSequence([self.seed, epoch, pass_]).generate_state(1)[0])
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(seed))

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

    The training loader serves the splits the module asked for through :meth:`serve` (an
    :class:`~unlearn_pl.UnlearningModule` passes its unlearner's ``requires``, ``combine_mode``
    and ``batch_sizes``): a ``CombinedLoader`` of ``{"retain": ..., "forget": ...}`` (one entry
    for a single split), or a :class:`~unlearn_pl.data.sequential.SequentialLoader` for the
    ``"sequential"`` mode. Without such a call it serves the retain set.

    Setup checks the data before anything trains: every label must be a class of the reader
    (``0 … num_classes−1``), in-memory images must be finite, and the dataset must have at
    least two classes.

    Under DDP each process loads ``batch_size`` examples per step, so the global batch is
    ``batch_size × devices`` and results differ from a one-process run with the same settings.
    ``global_batch=True`` instead divides ``batch_size`` across the processes (it must be
    divisible by their number), which keeps the optimization of a one-process run: the
    processes' batches together are the one-process batch, up to the sampler's padding.

    Args:
        dataset: the reader of the train and test splits.
        forget: the forget-set selector.
        val_fraction: share of the (subsampled) training set held out as validation data.
        train_size: subsample the training set to this many examples first (``None``: all).
        test_size: evaluate on this many test examples (``None``: all), one draw that depends on
            nothing else, so every seed, arm and model is scored on the same examples. Each pass
            over Fashion-MNIST's 10k test images costs more than an epoch on a few thousand
            training images; 2,000 still bound a test accuracy to about ±2 points (95%).
        batch_size: batch size of every loader unless a caller overrides it (per process, unless
            ``global_batch``).
        eval_batch_size: batch size of evaluation loaders (default: ``batch_size``).
        num_workers: DataLoader workers.
        seed: seeds the split and the shuffling order.
        manifest: load the split from this manifest instead of drawing it. If the file does
            not exist yet, the drawn split is written there. A loaded manifest wins over
            ``forget``, ``seed``, ``val_fraction`` and ``train_size``; where these differ from
            the ones it records, a warning names both.
        global_batch: ``batch_size`` of the training loader is the global batch, divided across
            processes under DDP (see above).
    """

    def __init__(
        self,
        dataset: DatasetReader | None = None,
        forget: ForgetSelector | None = None,
        val_fraction: HalfOpenFraction = 0.1,
        train_size: PositiveInt | None = None,
        test_size: PositiveInt | None = None,
        batch_size: PositiveInt = 128,
        eval_batch_size: PositiveInt | None = None,
        num_workers: NonNegativeInt = 0,
        seed: int = 0,
        manifest: str | None = None,
        global_batch: bool = False,
    ) -> None:
        super().__init__()
        check_arguments(UnlearningDataModule.__init__, locals())
        self.reader = dataset if dataset is not None else Digits()
        self.selector = forget if forget is not None else RandomForget(0.1)
        self.val_fraction = val_fraction
        self.train_size = train_size
        self.test_size = test_size
        self.batch_size = batch_size
        self.eval_batch_size = eval_batch_size or batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.manifest = manifest
        self.global_batch = global_batch
        self.split: Split | None = None
        self._test_indices: list[int] = []
        self.train_set: Dataset | None = None
        self.test_set: Dataset | None = None
        self._serve: tuple[tuple[str, ...], str, dict[str, int]] = (("retain",), "max_size_cycle", {})

    @property
    def num_classes(self) -> int:
        return self.reader.num_classes

    def setup(self, stage: str | None = None) -> None:
        """Load and check the data, and draw (or load) the split. Idempotent: later calls reuse it."""
        if self.split is not None:
            return
        num_classes = self.num_classes
        if num_classes < 2:
            raise ValueError(
                f"{self.reader.name} has num_classes={num_classes}; unlearning a classifier needs at least 2 classes "
                "(with one, every model is trivially 100% accurate)"
            )
        self.train_set = self.reader.load("train")
        self.test_set = self.reader.load("test")
        check_dataset(self.train_set, num_classes, f"{self.reader.name} train split")
        check_dataset(self.test_set, num_classes, f"{self.reader.name} test split")
        num_test = len(self.test_set)  # type: ignore[arg-type]
        if self.test_size is not None and self.test_size > num_test:
            raise ValueError(f"test_size must be at most {num_test} (the size of {self.reader.name}'s test split); "
                             f"got {self.test_size}")
        self._test_indices = (list(range(num_test)) if self.test_size is None else
                              np.sort(np.random.default_rng(0).choice(num_test, self.test_size, replace=False)).tolist())
        targets = dataset_targets(self.train_set).numpy()
        present = np.unique(targets)
        if len(present) < 2:
            raise ValueError(
                f"{self.reader.name}'s training split holds only class(es) {present.tolist()}; "
                "unlearning a classifier needs examples of at least 2 classes"
            )
        fingerprint = dataset_fingerprint(self.train_set)
        if self.manifest and Path(self.manifest).exists():
            split = self._load_manifest(self.manifest, fingerprint, len(targets))
        else:
            split = make_split(
                targets, num_classes, self.selector,
                val_fraction=self.val_fraction, seed=self.seed,
                dataset=fingerprint, train_size=self.train_size,
            )
            if self.manifest:
                split.save(self.manifest)
        self.split = split

    def _load_manifest(self, path: str, fingerprint: str, num_train: int) -> Split:
        split = Split.load(path)
        if split.dataset != fingerprint:
            raise ValueError(
                f"manifest {path!r} was made for dataset fingerprint {split.dataset!r}, but "
                f"the data read now has fingerprint {fingerprint!r}; use the matching data or another manifest"
            )
        if split.num_train != num_train:
            raise ValueError(
                f"manifest {path!r} records num_train={split.num_train}, but the training split has {num_train} "
                "examples; use the manifest made for this data"
            )
        try:
            split.check(self.num_classes)
        except ValueError as e:
            raise ValueError(f"split manifest {path!r}: {e}") from e
        configured = {"forget": self.selector.describe(), "seed": self.seed,
                      "val_fraction": self.val_fraction, "train_size": self.train_size}
        recorded = {"forget": split.selector, "seed": split.seed,
                    "val_fraction": split.val_fraction, "train_size": split.train_size}
        # Manifests without val_fraction/train_size (None) record nothing to compare for them.
        differ = [k for k in configured if recorded[k] is not None and recorded[k] != configured[k]]
        if differ:
            lines = "; ".join(f"{k}: manifest {recorded[k]!r}, configured {configured[k]!r}" for k in differ)
            rank_zero_warn(f"the split comes from manifest {path!r}, so the configured {', '.join(differ)} "
                           f"are ignored ({lines})")
        return split

    def _require_setup(self) -> Split:
        if self.split is None:
            self.setup()
        assert self.split is not None
        return self.split

    def fingerprint(self, which: SplitName) -> str:
        """Content hash of one split's data (indices, labels, data) — the model cache key part."""
        split = self._require_setup()
        h = hashlib.sha256(split.dataset.encode())
        h.update(np.asarray(self.indices(which), dtype=np.int64).tobytes())
        h.update(repr(sorted(split.relabels.items())).encode())
        return h.hexdigest()[:16]

    def split_fingerprint(self) -> str:
        """Content hash of the whole split (data, retain, forget, validation, relabels).

        Checkpoints record it, so a run cannot resume on another forget set.
        """
        return hashlib.sha256(
            "|".join(self.fingerprint(which) for which in ("retain", "forget", "val", "test")).encode()  # type: ignore[arg-type]
        ).hexdigest()[:16]

    def indices(self, which: SplitName) -> list[int]:
        """Dataset indices of a split (``train`` = retain ∪ forget, sorted)."""
        split = self._require_setup()
        if which == "train":
            return sorted(split.retain + split.forget)
        if which == "test":
            return list(self._test_indices)
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
        A shuffled (training) loader always drops a last batch of one example: BatchNorm cannot
        compute batch statistics from one value per channel and would stop the run.
        ``num_replicas``/``rank`` shard a shuffled loader's order across processes (the data
        module's own training loader does this under DDP).
        """
        dataset = self.dataset(which)
        seed = self.seed if seed is None else seed
        sampler = EpochShuffleSampler(len(dataset), seed, num_replicas, rank) if shuffle else None
        size = batch_size or (self.batch_size if shuffle else self.eval_batch_size)
        per_process = len(sampler) if sampler is not None else len(dataset)
        if shuffle and per_process > size and per_process % size == 1:
            drop_last = True
        return DataLoader(
            dataset,
            batch_size=size,
            sampler=sampler,
            drop_last=drop_last and per_process >= size,
            # The loader draws a worker base seed per pass: from its own generator, so shuffling
            # never consumes the global RNG (the order itself comes from the sampler).
            generator=torch.Generator().manual_seed(seed) if shuffle else None,
            num_workers=self.num_workers,
            persistent_workers=self.num_workers > 0,
        )

    def serve(
        self, requires: tuple[str, ...], mode: str = "max_size_cycle", batch_sizes: dict[str, int] | None = None
    ) -> None:
        """Make the training loader serve the splits ``requires``, combined in ``mode``.

        Called by the module (the data module never looks at the model): e.g.
        ``serve(("retain", "forget"))`` for a two-stream unlearner. ``mode`` is a
        ``CombinedLoader`` mode or ``"sequential"`` (see :meth:`unlearning_dataloader`);
        ``batch_sizes`` overrides the batch size of some splits.
        """
        if not requires:
            raise ValueError("an unlearner must require at least one split (retain, forget or train)")
        unknown = [r for r in requires if r not in ("retain", "forget", "val", "train")]
        if unknown:
            raise ValueError(f"unknown training splits {unknown}; allowed: retain, forget, val, train")
        self._serve = (tuple(requires), mode, dict(batch_sizes or {}))

    def per_process_batch_size(self, world_size: int, batch_size: int | None = None) -> int:
        """The training batch size (``batch_size``, default the module's) of one process among
        ``world_size`` (see ``global_batch``)."""
        size = self.batch_size if batch_size is None else batch_size
        if not self.global_batch or world_size <= 1:
            return size
        if size % world_size:
            raise ValueError(
                f"global_batch=True divides batch_size={size} across {world_size} processes, which "
                f"needs a multiple of {world_size}; set batch_size to e.g. {max(1, size // world_size) * world_size}"
            )
        return size // world_size

    def unlearning_dataloader(
        self,
        requires: tuple[str, ...],
        mode: str = "max_size_cycle",
        num_replicas: int = 1,
        rank: int = 0,
        batch_sizes: dict[str, int] | None = None,
    ) -> CombinedLoader | SequentialLoader:
        """The training loader of an unlearner that needs the splits ``requires`` (sharded for ``rank``).

        ``mode`` is a ``CombinedLoader`` mode, or ``sequential``: every batch of the first split,
        then of the next (:class:`~unlearn_pl.data.sequential.SequentialLoader`). ``batch_sizes``
        overrides the batch size of some splits.
        """
        if not requires:
            raise ValueError("an unlearner must require at least one split (retain, forget or train)")
        sizes = batch_sizes or {}
        loaders = {
            name: self.dataloader(
                name, shuffle=True, num_replicas=num_replicas, rank=rank,  # type: ignore[arg-type]
                batch_size=self.per_process_batch_size(num_replicas, sizes.get(name)),
            )
            for name in requires
        }
        if mode == "sequential":
            return SequentialLoader(loaders)
        return CombinedLoader(loaders, mode=mode)

    def train_dataloader(self) -> CombinedLoader | SequentialLoader:
        requires, mode, batch_sizes = self._serve
        trainer = self.trainer
        # Shard here rather than let Lightning wrap the sampler: its wrapper reshuffles with its own
        # seed, so a DDP run would see other batches than a single process with the same seed.
        replicas = trainer.world_size if trainer is not None else 1
        rank = trainer.global_rank if trainer is not None else 0
        if replicas > 1 and not self.global_batch:
            rank_zero_info(
                f"{replicas} processes with batch_size={self.batch_size} each: the global batch is "
                f"{replicas * self.batch_size}; set data global_batch=true to keep it at {self.batch_size}"
            )
        return self.unlearning_dataloader(requires, mode, num_replicas=replicas, rank=rank, batch_sizes=batch_sizes)

    def val_dataloader(self) -> list[DataLoader]:
        return [self.dataloader(name) for name in EVAL_SPLITS]  # type: ignore[arg-type]

    def test_dataloader(self) -> list[DataLoader]:
        return self.val_dataloader()

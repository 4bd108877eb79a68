"""``UnlearningDataModule``: one dataset split into retain, forget, validation and test sets."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import rank_zero_info
from lightning.pytorch.utilities.combined_loader import CombinedLoader
from torch.utils.data import DataLoader

from unlearn_pl.data.datasets import ArrayDataset, IndexedSubset, dataset_fingerprint, dataset_targets, load_checked
from unlearn_pl.data.loaders import DeviceLoader, loader_options
from unlearn_pl.data.readers import DatasetReader, Digits
from unlearn_pl.data.samplers import EpochShuffleSampler
from unlearn_pl.data.selectors import ForgetSelector, RandomForget
from unlearn_pl.data.sequential import SequentialLoader
from unlearn_pl.data.split import SplitManifest, draw_test_indices, load_or_make_split
from unlearn_pl.data.training_loader import combine, per_process_batch_size, training_splits
from unlearn_pl.protocols import EVAL_SPLITS, CombineMode, MapDataset, SplitName
from unlearn_pl.utils.arguments import HalfOpenFraction, NonNegativeInt, PositiveInt, check_arguments
from unlearn_pl.utils.describe import content_hash


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

    Setup checks the data before anything trains: labels in ``0 … num_classes−1``, finite
    in-memory images, at least two classes.

    Under DDP each process loads ``batch_size`` examples per step (the global batch is
    ``batch_size × devices``); ``global_batch=True`` divides it across the processes instead,
    which keeps the optimization of a one-process run.

    Args:
        dataset: the reader of the train and test splits.
        forget: the forget-set selector.
        val_fraction: share of the (subsampled) training set held out as validation data.
        train_size: subsample the training set to this many examples first (``None``: all).
        test_size: evaluate on this many test examples (``None``: all), one draw that depends on
            nothing else, so every seed, arm and model is scored on the same examples.
        batch_size: batch size of every loader unless a caller overrides it (per process, unless
            ``global_batch``).
        eval_batch_size: batch size of evaluation loaders (default: ``batch_size``).
        num_workers: DataLoader workers (``None``: none for in-memory data, else the cores per process).
        pin_memory: DataLoader ``pin_memory`` (``None``: on when batches go to a CUDA device).
        seed: seeds the split and the shuffling order.
        manifest: load the split from this manifest instead of drawing it. If the file does
            not exist yet, the drawn split is written there. A loaded manifest wins over
            ``forget``, ``seed``, ``val_fraction`` and ``train_size``; where these differ from
            the ones it records, a warning names both.
        global_batch: ``batch_size`` of the training loader is the global batch, divided across
            processes under DDP (see above).
        device_data: keep in-memory data (digits, MNIST, Fashion-MNIST, CIFAR, SVHN) on the device
            and gather each batch there (:class:`~unlearn_pl.data.loaders.DeviceLoader`): the
            batches of the DataLoader, without its per-batch work (``num_workers`` and
            ``pin_memory`` do not apply). File-backed readers are refused.
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
        num_workers: NonNegativeInt | None = None,
        seed: int = 0,
        manifest: str | None = None,
        global_batch: bool = False,
        pin_memory: bool | None = None,
        device_data: bool = False,
    ) -> None:
        super().__init__()
        check_arguments(UnlearningDataModule.__init__, locals())
        self.dataset = dataset if dataset is not None else Digits()
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
        self.pin_memory = pin_memory
        self.device_data = device_data
        self.split: SplitManifest | None = None
        self._test_indices: list[int] = []
        self.train_set: MapDataset | None = None
        self.test_set: MapDataset | None = None
        self._serve: tuple[tuple[str, ...], CombineMode, dict[str, int]] = (("retain",), "max_size_cycle", {})

    #: The splits evaluated, in the order of :meth:`val_dataloader`'s loaders.
    eval_splits: tuple[SplitName, ...] = EVAL_SPLITS

    @property
    def num_classes(self) -> int:
        return self.dataset.num_classes

    @property
    def data_name(self) -> str:
        """The dataset's name (e.g. ``digits``), for messages."""
        return self.dataset.name

    def setup(self, stage: str | None = None) -> None:
        """Load and check the data, and draw (or load) the split. Idempotent: later calls reuse it."""
        if self.split is not None:
            return
        num_classes = self.num_classes
        self.train_set, self.test_set = load_checked(self.dataset)
        if self.device_data and not isinstance(self.train_set, ArrayDataset):
            raise ValueError(
                f"device_data=True keeps in-memory data on the device, but {self.dataset.name} reads files "
                f"({type(self.train_set).__name__}); set device_data=false"
            )
        self._test_indices = draw_test_indices(len(self.test_set), self.test_size, self.dataset.name)
        self.split = load_or_make_split(
            self.manifest,
            dataset_targets(self.train_set).numpy(),
            num_classes,
            self.selector,
            val_fraction=self.val_fraction,
            seed=self.seed,
            dataset=dataset_fingerprint(self.train_set),
            train_size=self.train_size,
        )

    def _require_setup(self) -> SplitManifest:
        if self.split is None:
            self.setup()
        assert self.split is not None
        return self.split

    def fingerprint(self, which: SplitName) -> str:
        """Content hash of one split's data (indices, labels, data) — the model cache key part."""
        split = self._require_setup()
        return content_hash([split.dataset, self.indices(which), sorted(split.relabels.items())])

    def split_fingerprint(self) -> str:
        """Content hash of the whole split (data, retain, forget, validation, relabels).

        Checkpoints record it, so a run cannot resume on another forget set.
        """
        return content_hash([self.fingerprint(which) for which in ("retain", "forget", "val", "test")])

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

    def split_dataset(self, which: SplitName) -> IndexedSubset:
        """The ``(index, x, y)`` dataset of a split; train splits carry the training labels."""
        split = self._require_setup()
        base = self.test_set if which == "test" else self.train_set
        assert base is not None  # setup loaded both with the split
        relabels = {} if which == "test" else split.relabels
        return IndexedSubset(base, self.indices(which), relabels)

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
        device: torch.device | str | None = None,
    ) -> DataLoader | DeviceLoader:
        """A loader over one split. Shuffled loaders use an :class:`EpochShuffleSampler` seeded by
        ``seed`` (default: ``self.seed``): the order depends on the epoch only, also on resume.
        ``device`` is where batches go (default: the trainer's, else the CPU): with ``device_data``
        they are gathered there, and ``pin_memory`` follows it.

        ``drop_last`` drops a last incomplete batch, unless that would leave no batch at all.
        A shuffled (training) loader always drops a last batch of one example: BatchNorm cannot
        compute batch statistics from one value per channel and would stop the run.
        ``num_replicas``/``rank`` shard a shuffled loader's order across processes (the data
        module's own training loader does this under DDP).
        """
        dataset = self.split_dataset(which)
        seed = self.seed if seed is None else seed
        sampler = EpochShuffleSampler(len(dataset), seed, num_replicas, rank) if shuffle else None
        size = batch_size or (self.batch_size if shuffle else self.eval_batch_size)
        per_process = len(sampler) if sampler is not None else len(dataset)
        if shuffle and per_process > size and per_process % size == 1:
            drop_last = True
        drop_last = drop_last and per_process >= size
        trainer = self.trainer
        if device is not None:
            device = torch.device(device)
        else:
            device = trainer.strategy.root_device if trainer else torch.device("cpu")
        if self.device_data:
            return DeviceLoader(dataset, size, device, sampler, drop_last)
        return DataLoader(
            dataset,
            batch_size=size,
            sampler=sampler,
            drop_last=drop_last,
            # The loader draws a worker base seed per pass: from its own generator, so shuffling
            # never consumes the global RNG (the order itself comes from the sampler).
            generator=torch.Generator().manual_seed(seed) if shuffle else None,
            **loader_options(dataset, device, trainer.num_devices if trainer else 1, self.num_workers, self.pin_memory),
        )

    def serve(
        self,
        requires: tuple[str, ...],
        mode: CombineMode = "max_size_cycle",
        batch_sizes: Mapping[str, int] | None = None,
    ) -> None:
        """Make the training loader serve the splits ``requires``, combined in ``mode`` (a
        ``CombinedLoader`` mode or ``"sequential"``), ``batch_sizes`` overriding some splits' batch
        size. Called by the module: the data module never looks at the model."""
        training_splits(requires)
        self._serve = (tuple(requires), mode, dict(batch_sizes or {}))

    def per_process_batch_size(self, world_size: int, batch_size: int | None = None) -> int:
        """The training batch size (default the module's) of one process among ``world_size``."""
        size = self.batch_size if batch_size is None else batch_size
        return per_process_batch_size(size, world_size, self.global_batch)

    def unlearning_dataloader(
        self,
        requires: tuple[str, ...],
        mode: CombineMode = "max_size_cycle",
        num_replicas: int = 1,
        rank: int = 0,
        batch_sizes: dict[str, int] | None = None,
    ) -> CombinedLoader | SequentialLoader:
        """The training loader of an unlearner that needs the splits ``requires`` (sharded for ``rank``).

        ``mode`` is a ``CombinedLoader`` mode, or ``sequential``: every batch of the first split,
        then of the next (:class:`~unlearn_pl.data.sequential.SequentialLoader`). ``batch_sizes``
        overrides the batch size of some splits.
        """
        splits = training_splits(requires)
        sizes = batch_sizes or {}
        loaders: dict[str, DataLoader | DeviceLoader] = {
            name: self.dataloader(
                name,
                shuffle=True,
                num_replicas=num_replicas,
                rank=rank,
                batch_size=self.per_process_batch_size(num_replicas, sizes.get(name)),
            )
            for name in splits
        }
        return combine(loaders, mode)

    def train_dataloader(self) -> CombinedLoader | SequentialLoader:
        requires, mode, batch_sizes = self._serve
        # Shard here rather than let Lightning wrap the sampler: its wrapper reshuffles with its own
        # seed, so a DDP run would see other batches than a single process with the same seed.
        replicas, rank = (self.trainer.world_size, self.trainer.global_rank) if self.trainer is not None else (1, 0)
        if replicas > 1 and not self.global_batch:
            rank_zero_info(
                f"{replicas} processes with batch_size={self.batch_size} each: the global batch is "
                f"{replicas * self.batch_size}; set data global_batch=true to keep it at {self.batch_size}"
            )
        return self.unlearning_dataloader(requires, mode, num_replicas=replicas, rank=rank, batch_sizes=batch_sizes)

    def val_dataloader(self) -> list[DataLoader | DeviceLoader]:
        return [self.dataloader(name) for name in self.eval_splits]

    def test_dataloader(self) -> list[DataLoader | DeviceLoader]:
        return self.val_dataloader()

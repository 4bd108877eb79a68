"""What the plug-ins need from the module and the data, declared as ``Protocol``\\ s.

Localizers, unlearners and metrics are written against these small interfaces, never against
:class:`~unlearn_pl.UnlearningModule` or :class:`~unlearn_pl.data.UnlearningDataModule`
themselves, as Lightning's callbacks take a ``LightningModule`` rather than a subclass. So the
plug-ins sit below the module in the import graph, and a data module of your own works wherever
it provides these members.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol, runtime_checkable

import lightning.pytorch as pl
from torch import Tensor, nn

if TYPE_CHECKING:
    from collections.abc import Iterable

    import torch

#: A split's name: ``train`` is retain ∪ forget.
SplitName = Literal["retain", "forget", "val", "test", "train"]

#: The splits an unlearning data module evaluates, in loader order.
EVAL_SPLITS: tuple[SplitName, ...] = ("retain", "forget", "val", "test")

#: How an unlearner's training splits are combined: a mode of Lightning's ``CombinedLoader``
#: (``sequential``: every batch of one split, then of the next).
CombineMode = Literal["min_size", "max_size_cycle", "max_size", "sequential"]


class MapDataset(Protocol):
    """A map-style dataset: a length, and an example by position.

    What PyTorch's ``DataLoader`` reads of a map-style dataset; ``torch.utils.data.Dataset``
    itself declares ``__getitem__`` only, as its subclasses may leave ``__len__`` out.
    """

    def __len__(self) -> int: ...

    def __getitem__(self, index: int, /) -> Any: ...


@runtime_checkable
class UnlearningData(Protocol):
    """The data an :class:`~unlearn_pl.UnlearningModule` runs on (``UnlearningDataModule`` is one).

    Splits are named ``retain``, ``forget``, ``val``, ``test`` and ``train`` (retain ∪ forget);
    every batch is ``(dataset index, images, labels)``.
    """

    @property
    def data_name(self) -> str:
        """The data's name for messages (e.g. ``digits``)."""

    @property
    def num_classes(self) -> int: ...

    @property
    def eval_splits(self) -> Sequence[str]:
        """The splits evaluated, in the order of the validation loaders."""

    batch_size: int
    eval_batch_size: int

    def setup(self, stage: str | None = None) -> None: ...

    def serve(
        self, requires: tuple[str, ...], mode: CombineMode = ..., batch_sizes: Mapping[str, int] | None = ...
    ) -> None:
        """Make the training loader serve the splits ``requires``, combined in ``mode``."""

    def split_dataset(self, which: SplitName) -> MapDataset:
        """The ``(index, x, y)`` dataset of one split."""

    def dataloader(
        self,
        which: SplitName,
        *,
        shuffle: bool = ...,
        batch_size: int | None = ...,
        seed: int | None = ...,
        drop_last: bool = ...,
        num_replicas: int = ...,
        rank: int = ...,
        device: torch.device | str | None = ...,
    ) -> Iterable[Any]:
        """A loader over one split of ``(index, x, y)`` batches (a ``DataLoader``, or batches
        gathered on ``device`` for data held there)."""

    def fingerprint(self, which: SplitName) -> str:
        """A content hash of one split's data: what a model trained or evaluated on it depends on."""

    def split_fingerprint(self) -> str:
        """A content hash of the whole split (which examples are retain, forget, validation, test)."""


def attached_data(trainer: pl.Trainer) -> Any:
    """The data module attached to ``trainer``, or ``None``. Lightning sets ``trainer.datamodule``
    when one is attached but does not declare the attribute on ``Trainer``, so type checkers miss it."""
    return getattr(trainer, "datamodule", None)


def eval_splits(datamodule: Any) -> tuple[str, ...]:
    """The splits ``datamodule`` evaluates, in loader order (:data:`EVAL_SPLITS` for a data module
    that does not say)."""
    return tuple(datamodule.eval_splits) if isinstance(datamodule, UnlearningData) else EVAL_SPLITS


class UnlearningModel(Protocol):
    """What localizers, unlearners and metrics use of the module that runs them."""

    @property
    def network(self) -> nn.Module:
        """The network being unlearned."""

    @property
    def trainer(self) -> pl.Trainer: ...

    @property
    def device(self) -> Any: ...

    @property
    def current_epoch(self) -> int: ...

    #: The reference-model provider; ``references.recipe`` is how the original and oracle were trained.
    references: Any
    localizer: Any
    unlearner: Any

    @property
    def reference_results(self) -> Any:
        """The reference models' per-example results this evaluation reuses, with their key (or ``None``)."""

    @property
    def masks(self) -> dict[str, Tensor]:
        """The localizer's masks (``True``: the scalar may change)."""

    @property
    def initial_network(self) -> nn.Module:
        """The untrained network the reference models were trained from."""

    def reference(self, name: str) -> nn.Module:
        """A frozen reference model, ``original`` or ``oracle``."""

    def per_example(self) -> dict[str, dict[str, dict[str, Tensor]]]:
        """``{model: {split: {field: tensor}}}`` of the current evaluation epoch."""

    # Lightning's own methods, as an unlearner calls them (``log``; with manual optimization,
    # ``optimizers`` and ``manual_backward``).
    @property
    def log(self) -> Callable[..., None]: ...

    @property
    def manual_backward(self) -> Callable[..., None]: ...

    @property
    def optimizers(self) -> Callable[..., Any]: ...

"""``Unlearner``: the extension point that defines what unlearning optimizes."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor

from unlearn_pl.protocols import CombineMode, UnlearningModel

#: One batch of a split: ``(dataset index, images, labels)``.
Batch = tuple[Tensor, Tensor, Tensor]


class Unlearner(Callback, ABC):
    """Base class of unlearning algorithms.

    An unlearner is a Lightning callback (for set-up work such as a reset or a teacher copy, in
    its hooks) that the :class:`~unlearn_pl.UnlearningModule` delegates ``training_step`` and
    ``configure_optimizers`` to. Whatever it optimizes, the localizer's mask limits which
    scalars change.

    Class attributes declare capabilities that the framework reads:

    - ``requires``: the splits the training loader serves, e.g. ``("retain",)`` or
      ``("retain", "forget")``. ``training_step`` receives a dict keyed by these names.
    - ``combine_mode``: how several splits are combined: a Lightning ``CombinedLoader`` mode
      (``max_size_cycle`` pairs batches and cycles the shorter split), or ``sequential`` —
      every batch of the first split, then of the next, each as ``{name: batch}`` (see
      :class:`~unlearn_pl.data.sequential.SequentialLoader`; SCRUB's authors' order).
    - ``batch_sizes`` (optional): ``{split: batch size}`` for splits whose training batch size
      differs from the data module's (e.g. SCRUB's ``forget_batch_size``).
    - ``automatic_optimization``: set ``False`` to step optimizers yourself (e.g. SCRUB).

    Class attributes may be overridden per instance when they depend on arguments (SCRUB's
    ``order`` sets its ``requires`` and ``combine_mode``).

    Example — plain fine-tuning on the retain set::

        class Finetune(Unlearner):
            requires = ("retain",)

            def __init__(self, lr: float = 0.01):
                self.lr = lr

            def training_step(self, module, batch, batch_idx):
                _, x, y = batch["retain"]
                return F.cross_entropy(module.network(x), y)

            def configure_optimizers(self, module):
                return torch.optim.SGD(module.network.parameters(), lr=self.lr)
    """

    requires: tuple[str, ...] = ("retain",)
    combine_mode: CombineMode = "max_size_cycle"
    batch_sizes: dict[str, int] = {}  # read-only default; instances assign their own
    automatic_optimization: ClassVar[bool] = True

    @abstractmethod
    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> Tensor | None:
        """One unlearning step; returns the loss to minimize (automatic optimization) or ``None``."""

    def training_epochs(self, recipe: Any, configured: int | None) -> int | None:
        """The epochs this unlearner trains: the trainer's ``configured`` ``max_epochs``, unless the
        unlearner sets them itself (``Retrain`` trains the recipe's epochs, or its own)."""
        return configured

    @abstractmethod
    def configure_optimizers(self, module: UnlearningModel) -> OptimizerLRScheduler:
        """Optimizers (and schedulers) over ``module.network``'s parameters, in Lightning's format."""

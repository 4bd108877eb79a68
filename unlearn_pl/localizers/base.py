"""``Localizer``: the extension point that decides which parameters an unlearner may change."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Literal

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.utils.data import DataLoader

from unlearn_pl.functional.masks import MaskGuard, check_masks, selected_fraction
from unlearn_pl.protocols import UnlearningModel, attached_data
from unlearn_pl.utils.arguments import PositiveFraction, PositiveInt, check_arguments

LocalizationData = Literal["forget", "train", "retain"]
#: A fraction of the trainable scalars, in (0, 1] (a jsonargparse restricted type: the parser
#: rejects other values in one line; from Python, :func:`~unlearn_pl.utils.arguments.check_arguments` does).
Budget = PositiveFraction


class Localizer(Callback, ABC):
    """Base class of localizers: subclasses implement :meth:`localize`; the base does the rest.

    As a Lightning callback, a localizer computes its masks once at fit start, on rank 0, and
    broadcasts them so every process agrees; then it *enforces* them during training: gradients
    of unselected scalars are zeroed after backward and their values restored after every
    optimizer step by an optimizer post-step hook (weight decay and momentum would otherwise
    move them). Masks are part of the callback state, so a resumed run keeps its mask.

    Args:
        budget: fraction of trainable scalars to select, in (0, 1]; ``None`` for a localizer that
            selects by a rule of its own (names, layers) rather than to a budget.
        data: which split :meth:`localize` receives: ``forget`` (default), ``train``
            (retain ∪ forget) or ``retain``. Ignored when ``requires_data`` is false.
        batch_size: batch size of the localization loader (``None``: the data module's
            evaluation batch size). Matters only to ``aggregate="batch_sum"`` scores.
        drop_last: drop a last incomplete batch of the localization loader, as the DEL
            authors' forget loader does (DEL-Unlearning/unlearning_datasets.py:270).

    Example — a localizer that selects the classifier head only::

        class HeadOnly(Localizer):
            requires_data = False

            def localize(self, model, dataloader):
                return {n: torch.full_like(p, n.startswith("head"), dtype=torch.bool)
                        for n, p in model.named_parameters()}
    """

    @property
    def requires_data(self) -> bool:
        """Whether :meth:`localize` needs a dataloader; data-free localizers get ``None``.
        A subclass sets it as a class attribute (``requires_data = False``) or a property."""
        return True

    def __init__(
        self,
        budget: Budget | None = None,
        data: LocalizationData = "forget",
        batch_size: PositiveInt | None = None,
        drop_last: bool = False,
    ) -> None:
        check_arguments(Localizer.__init__, locals())
        self.budget = budget
        self.data = data
        self.batch_size = batch_size
        self.drop_last = drop_last
        self.masks: dict[str, Tensor] | None = None
        self._guard: MaskGuard | None = None
        self._hooks: list[Any] = []

    @abstractmethod
    def localize(self, model: nn.Module, dataloader: DataLoader | None) -> dict[str, Tensor]:
        """Return a boolean mask (``True`` = may change) for every trainable parameter by name."""

    def localization_loader(self, datamodule: Any) -> DataLoader:
        """The loader :meth:`localize` receives: the ``data`` split, in order (not shuffled), from
        ``datamodule.dataloader(split, **options)`` (an :class:`~unlearn_pl.protocols.UnlearningData`'s)."""
        options: dict[str, Any] = {}
        # Only what was asked for, so a data module whose dataloader() has fewer options works.
        if self.batch_size is not None:
            options["batch_size"] = self.batch_size
        if self.drop_last:
            options["drop_last"] = True
        return datamodule.dataloader(self.data, **options)

    # ----------------------------------------------------------------- Lightning glue
    def ensure_masks(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> dict[str, Tensor]:
        """Compute the masks once (rank 0) and broadcast them so every process agrees. Idempotent."""
        if self.masks is None:
            masks = None
            if trainer.is_global_zero:
                loader = self.localization_loader(attached_data(trainer)) if self.requires_data else None
                masks = {n: m.detach().bool().cpu() for n, m in self.localize(pl_module.network, loader).items()}
            self.masks = masks = trainer.strategy.broadcast(masks, src=0)
            assert masks is not None
            budget = f" (budget {self.budget:.1%})" if self.budget is not None and self.budget < 1.0 else ""
            rank_zero_info(
                f"{type(self).__name__}: selected {selected_fraction(masks):.1%} of the trainable parameters{budget}"
            )
        assert self.masks is not None
        return self.masks

    @property
    def selection_budget(self) -> float:
        """The budget of a localizer that selects to one (its constructor requires it)."""
        if self.budget is None:
            raise ValueError(f"{type(self).__name__} selects to a budget; give budget= in (0, 1]")
        return self.budget

    def on_fit_start(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:  # type: ignore[override]  # run by UnlearningModule only
        # Whether an unlearner's fit-start work (a reset, a dampening) ran before this or not,
        # it changed selected scalars only, so the guard's snapshot of the unselected ones is the
        # original's either way.
        masks = self.ensure_masks(trainer, pl_module)
        check_masks(pl_module.network, masks)
        self._guard = guard = MaskGuard(pl_module.network, masks)
        # Restore after *every* optimizer step — also the several steps per batch that
        # manual-optimization unlearners (e.g. SCRUB) take — so no later forward pass sees
        # drifted values.
        self._hooks = [opt.register_step_post_hook(lambda *_: guard.restore()) for opt in trainer.optimizers]

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._guard is not None:
            self._guard.zero_grads()

    def _stop_enforcing(self) -> None:
        if self._guard is not None:
            self._guard.restore()
        for hook in self._hooks:
            hook.remove()
        self._hooks = []
        self._guard = None

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._stop_enforcing()

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self._stop_enforcing()

    def state_dict(self) -> dict[str, Any]:
        return {"masks": self.masks}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.masks = state_dict.get("masks")
        self._guard = None

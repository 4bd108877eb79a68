"""Relabeling unlearners: Random Label, and SalUn (Random Label on the salient scalars only)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor

from unlearn_pl.functional.masks import MaskGuard, selected_fraction
from unlearn_pl.localizers.saliency import SalUnSaliency
from unlearn_pl.unlearners.base import Batch
from unlearn_pl.unlearners.optim import SGDUnlearner, check_non_negative

if TYPE_CHECKING:
    from unlearn_pl.module import UnlearningModule


def random_wrong_labels(y: Tensor, num_classes: int, generator: torch.Generator) -> Tensor:
    """A uniformly random label different from ``y`` for every example (drawn on CPU from ``generator``)."""
    if num_classes < 2:
        raise ValueError(f"random wrong labels need at least 2 classes; got {num_classes}")
    shift = torch.randint(1, num_classes, y.shape, generator=generator)  # never 0: always wrong
    return (y + shift.to(y.device)) % num_classes


class RandomLabel(SGDUnlearner):
    """Random Label (Golatkar et al., 2020; SalUn's RL): ``CE(R, y) + w·CE(F, ỹ)``, ``ỹ ≠ y`` random.

    Fresh wrong labels are drawn every step from a seeded generator whose state is saved in
    checkpoints, so runs and resumed runs are reproducible.

    Args:
        forget_weight: weight ``w`` of the forget term.
        lr: SGD learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        final_lr_fraction: the per-step cosine schedule ends at this fraction of ``lr``.
        seed: seed of the random labels.
    """

    requires = ("retain", "forget")
    combine_mode = "max_size_cycle"

    def __init__(
        self,
        forget_weight: float = 1.0,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        final_lr_fraction: float = 1.0,
        seed: int = 0,
    ) -> None:
        check_non_negative("forget_weight", forget_weight)
        self.init_sgd(lr, momentum, weight_decay, final_lr_fraction)
        self.forget_weight = forget_weight
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def training_step(self, module: UnlearningModule, batch: dict[str, Batch], batch_idx: int) -> Tensor:
        _, xr, yr = batch["retain"]
        _, xf, yf = batch["forget"]
        retain = F.cross_entropy(module.network(xr), yr)
        logits_f = module.network(xf)
        forget = F.cross_entropy(logits_f, random_wrong_labels(yf, logits_f.shape[1], self.generator))
        module.log("train/retain_loss", retain.detach())
        module.log("train/forget_relabel_loss", forget.detach())
        return retain + self.forget_weight * forget

    def state_dict(self) -> dict[str, Any]:
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        if "generator" in state_dict:
            self.generator.set_state(state_dict["generator"])


class SalUn(RandomLabel):
    """SalUn (Fan et al., ICLR 2024): Random Label restricted to the salient scalars.

    At fit start SalUn computes its saliency mask — the top ``saliency_budget`` of
    ``|∇θ (−CE on F)|`` (:class:`~unlearn_pl.localizers.SalUnSaliency`), on the original model —
    and enforces it like a localizer's mask (gradients zeroed, values restored). It acts *on top
    of* the module's localizer, so the scalars that change are the intersection of both masks:
    with the default ``Full`` localizer this is SalUn as published, and it composes with any
    other localizer. With ``saliency_budget=None`` SalUn adds no mask of its own and is Random
    Label under the module's localizer — use that with ``SalUnSaliency(budget=0.5)`` as the
    localizer to make the saliency mask the run's (reported, checkpointed) mask.

    Args:
        saliency_budget: fraction of scalars in the saliency mask (SalUn: 0.5), or ``None``.
        forget_weight: weight of the random-label forget term.
        lr: SGD learning rate.
        momentum: SGD momentum.
        weight_decay: SGD weight decay.
        final_lr_fraction: the per-step cosine schedule ends at this fraction of ``lr``.
        seed: seed of the random labels.
    """

    def __init__(
        self,
        saliency_budget: float | None = 0.5,
        forget_weight: float = 1.0,
        lr: float = 0.01,
        momentum: float = 0.9,
        weight_decay: float = 5e-4,
        final_lr_fraction: float = 1.0,
        seed: int = 0,
    ) -> None:
        super().__init__(forget_weight, lr, momentum, weight_decay, final_lr_fraction, seed)
        # Validate now (same rules as the localizer), not at fit start.
        self.saliency = SalUnSaliency(budget=saliency_budget) if saliency_budget is not None else None
        self.saliency_budget = saliency_budget
        self.saliency_masks: dict[str, Tensor] | None = None
        self._guard: MaskGuard | None = None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: UnlearningModule) -> None:
        super().on_fit_start(trainer, pl_module)
        if self.saliency is None:
            return
        if self.saliency_masks is None:
            masks = None
            if trainer.is_global_zero:
                loader = trainer.datamodule.dataloader("forget")
                masks = {n: m.cpu() for n, m in self.saliency.localize(pl_module.network, loader).items()}
            self.saliency_masks = trainer.strategy.broadcast(masks, src=0)
            rank_zero_info(f"SalUn: saliency mask selects {selected_fraction(self.saliency_masks):.1%} of the parameters")
        self._guard = MaskGuard(pl_module.network, self.saliency_masks)

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._guard is not None:
            self._guard.zero_grads()

    def on_train_batch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule, *args: Any) -> None:
        if self._guard is not None:
            self._guard.restore()

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._guard is not None:
            self._guard.restore()
        self._guard = None

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "saliency_masks": self.saliency_masks}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        self.saliency_masks = state_dict.get("saliency_masks")
        self._guard = None

"""Relabeling unlearners: Random Label, and SalUn (Random Label on the salient scalars only)."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
import torch
import torch.nn.functional as F
from torch import Tensor

from unlearn_pl.localizers.base import Budget
from unlearn_pl.localizers.saliency import Aggregate, SalUnSaliency
from unlearn_pl.protocols import UnlearningModel
from unlearn_pl.unlearners.base import Batch
from unlearn_pl.unlearners.sgd import SGDUnlearner
from unlearn_pl.utils.arguments import NonNegativeFloat, check_arguments


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
        seed: seed of the random labels.
        **kwargs: the SGD fields of :class:`~unlearn_pl.unlearners.SGDUnlearner`.
    """

    requires = ("retain", "forget")
    combine_mode = "max_size_cycle"

    def __init__(self, forget_weight: NonNegativeFloat = 1.0, seed: int = 0, **kwargs: Any) -> None:
        check_arguments(RandomLabel.__init__, locals())
        super().__init__(**kwargs)
        self.forget_weight = forget_weight
        self.seed = seed
        self.generator = torch.Generator().manual_seed(seed)

    def training_step(self, module: UnlearningModel, batch: dict[str, Batch], batch_idx: int) -> Tensor:
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

    SalUn holds a :class:`~unlearn_pl.localizers.SalUnSaliency` localizer and forwards its
    Lightning hooks to it, so the saliency mask is computed (at fit start, on the original
    model, rank 0 then broadcast), enforced (gradients zeroed after backward, values restored
    after every optimizer step) and checkpointed exactly as a module's localizer mask is. It
    acts *on top of* the module's localizer, so the scalars that change are the intersection of
    both masks: with the default ``Full`` localizer this is SalUn as published, and it composes
    with any other localizer. With ``saliency_budget=None`` SalUn adds no mask of its own and
    is Random Label under the module's localizer — use that with ``SalUnSaliency(budget=0.5)``
    as the localizer to make the saliency mask the run's (reported) mask.

    Args:
        saliency_budget: fraction of scalars in the saliency mask (SalUn: 0.5), or ``None``.
        saliency_aggregate: how the saliency gradient is aggregated over forget batches:
            ``mean`` or ``batch_sum`` (the authors' code; see
            :class:`~unlearn_pl.localizers.SalUnSaliency`).
        forget_weight: weight of the random-label forget term.
        seed: seed of the random labels.
        **kwargs: the SGD fields of :class:`~unlearn_pl.unlearners.SGDUnlearner`.
    """

    def __init__(
        self,
        saliency_budget: Budget | None = 0.5,
        saliency_aggregate: Aggregate = "mean",
        forget_weight: NonNegativeFloat = 1.0,
        seed: int = 0,
        **kwargs: Any,
    ) -> None:
        super().__init__(forget_weight=forget_weight, seed=seed, **kwargs)
        # Built (so validated) now, not at fit start.
        self.saliency = (
            SalUnSaliency(budget=saliency_budget, aggregate=saliency_aggregate) if saliency_budget is not None else None
        )
        self.saliency_budget = saliency_budget
        self.saliency_aggregate = saliency_aggregate

    @property
    def saliency_masks(self) -> dict[str, Tensor] | None:
        """The saliency mask (``None`` before fit start or without ``saliency_budget``)."""
        return self.saliency.masks if self.saliency is not None else None

    def on_fit_start(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:  # type: ignore[override]  # run by UnlearningModule only
        super().on_fit_start(trainer, pl_module)  # type: ignore[arg-type]  # run by UnlearningModule only
        if self.saliency is not None:
            self.saliency.on_fit_start(trainer, pl_module)

    def on_after_backward(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.saliency is not None:
            self.saliency.on_after_backward(trainer, pl_module)

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self.saliency is not None:
            self.saliency.on_fit_end(trainer, pl_module)

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        if self.saliency is not None:
            self.saliency.on_exception(trainer, pl_module, exception)

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "saliency_masks": self.saliency_masks}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        super().load_state_dict(state_dict)
        if self.saliency is not None:
            self.saliency.load_state_dict({"masks": state_dict.get("saliency_masks")})

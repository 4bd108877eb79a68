"""SalUn's gradient saliency (Fan et al., ICLR 2024): the scalars that forgetting pulls hardest."""

from __future__ import annotations

from torch import Tensor, nn
from torch.utils.data import DataLoader

from unlearn_pl.functional.grouping import masks_from_scores
from unlearn_pl.functional.scores import loss_gradients
from unlearn_pl.localizers.base import LocalizationData, Localizer


class SalUnSaliency(Localizer):
    """Parameter-level saliency mask: ``|∇θ (−CE on the forget set)|`` above the global quantile.

    The top ``budget`` fraction of all scalars by saliency is selected (one global ranking, no
    grouping; ties are broken by parameter order then position, so masks are reproducible). The
    gradient is taken with the model in eval mode, averaged over the forget examples (SalUn's
    sum over batches differs by a positive factor, which leaves the ranking unchanged).

    Pair with :class:`~unlearn_pl.unlearners.RandomLabel` for SalUn as published; the
    :class:`~unlearn_pl.unlearners.SalUn` unlearner builds this same mask itself.

    Args:
        budget: fraction of trainable scalars to select (SalUn: 0.5).
        data: ``forget`` (default), ``train`` or ``retain``: where the gradient is taken.
    """

    def __init__(self, budget: float = 0.5, data: LocalizationData = "forget") -> None:
        super().__init__(budget=budget, data=data)

    def saliency(self, model: nn.Module, dataloader: DataLoader) -> dict[str, Tensor]:
        """``|mean gradient of −CE|`` per scalar over ``dataloader``."""
        return {n: g.abs() for n, g in loss_gradients(model, dataloader, sign=-1.0).items()}

    def localize(self, model: nn.Module, dataloader: DataLoader | None) -> dict[str, Tensor]:
        if dataloader is None:
            raise ValueError("SalUnSaliency needs the forget-set dataloader; got None")
        # Parameter granularity makes every scalar its own group: the global top-budget ranking.
        return masks_from_scores(self.saliency(model, dataloader), self.budget, "parameter", top_h=1.0)

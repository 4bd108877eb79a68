"""SalUn's gradient saliency (Fan et al., ICLR 2024): the scalars that forgetting pulls hardest."""

from __future__ import annotations

from torch import Tensor, nn
from torch.utils.data import DataLoader

from unlearn_pl.functional.grouping import BudgetRounding, masks_from_scores
from unlearn_pl.functional.scores import Aggregate, loss_gradients
from unlearn_pl.localizers.base import Budget, LocalizationData, Localizer
from unlearn_pl.utils.arguments import PositiveInt, check_arguments

__all__ = ["Aggregate", "SalUnSaliency"]


class SalUnSaliency(Localizer):
    """Parameter-level saliency mask: ``|∇θ (−CE on the forget set)|`` above the global quantile.

    The top ``budget`` fraction of all scalars by saliency is selected (one global ranking, no
    grouping; ties are broken by parameter order then position, so masks are reproducible). The
    gradient is taken with the model in eval mode.

    - ``aggregate="mean"`` (default): the mean gradient over all forget examples, and
      ``ceil(budget · N)`` scalars. The result does not depend on the batch size.
    - ``aggregate="batch_sum"``: the authors' code (Unlearn-Saliency/Classification/
      generate_mask.py:30-77): the *sum of per-batch mean* gradients and exactly
      ``int(budget · N)`` scalars. On equal batches the two gradients differ by a positive
      factor (the number of batches) and rank the same; when the last batch is smaller its
      examples weigh more, and the masks differ (see ``docs/fidelity.md`` for how much).

    Pair with :class:`~unlearn_pl.unlearners.RandomLabel` for SalUn as published; the
    :class:`~unlearn_pl.unlearners.SalUn` unlearner builds this same mask itself.

    Args:
        budget: fraction of trainable scalars to select (SalUn: 0.5).
        data: ``forget`` (default), ``train`` or ``retain``: where the gradient is taken.
        aggregate: ``mean`` (default) or ``batch_sum`` (the authors' code, see above).
        batch_size: batch size of the localization loader (``None``: the data module's).
        drop_last: drop the last incomplete localization batch (SalUn's forget loader keeps it).
    """

    def __init__(
        self,
        budget: Budget = 0.5,
        data: LocalizationData = "forget",
        aggregate: Aggregate = "mean",
        batch_size: PositiveInt | None = None,
        drop_last: bool = False,
    ) -> None:
        super().__init__(budget=budget, data=data, batch_size=batch_size, drop_last=drop_last)
        check_arguments(SalUnSaliency.__init__, locals())
        self.aggregate = aggregate

    def saliency(self, model: nn.Module, dataloader: DataLoader) -> dict[str, Tensor]:
        """``|gradient of −CE|`` per scalar over ``dataloader``, aggregated by ``aggregate``."""
        return {n: g.abs() for n, g in loss_gradients(model, dataloader, sign=-1.0, aggregate=self.aggregate).items()}

    def localize(self, model: nn.Module, dataloader: DataLoader | None) -> dict[str, Tensor]:
        if dataloader is None:
            raise ValueError("SalUnSaliency needs the forget-set dataloader; got None")
        # Parameter granularity makes every scalar its own group: the global top-budget ranking.
        rounding: BudgetRounding = "exact" if self.aggregate == "batch_sum" else "group"
        return masks_from_scores(
            self.saliency(model, dataloader), self.selection_budget, "parameter", top_h=1.0, budget_rounding=rounding
        )

"""DEL — Deletion by Example Localization (Torkzadehmahani et al., 2024), SPEC §3."""

from __future__ import annotations

from torch import Tensor, nn
from torch.utils.data import DataLoader

from unlearn_pl.functional.grouping import GRANULARITIES, Granularity, TopHOf, masks_from_scores, top_h_count
from unlearn_pl.functional.scores import SCORES, Score, criticality_scores
from unlearn_pl.localizers.base import LocalizationData, Localizer


class DEL(Localizer):
    """Selects the output channels most critical to the forget set.

    1. Score every scalar by ``|θ · g|``, ``g`` the mean cross-entropy gradient over the forget
       set with the model in eval mode.
    2. Group scalars by output channel (a conv filter, a linear neuron; 1-D tensors per element).
    3. Score a group by the mean of its top-h scalars, ``h = max(1, ceil(top_h · group size))``.
    4. Rank all groups globally and take whole groups until ``budget`` of the scalars is selected.

    Args:
        budget: fraction of trainable scalars to select (paper: 0.1–0.3).
        top_h: fraction of a group's scalars averaged into its score, in (0, 1].
        top_h_of: ``group`` (the paper's reading) or ``channels`` — the authors' public code,
            where ``h = int(top_h · C_out)`` of the tensor whatever the group size; use
            ``top_h=1.0`` for their ViT variant (plain mean).
        score: ``weighted_grad`` (default), ``grad`` or ``magnitude`` (ablation).
        data: ``forget`` (default) or ``train`` (ablation: gradients over retain ∪ forget).
        granularity: ``channel`` (default), ``parameter`` or ``layer`` (ablation).
    """

    def __init__(
        self,
        budget: float = 0.3,
        top_h: float = 0.1,
        top_h_of: TopHOf = "group",
        score: Score = "weighted_grad",
        data: LocalizationData = "forget",
        granularity: Granularity = "channel",
    ) -> None:
        super().__init__(budget=budget, data=data)
        if score not in SCORES:
            raise ValueError(f"score must be one of {SCORES}; got {score!r}")
        if granularity not in GRANULARITIES:
            raise ValueError(f"granularity must be one of {GRANULARITIES}; got {granularity!r}")
        top_h_count(1, 1, top_h, top_h_of)  # validates top_h and top_h_of
        self.top_h = top_h
        self.top_h_of = top_h_of
        self.score = score
        self.granularity = granularity

    @property
    def requires_data(self) -> bool:  # type: ignore[override]
        return self.score != "magnitude"

    def localize(self, model: nn.Module, dataloader: DataLoader | None) -> dict[str, Tensor]:
        scores = criticality_scores(model, dataloader, self.score)
        return masks_from_scores(scores, self.budget, self.granularity, self.top_h, self.top_h_of)

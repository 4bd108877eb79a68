"""Pure tensor functions behind localizers and unlearners; tested on hand-made tensors."""

from unlearn_pl.functional.grouping import (
    check_budget,
    group_scores,
    make_units,
    masks_from_scores,
    select_to_budget,
    top_h_count,
)
from unlearn_pl.functional.init import fresh_parameters, reset_selected_
from unlearn_pl.functional.masks import MaskGuard, check_masks, selected_fraction
from unlearn_pl.functional.scores import criticality_scores, loss_gradients, trainable_parameters

__all__ = [
    "check_budget", "group_scores", "make_units", "masks_from_scores", "select_to_budget", "top_h_count",
    "fresh_parameters", "reset_selected_", "MaskGuard", "check_masks", "selected_fraction", "criticality_scores", "loss_gradients",
    "trainable_parameters",
]

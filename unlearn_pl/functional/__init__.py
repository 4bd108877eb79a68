"""Pure tensor functions behind localizers and unlearners; tested on hand-made tensors."""

from unlearn_pl.functional.bootstrap import (
    bootstrap_many_over_models,
    bootstrap_over_models,
    smoothed_bootstrap_over_models,
)
from unlearn_pl.functional.challenge_epsilons import forgetting_epsilons
from unlearn_pl.functional.challenge_logits import challenge_confidence
from unlearn_pl.functional.challenge_scoring import (
    challenge_score,
    epsilon_buckets,
    epsilon_histogram,
    epsilon_points,
    forgetting_quality,
)
from unlearn_pl.functional.divergence import distillation_kl
from unlearn_pl.functional.fisher import dampen_, fisher_diagonal, ssd_factors
from unlearn_pl.functional.grouping import (
    check_budget,
    group_scores,
    make_units,
    masks_from_scores,
    select_to_budget,
    top_h_count,
    within_tensor_cap,
)
from unlearn_pl.functional.init import fresh_parameters, reset_selected_
from unlearn_pl.functional.margin_divergence import KLOMSummary, klom, klom_margins, summarize_klom
from unlearn_pl.functional.masks import MaskGuard, check_masks, selected_fraction
from unlearn_pl.functional.membership import loss_attack, mia_efficacy
from unlearn_pl.functional.regions import (
    Plane,
    make_plane,
    plane_grid,
    plane_points,
    predict_plane,
    region_similarity,
)
from unlearn_pl.functional.regularizers import l1_norm, linear_decay
from unlearn_pl.functional.scores import criticality_scores, loss_gradients, trainable_parameters
from unlearn_pl.functional.selection import block_of, blocks, matches_prefix, random_group_scores

__all__ = [
    "check_budget",
    "group_scores",
    "make_units",
    "masks_from_scores",
    "select_to_budget",
    "top_h_count",
    "within_tensor_cap",
    "fresh_parameters",
    "reset_selected_",
    "MaskGuard",
    "check_masks",
    "selected_fraction",
    "loss_attack",
    "mia_efficacy",
    "criticality_scores",
    "loss_gradients",
    "trainable_parameters",
    "distillation_kl",
    "dampen_",
    "fisher_diagonal",
    "ssd_factors",
    "l1_norm",
    "linear_decay",
    "block_of",
    "blocks",
    "matches_prefix",
    "random_group_scores",
    "Plane",
    "make_plane",
    "plane_grid",
    "plane_points",
    "predict_plane",
    "region_similarity",
    "challenge_confidence",
    "challenge_score",
    "epsilon_buckets",
    "epsilon_histogram",
    "epsilon_points",
    "forgetting_epsilons",
    "forgetting_quality",
    "KLOMSummary",
    "klom",
    "klom_margins",
    "summarize_klom",
    "bootstrap_many_over_models",
    "bootstrap_over_models",
    "smoothed_bootstrap_over_models",
]

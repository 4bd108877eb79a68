"""Unlearners: what unlearning optimizes (any unlearner works with any localizer)."""

from unlearn_pl.unlearners.base import Batch, Unlearner
from unlearn_pl.unlearners.reset_finetune import ResetFinetune

__all__ = ["Batch", "Unlearner", "ResetFinetune"]

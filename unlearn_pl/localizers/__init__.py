"""Localizers: which parameters an unlearner may change (``localize(model, dataloader) -> masks``)."""

from unlearn_pl.localizers.base import Localizer
from unlearn_pl.localizers.baselines import Full
from unlearn_pl.localizers.del_ import DEL

__all__ = ["Localizer", "DEL", "Full"]

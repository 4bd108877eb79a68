"""Localizers: which parameters an unlearner may change (``localize(model, dataloader) -> masks``)."""

from unlearn_pl.localizers.base import Localizer
from unlearn_pl.localizers.baselines import Full, Gradient, Layers, Magnitude, Random
from unlearn_pl.localizers.del_ import DEL
from unlearn_pl.localizers.saliency import SalUnSaliency

__all__ = ["Localizer", "DEL", "Full", "Random", "Magnitude", "Gradient", "SalUnSaliency", "Layers"]

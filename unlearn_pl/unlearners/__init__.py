"""Unlearners: what unlearning optimizes (any unlearner works with any localizer)."""

from unlearn_pl.unlearners.base import Batch, Unlearner
from unlearn_pl.unlearners.batchnorm import (
    BatchNormRecalibration,
    recalibrate_batchnorm,
)
from unlearn_pl.unlearners.finetune import Finetune, L1Sparse
from unlearn_pl.unlearners.gradient_ascent import NegGrad, NegGradPlus
from unlearn_pl.unlearners.noop import NoOp
from unlearn_pl.unlearners.relabel import RandomLabel, SalUn
from unlearn_pl.unlearners.reset_finetune import ResetFinetune
from unlearn_pl.unlearners.retrain import Retrain
from unlearn_pl.unlearners.scrub import SCRUB
from unlearn_pl.unlearners.sgd import SGDUnlearner
from unlearn_pl.unlearners.ssd import SSD

__all__ = [
    "Batch",
    "Unlearner",
    "SGDUnlearner",
    "BatchNormRecalibration",
    "recalibrate_batchnorm",
    "ResetFinetune",
    "Finetune",
    "L1Sparse",
    "NegGrad",
    "NegGradPlus",
    "NoOp",
    "RandomLabel",
    "SalUn",
    "SCRUB",
    "SSD",
    "Retrain",
]

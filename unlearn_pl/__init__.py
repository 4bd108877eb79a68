"""unlearn_pl — PyTorch Lightning modules for machine unlearning of image classifiers."""

from unlearn_pl.classifier import ClassifierModule, TrainingRecipe
from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.module import UnlearningModule
from unlearn_pl.references import ReferenceModels

__version__ = "0.1.0"
__all__ = ["ClassifierModule", "TrainingRecipe", "UnlearningDataModule", "UnlearningModule", "ReferenceModels"]

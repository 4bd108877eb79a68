"""unlearn_pl — PyTorch Lightning modules for machine unlearning of image classifiers."""

from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.module import UnlearningModule
from unlearn_pl.references import ClassifierModule, ReferenceModels, TrainingRecipe
from unlearn_pl.utils.lightning_tips import quiet_lightning_tips

# Lightning has no setting for its litlogger/litmodels tips; the filter drops only those lines.
quiet_lightning_tips()

__version__ = "0.1.0"
__all__ = ["ClassifierModule", "TrainingRecipe", "UnlearningDataModule", "UnlearningModule", "ReferenceModels"]

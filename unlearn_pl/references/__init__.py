"""Reference models: the original an unlearning run starts from and the oracle it is compared with.

- :class:`ReferenceModels` provides both, from checkpoints or trained with a :class:`TrainingRecipe`
  and cached (:mod:`~unlearn_pl.references.cache`);
- :mod:`~unlearn_pl.references.checkpoints` loads weights safely and checks what a checkpoint holds;
- :mod:`~unlearn_pl.references.results` keeps their per-example results, evaluated once per key.
"""

from unlearn_pl.references.cache import cache_lock, default_cache_dir
from unlearn_pl.references.checkpoints import (
    CheckedCheckpointIO,
    check_finite,
    check_lightning_checkpoint,
    check_state_fits,
    load_weights,
)
from unlearn_pl.references.models import (
    REFERENCE_DATA,
    ReferenceModels,
    check_network_fits,
)
from unlearn_pl.references.recipe import ClassifierModule, TrainingRecipe
from unlearn_pl.references.results import (
    ReferenceEvaluation,
    ReferenceResults,
    ReferenceResultsStore,
    evaluation_key,
)
from unlearn_pl.references.training import ReferenceData, train_classifier

__all__ = [
    "REFERENCE_DATA",
    "CheckedCheckpointIO",
    "ClassifierModule",
    "ReferenceData",
    "ReferenceEvaluation",
    "ReferenceModels",
    "ReferenceResults",
    "ReferenceResultsStore",
    "TrainingRecipe",
    "cache_lock",
    "check_finite",
    "check_lightning_checkpoint",
    "check_network_fits",
    "check_state_fits",
    "default_cache_dir",
    "evaluation_key",
    "load_weights",
    "train_classifier",
]

"""The design of a U-LiRA bank: which pool examples each shadow and target model trains on, and
everything a worker needs to train one (:class:`ShadowSpec`), after Hayes et al. (2024, arXiv
2403.01218): every pool example is in exactly half of the shadow models and half of the target
models, and each model gets its own seed, so a model's result depends only on the configuration
and its index.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.data.datasets import IndexedSubset
from unlearn_pl.functional.lira import balanced_membership
from unlearn_pl.models.base import ImageClassifier
from unlearn_pl.models.execution import NetworkExecution
from unlearn_pl.references import TrainingRecipe

#: Trainer settings of a run whose outputs are recorded directly, not validated: no logging,
#: checkpoints, summary, progress bar or validation loop (the configured trainer's other settings stay).
RECORDING_TRAINER_SETTINGS: dict[str, Any] = {
    "logger": False,
    "callbacks": None,
    "enable_checkpointing": False,
    "enable_progress_bar": False,
    "enable_model_summary": False,
    "num_sanity_val_steps": 0,
    "limit_val_batches": 0,
}
#: Trainer settings every shadow model's trainer gets (φ is computed directly), with deterministic
#: kernels so a model is the same in any worker.
SHADOW_TRAINER_SETTINGS: dict[str, Any] = {**RECORDING_TRAINER_SETTINGS, "deterministic": True}


def _seed(*keys: int) -> int:
    return int(np.random.SeedSequence([int(k) for k in keys]).generate_state(1)[0] % (2**31 - 1))


def pool_membership(num_shadow: int, num_target_models: int, pool_size: int, seed: int) -> np.ndarray:
    """``(K + T, pool_size)`` booleans: which pool examples model ``m`` trains on.

    Shadow and target models are balanced separately, so every example is in exactly ``K // 2``
    shadow models and ``T // 2`` target models.
    """
    return np.concatenate(
        [
            balanced_membership(num_shadow, pool_size, _seed(seed, 0)),
            balanced_membership(num_target_models, pool_size, _seed(seed, 1)),
        ]
    )


@dataclass
class ShadowSpec:
    """Everything a worker needs to train, unlearn and record one model (picklable).

    Attributes:
        network: the architecture (its weights are redrawn per model).
        localizer, unlearner: the audited run's (deep-copied per model).
        recipe: the training recipe of the models before unlearning.
        datamodule: the audited run's data module (its split is redrawn per model from the pool).
        trainer_kwargs: the audited run's trainer settings (logging and checkpoints are turned off).
        targets: dataset indices of the target examples (sorted).
        num_shadow, num_target_models: K and T.
        seed: seeds the membership and every model's seed.
        bank: the bank folder.
        cache_dir: the model cache of the originals (``None``: the default cache).
        execution: how the audited run's network executes (compiled, channels-last), for the unlearning.
    """

    network: ImageClassifier
    localizer: Any
    unlearner: Any
    recipe: TrainingRecipe
    datamodule: UnlearningDataModule
    trainer_kwargs: dict[str, Any]
    targets: list[int]
    num_shadow: int
    num_target_models: int
    seed: int
    bank: str
    cache_dir: str | None = None
    execution: NetworkExecution | None = None
    membership_cache: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def num_models(self) -> int:
        return self.num_shadow + self.num_target_models

    def model_seed(self, model: int) -> int:
        """The seed of model ``model``: its initial weights, data order and unlearning randomness."""
        return _seed(self.seed, 2, model)

    def pool_membership(self, pool_size: int) -> np.ndarray:
        if self.membership_cache is None or self.membership_cache.shape[1] != pool_size:
            self.membership_cache = pool_membership(self.num_shadow, self.num_target_models, pool_size, self.seed)
        return self.membership_cache


def check_targets(targets: list[int] | np.ndarray, pool: list[int] | np.ndarray) -> np.ndarray:
    """The targets as a sorted array, checked against the pool.

    Raises:
        ValueError: duplicated targets, fewer than 2, targets outside the pool, or targets that
            cover the whole pool (no retain data would be left).
    """
    t = np.asarray(targets, dtype=np.int64)
    if len(t) < 2:
        raise ValueError(f"U-LiRA needs at least 2 target examples; got {len(t)}")
    uniq, counts = np.unique(t, return_counts=True)
    if (counts > 1).any():
        raise ValueError(f"targets are duplicated: {uniq[counts > 1][:10].tolist()}; name each target once")
    outside = np.setdiff1d(uniq, np.asarray(pool, dtype=np.int64))
    if len(outside):
        raise ValueError(
            f"targets {outside[:10].tolist()} are not in the pool (the training split: retain ∪ forget, "
            f"{len(pool)} examples; validation examples are not in it); choose targets among its indices"
        )
    if len(uniq) == len(pool):
        raise ValueError("the targets cover the whole pool, leaving no retain data; choose fewer targets")
    return uniq


def shadow_datamodule(spec: ShadowSpec, model: int) -> tuple[UnlearningDataModule, IndexedSubset]:
    """Model ``model``'s data module (its half of the pool; forget = its in-targets) and the
    ``(index, x, y)`` dataset of all targets, with their training labels.

    Only targets keep a training-label override (``Mislabeled`` forget sets, whose examples are
    the default targets); other pool examples train with their dataset labels.
    """
    dm = copy.deepcopy(spec.datamodule)
    dm.setup("fit")
    split, train_set = dm.split, dm.train_set
    assert split is not None and train_set is not None
    pool = np.asarray(dm.indices("train"), dtype=np.int64)
    targets = check_targets(spec.targets, pool)
    keep = spec.pool_membership(len(pool))[model]
    train = pool[keep]
    is_target = np.isin(train, targets)
    forget, retain = train[is_target].tolist(), train[~is_target].tolist()
    if not forget:
        raise ValueError(
            f"model {model} trains on none of the {len(targets)} targets, so it has nothing to unlearn; use more targets"
        )
    targets_data = IndexedSubset(train_set, targets.tolist(), split.relabels)
    dm.split = dataclasses.replace(
        split,
        retain=retain,
        forget=forget,
        relabels={i: split.relabels[i] for i in forget if i in split.relabels},
    )
    return dm, targets_data


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is a builtin scalar, ``None``, or a list of those (a trainer setting to copy)."""
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def shadow_trainer_kwargs(trainer_config: Any) -> dict[str, Any]:
    """The configured trainer's plain settings (epochs, devices, precision…) for the shadow models;
    loggers, callbacks and plugins (configured objects) are left out."""
    settings = trainer_config.as_dict() if hasattr(trainer_config, "as_dict") else dict(trainer_config)
    skip = set(SHADOW_TRAINER_SETTINGS) | {"default_root_dir", "plugins"}
    return {k: v for k, v in settings.items() if k not in skip and _is_plain(v)}

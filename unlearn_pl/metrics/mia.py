"""The membership-inference callbacks: the loss attack (column ``mia_loss_acc``) and MIA-efficacy
(``mia_efficacy``), whose attacks live in :mod:`unlearn_pl.functional.membership`.

Both attacks are fit on the per-example statistics that :meth:`UnlearningModule.per_example`
returns (synced across processes and de-duplicated), on global rank 0 only; the callbacks
broadcast the result, so every rank reports the same numbers. Sampling is seeded and the
estimators are deterministic, so a run reproduces its values exactly.
"""

from __future__ import annotations

import typing
from collections.abc import Callable
from functools import partial
from typing import Literal

import lightning.pytorch as pl
import torch
from torch import Tensor

from unlearn_pl.functional.membership import loss_attack, mia_efficacy
from unlearn_pl.metrics.base import EvaluationCallback
from unlearn_pl.names import MIA_EFFICACY, MIA_LOSS_ACC, Results
from unlearn_pl.protocols import UnlearningModel
from unlearn_pl.utils.arguments import (
    IntAtLeastTwo,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    check_arguments,
    check_value,
)

#: Splits that may serve as non-members (never trained on by the original model).
NonmemberSplit = Literal["test", "val"]
NONMEMBER_SPLITS: tuple[str, ...] = typing.get_args(NonmemberSplit)
#: Per-example statistics MIA-efficacy can use as attack features.
EfficacyFeature = Literal["confidence", "entropy"]
EFFICACY_FEATURES: tuple[str, ...] = typing.get_args(EfficacyFeature)


def _split_stats(stats: dict[str, dict[str, Tensor]], split: str, model: str, attack: str) -> dict[str, Tensor]:
    if split not in stats or len(stats[split]["index"]) == 0:
        raise ValueError(
            f"{attack} needs the {split!r} split, but model {model!r} was evaluated on {sorted(stats)}; "
            "evaluate that split or choose another one"
        )
    return stats[split]


#: The reference models' attack values computed in this process, under the same keys as each
#: callback's own cache: a study worker runs trial after trial on the same reference models, each
#: with new callbacks.
_PROCESS_REFERENCE_VALUES: dict[tuple, float] = {}


def reference_cached(
    cache: dict[tuple, float],
    pl_module: UnlearningModel,
    model: str,
    compute: Callable[[], float],
    settings: tuple = (),
) -> float:
    """``compute()`` for the unlearned model; for a reference model, cached in ``cache`` (and for
    the process) under the key of the module's reference results
    (``UnlearningModule.reference_results``), which says what its statistics were computed from,
    and the attack's ``settings``."""
    held = pl_module.reference_results
    if held is None or model not in held.results:
        return compute()
    key = (model, held.key, *settings)
    if key not in cache:
        if key not in _PROCESS_REFERENCE_VALUES:
            _PROCESS_REFERENCE_VALUES[key] = compute()
        cache[key] = _PROCESS_REFERENCE_VALUES[key]
    return cache[key]


class LossAttack(EvaluationCallback):
    """The loss attack of every model (column ``mia_loss_acc``; 0.5 = private); see :func:`loss_attack`.

    Members are the forget set; non-members an equal-size seeded sample of ``nonmembers``
    (or, when that split is smaller, all of it against an equal-size sample of the forget set).
    Fit on rank 0 and broadcast.

    Args:
        nonmembers: the non-member split, ``"test"`` (default) or ``"val"``.
        n_splits: folds of the stratified cross-validation.
        seed: seeds the sample and the folds (the same for every model row).
        during_fit: also evaluate at the validation epochs of ``fit``.
    """

    rank_zero_compute = True

    def __init__(
        self,
        nonmembers: NonmemberSplit = "test",
        n_splits: IntAtLeastTwo = 5,
        seed: NonNegativeInt = 0,
        during_fit: bool = True,
    ) -> None:
        super().__init__(during_fit=during_fit)
        check_arguments(LossAttack.__init__, locals())
        self.nonmembers = nonmembers
        self.n_splits = n_splits
        self.seed = seed
        # The frozen reference models' statistics come back unchanged: attack them once per key.
        self._reference_values: dict[tuple, float] = {}

    def evaluate(self, trainer: pl.Trainer, pl_module) -> Results:
        out: Results = {}
        for model, stats in pl_module.per_example().items():
            forget = _split_stats(stats, "forget", model, "the loss attack")
            other = _split_stats(stats, self.nonmembers, model, "the loss attack")
            value = reference_cached(
                self._reference_values,
                pl_module,
                model,
                partial(loss_attack, forget["loss"], other["loss"], self.n_splits, self.seed),
                ("loss_attack", self.nonmembers, self.n_splits, self.seed),
            )
            out[model] = {MIA_LOSS_ACC: value}
        return out


class MIAEfficacy(EvaluationCallback):
    """MIA-efficacy of every model (column ``mia_efficacy``); see :func:`mia_efficacy`.

    The attack of each model is trained on that model's retain (member) vs ``nonmembers``
    (non-member) features, balanced by a seeded sample of the larger side, and applied to the
    forget set. Fit on rank 0 and broadcast.

    Args:
        features: ``"confidence"`` (true-class probability, the published metric),
            ``"entropy"`` (predictive entropy), or a list of both (a 2-D feature).
        nonmembers: the non-member split, ``"test"`` (default) or ``"val"``.
        seed: seeds the balancing sample (the same for every model row).
        max_samples: cap each training group at this many examples (``None``: no cap).
        C: the SVC's regularization (the reference code's 3.0).
        during_fit: also evaluate at the validation epochs of ``fit``.
    """

    rank_zero_compute = True

    def __init__(
        self,
        # Plain strings for the parser: the constructor names the choices in its one-line error,
        # which jsonargparse's report for a union of literals would spread over a dozen lines.
        features: str | list[str] = "confidence",
        nonmembers: NonmemberSplit = "test",
        seed: NonNegativeInt = 0,
        max_samples: PositiveInt | None = None,
        C: PositiveFloat = 3.0,
        during_fit: bool = True,
    ) -> None:
        super().__init__(during_fit=during_fit)
        check_arguments(MIAEfficacy.__init__, locals())
        check_value("features", features, EfficacyFeature | list[EfficacyFeature])
        names = [features] if isinstance(features, str) else list(features)
        if not names or len(set(names)) != len(names):
            raise ValueError(f"features must be one or more of {EFFICACY_FEATURES}, each once; got {features!r}")
        self.features: tuple[str, ...] = tuple(names)
        self.nonmembers = nonmembers
        self.seed = seed
        self.max_samples = max_samples
        self.C = C
        # The frozen reference models' statistics come back unchanged: attack them once per key.
        self._reference_values: dict[tuple, float] = {}

    def _features(self, stats: dict[str, Tensor]) -> Tensor:
        return torch.stack([stats[f] for f in self.features], dim=1)

    def evaluate(self, trainer: pl.Trainer, pl_module) -> Results:
        out: Results = {}
        for model, stats in pl_module.per_example().items():
            retain = _split_stats(stats, "retain", model, "MIA-efficacy")
            other = _split_stats(stats, self.nonmembers, model, "MIA-efficacy")
            forget = _split_stats(stats, "forget", model, "MIA-efficacy")
            value = reference_cached(
                self._reference_values,
                pl_module,
                model,
                partial(
                    mia_efficacy,
                    self._features(retain),
                    self._features(other),
                    self._features(forget),
                    seed=self.seed,
                    max_samples=self.max_samples,
                    C=self.C,
                ),
                ("mia_efficacy", self.features, self.nonmembers, self.seed, self.max_samples, self.C),
            )
            out[model] = {MIA_EFFICACY: value}
        return out


__all__ = ["loss_attack", "mia_efficacy", "LossAttack", "MIAEfficacy"]

"""Membership-inference attacks with scikit-learn: the loss attack (logistic regression on losses,
forget vs unseen examples, as in SCRUB, Kurmanji et al. 2023) and MIA-efficacy (Jia et al. 2023).

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
import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

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


def _as_array(values: ArrayLike | Tensor, name: str, ndim: int) -> np.ndarray:
    if isinstance(values, Tensor):
        values = values.detach().cpu().double().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if ndim == 1:
        arr = arr.reshape(-1)
    elif arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != ndim:
        raise ValueError(f"{name} must be {'1-D' if ndim == 1 else '(N,) or (N, F)'}; got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return arr


def _subsample(values: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """``n`` rows of ``values`` drawn without replacement, kept in their original order."""
    if n >= len(values):
        return values
    return values[np.sort(rng.choice(len(values), size=n, replace=False))]


def loss_attack(
    member_losses: ArrayLike | Tensor,
    nonmember_losses: ArrayLike | Tensor,
    n_splits: int = 5,
    seed: int = 0,
    balance: bool = True,
) -> float:
    """Loss-based membership inference: cross-validated accuracy of a logistic regression that
    tells members from non-members by their loss (SCRUB; NeurIPS-2023 unlearning challenge).

    ``0.5`` = the losses carry no membership signal (perfect privacy); ``1.0`` = members are
    perfectly separable. Losses are standardized before the (L2-regularized) regression, so
    the attack does not depend on the losses' scale.

    Args:
        member_losses: per-example losses of members (the forget set), shape ``(N,)``.
        nonmember_losses: per-example losses of non-members (test or validation examples).
        n_splits: folds of the stratified cross-validation.
        seed: seeds the balancing sample and the fold shuffling.
        balance: subsample the larger group to the size of the smaller, so chance level is 0.5.

    Example::

        loss_attack(torch.rand(100) * 0.1, 1 + torch.rand(100))  # -> 1.0
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    if n_splits < 2:
        raise ValueError(f"n_splits must be >= 2 cross-validation folds; got {n_splits}")
    members = _as_array(member_losses, "member_losses", 1)
    nonmembers = _as_array(nonmember_losses, "nonmember_losses", 1)
    if balance:
        rng = np.random.default_rng(seed)
        n = min(len(members), len(nonmembers))
        members, nonmembers = _subsample(members, n, rng), _subsample(nonmembers, n, rng)
    if min(len(members), len(nonmembers)) < n_splits:
        raise ValueError(
            f"the loss attack needs at least n_splits={n_splits} members and non-members; got "
            f"{len(members)} and {len(nonmembers)} (use a larger forget set or fewer folds)"
        )
    x = np.concatenate([members, nonmembers])[:, None]
    y = np.concatenate([np.ones(len(members), dtype=np.int64), np.zeros(len(nonmembers), dtype=np.int64)])
    attack = make_pipeline(StandardScaler(), LogisticRegression())
    folds = StratifiedKFold(n_splits=n_splits, shuffle=True, random_state=seed)
    return float(cross_val_score(attack, x, y, cv=folds, scoring="accuracy").mean())


def mia_efficacy(
    member_features: ArrayLike | Tensor,
    nonmember_features: ArrayLike | Tensor,
    target_features: ArrayLike | Tensor,
    seed: int = 0,
    balance: bool = True,
    max_samples: int | None = None,
    C: float = 3.0,
    gamma: str | float = "auto",
    kernel: str = "rbf",
) -> float:
    """MIA-efficacy (SalUn, Unlearn-Sparse): fit an SVC on member (retain) vs non-member (test)
    features, return the fraction of ``target`` (forget) examples predicted **non-member**.

    Higher = the forget set looks less trained-on; the oracle's value is the target. The SVC
    settings default to the reference code's (``C=3``, ``gamma="auto"``, RBF kernel, features
    unscaled), so values are comparable with published ones.

    Args:
        member_features: features of members, shape ``(N,)`` or ``(N, F)``.
        nonmember_features: features of non-members, same number of columns.
        target_features: features of the examples to classify (the forget set).
        seed: seeds the balancing/capping samples (the SVC itself is deterministic).
        balance: subsample the larger training group to the size of the smaller one.
        max_samples: cap each training group at this many examples (``None``: no cap); the SVC's
            cost grows quadratically with the training size.
        C, gamma, kernel: the ``sklearn.svm.SVC`` settings.
    """
    from sklearn.svm import SVC

    members = _as_array(member_features, "member_features", 2)
    nonmembers = _as_array(nonmember_features, "nonmember_features", 2)
    target = _as_array(target_features, "target_features", 2)
    if not (members.shape[1] == nonmembers.shape[1] == target.shape[1]):
        raise ValueError(
            f"feature columns differ: members {members.shape[1]}, non-members {nonmembers.shape[1]}, "
            f"target {target.shape[1]}"
        )
    if max_samples is not None and max_samples < 1:
        raise ValueError(f"max_samples must be >= 1 or None; got {max_samples}")
    if len(target) == 0:
        raise ValueError("target_features is empty: there is nothing to classify")
    rng = np.random.default_rng(seed)
    n_members, n_nonmembers = len(members), len(nonmembers)
    if balance:
        n_members = n_nonmembers = min(n_members, n_nonmembers)
    if max_samples is not None:
        n_members, n_nonmembers = min(n_members, max_samples), min(n_nonmembers, max_samples)
    members, nonmembers = _subsample(members, n_members, rng), _subsample(nonmembers, n_nonmembers, rng)
    if len(members) == 0 or len(nonmembers) == 0:
        raise ValueError(f"MIA-efficacy needs members and non-members; got {len(members)} and {len(nonmembers)}")
    x = np.concatenate([members, nonmembers])
    y = np.concatenate([np.ones(len(members), dtype=np.int64), np.zeros(len(nonmembers), dtype=np.int64)])
    attack = SVC(C=C, gamma=gamma, kernel=kernel)
    attack.fit(x, y)
    return float((attack.predict(target) == 0).mean())


def _split_stats(stats: dict[str, dict[str, Tensor]], split: str, model: str, attack: str) -> dict[str, Tensor]:
    if split not in stats or len(stats[split]["index"]) == 0:
        raise ValueError(
            f"{attack} needs the {split!r} split, but model {model!r} was evaluated on {sorted(stats)}; "
            "evaluate that split or choose another one"
        )
    return stats[split]


def reference_cached(
    cache: dict[tuple, float], pl_module: UnlearningModel, model: str, compute: Callable[[], float]
) -> float:
    """``compute()`` for the unlearned model; for a reference model, cached in ``cache`` under the
    key of the module's reference results (``UnlearningModule.reference_results``), which says
    what its statistics were computed from."""
    held = pl_module.reference_results
    if held is None or model not in held.results:
        return compute()
    key = (model, held.key)
    if key not in cache:
        cache[key] = compute()
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
            )
            out[model] = {MIA_EFFICACY: value}
        return out


__all__ = ["loss_attack", "mia_efficacy", "LossAttack", "MIAEfficacy"]

"""Membership-inference attacks with scikit-learn on per-example statistics: the loss attack
(logistic regression on losses, forget vs unseen examples, as in SCRUB, Kurmanji et al. 2023) and
MIA-efficacy (Jia et al. 2023). Seeded sampling and deterministic estimators: the same inputs give
the same value.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike
from torch import Tensor


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


__all__ = ["loss_attack", "mia_efficacy"]

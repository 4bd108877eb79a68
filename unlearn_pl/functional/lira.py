"""Pure functions of the likelihood-ratio membership attack (LiRA) and its unlearning form, U-LiRA.

LiRA (Carlini et al., "Membership Inference Attacks From First Principles", S&P 2022) models
the logit-scaled confidence φ of one example under models that trained on it ("in") and models
that did not ("out") as two Gaussians, and scores a model under attack by the likelihood ratio
of its φ. U-LiRA (Hayes, Shumailov, Triantafillou, Khalifa, Papernot 2024, "Inexact Unlearning
Needs More Careful Evaluations to Avoid a False Sense of Privacy", arXiv 2403.01218) replaces
"in" by "trained on, then unlearned": a score of 0.5 balanced accuracy means the unlearned
example cannot be told from one never trained on.

Every function takes arrays shaped ``(models, examples)`` (or one row) and a boolean
``member`` array of the same shape; ``member`` is ``True`` where the model was trained on
(and then unlearned) the example.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from torch import Tensor

from unlearn_pl.utils.arguments import check_value

#: How the Gaussians' spread is estimated. Carlini et al. (§IV-C) find per-example variances
#: best with many shadow models and a single fixed ("global") variance better with few (below
#: about 64).
Variance = Literal["global", "per_example"]
VARIANCES: tuple[str, ...] = ("global", "per_example")


def logit_confidence(logits: Tensor, target: Tensor) -> Tensor:
    """φ = log p_y − log(1 − p_y) of the softmax of ``logits`` at class ``target``, per row.

    Computed as ``z_y − logsumexp_{j≠y} z_j``, which is the same quantity (both log-terms share
    the softmax's normalizer) but never forms ``1 − p_y``: a confident model's ``p_y`` rounds to
    1 in floating point and the naive form returns ``inf``. Computed in float64.

    Args:
        logits: ``(N, C)`` unnormalized scores, ``C >= 2``.
        target: ``(N,)`` class indices.
    """
    if logits.ndim != 2 or logits.shape[1] < 2:
        raise ValueError(f"logits must have shape (N, C) with C >= 2 classes; got {tuple(logits.shape)}")
    if target.shape != logits.shape[:1]:
        raise ValueError(f"target must have shape ({logits.shape[0]},); got {tuple(target.shape)}")
    z = logits.detach().double()
    true = z.gather(1, target.long()[:, None]).squeeze(1)
    others = z.scatter(1, target.long()[:, None], float("-inf"))
    return true - torch.logsumexp(others, dim=1)


def min_shadow_models(variance: Variance) -> int:
    """The fewest shadow models a balanced design (each example in half of them) needs for
    ``variance``: 2 for ``global`` (one in and one out model per example), 4 for ``per_example``."""
    check_value("variance", variance, Variance)
    return 2 if variance == "global" else 4


def _check_pair(values: ArrayLike, member: ArrayLike, name: str) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(values, dtype=np.float64)
    m = np.asarray(member)
    if m.dtype != np.bool_:
        raise ValueError(f"member must be a boolean array; got dtype {m.dtype}")
    if x.shape != m.shape:
        raise ValueError(f"{name} has shape {x.shape} but member has shape {m.shape}; they must match")
    if not np.isfinite(x).all():
        raise ValueError(f"{name} contains NaN or infinite values")
    return x, m


@dataclass
class GaussianFit:
    """Per-example Gaussians of φ: ``mean_in``/``std_in`` over the models that trained on (and
    unlearned) each example, ``mean_out``/``std_out`` over those that never saw it; each ``(N,)``."""

    mean_in: np.ndarray
    std_in: np.ndarray
    mean_out: np.ndarray
    std_out: np.ndarray
    variance: str

    def __len__(self) -> int:
        return len(self.mean_in)


def _side(phi: np.ndarray, mask: np.ndarray, variance: str, min_std: float) -> tuple[np.ndarray, np.ndarray]:
    """Means and standard deviations of one side (in or out) of every example."""
    counts = mask.sum(0)
    mean = np.where(mask, phi, 0.0).sum(0) / counts
    if variance == "per_example":
        squares = np.where(mask, (phi - mean) ** 2, 0.0).sum(0)
        std = np.sqrt(squares / (counts - 1))  # unbiased, per example
    else:
        # LiRA's fixed variance: one spread of every value of this side, over examples and models.
        std = np.full(len(mean), phi[mask].std())
    return mean, np.maximum(std, min_std)


def fit_gaussians(
    phi: ArrayLike, member: ArrayLike, variance: Variance = "global", min_std: float = 1e-6
) -> GaussianFit:
    """Fit the in and out Gaussians of every example from shadow models.

    Args:
        phi: ``(K, N)`` logit-scaled confidences of N examples under K shadow models.
        member: ``(K, N)`` booleans, ``True`` where the shadow model trained on (and unlearned)
            the example.
        variance: ``"per_example"`` (each example's own unbiased variance on each side; needs at
            least 2 in and 2 out models per example, K >= 4) or ``"global"`` (LiRA's fixed
            variance: one standard deviation of all values of a side, over examples and models;
            needs 1 in and 1 out model per example, K >= 2).
        min_std: floor of the standard deviations (identical φ values would give zero).

    Raises:
        ValueError: with the counts, when K is too small for ``variance``.
    """
    check_value("variance", variance, Variance)
    phi, member = _check_pair(phi, member, "phi")
    if phi.ndim != 2:
        raise ValueError(f"phi must have shape (models, examples); got {phi.shape}")
    need = 2 if variance == "per_example" else 1
    for side, mask in (("in", member), ("out", ~member)):
        counts = mask.sum(0)
        if counts.min() < need:
            raise ValueError(
                f"variance={variance!r} needs at least {need} shadow model(s) with every example {side}, but some "
                f"example has {int(counts.min())} among K={phi.shape[0]} shadow models; train more shadow models "
                f"(K >= {2 * need} with a balanced assignment){' or use variance=global' if need == 2 else ''}"
            )
    mean_in, std_in = _side(phi, member, variance, min_std)
    mean_out, std_out = _side(phi, ~member, variance, min_std)
    return GaussianFit(mean_in, std_in, mean_out, std_out, variance)


def fit_population(phi: ArrayLike, member: ArrayLike, min_std: float = 1e-6) -> GaussianFit:
    """One in and one out Gaussian for all examples: the *population* attack of Hayes et al.
    (the same attacker for every example), the baseline the per-example attack is compared with.

    Returns a :class:`GaussianFit` whose entries are equal across examples, so
    :func:`likelihood_ratio` scores both kinds of fit.
    """
    phi, member = _check_pair(phi, member, "phi")
    if member.all() or not member.any():
        raise ValueError("a population fit needs both in and out values")
    n = phi.shape[-1]

    def same(value: float) -> np.ndarray:
        return np.full(n, value)

    return GaussianFit(
        same(phi[member].mean()),
        same(max(phi[member].std(), min_std)),
        same(phi[~member].mean()),
        same(max(phi[~member].std(), min_std)),
        "population",
    )


def likelihood_ratio(phi: ArrayLike, fit: GaussianFit) -> np.ndarray:
    """``log N(φ; μ_in, σ_in) − log N(φ; μ_out, σ_out)`` per example; positive means "in".

    ``phi`` is ``(N,)`` or ``(T, N)`` (T models under attack), its last axis aligned with ``fit``.
    """
    from scipy.stats import norm

    x = np.asarray(phi, dtype=np.float64)
    if x.shape[-1] != len(fit):
        raise ValueError(f"phi has {x.shape[-1]} examples on its last axis but the fit has {len(fit)}")
    if not np.isfinite(x).all():
        raise ValueError("phi contains NaN or infinite values")
    return norm.logpdf(x, fit.mean_in, fit.std_in) - norm.logpdf(x, fit.mean_out, fit.std_out)


def balanced_accuracy(scores: ArrayLike, member: ArrayLike, threshold: float = 0.0) -> float:
    """Mean of the true-positive and true-negative rates of predicting "in" where ``score > threshold``.

    0.5 is chance: the attack cannot tell unlearned examples from never-seen ones.
    """
    s, m = _check_pair(scores, member, "scores")
    if m.all() or not m.any():
        raise ValueError("balanced accuracy needs both members and non-members")
    predicted = s > threshold
    return float((predicted[m].mean() + (~predicted[~m]).mean()) / 2)


def auc(scores: ArrayLike, member: ArrayLike) -> float:
    """Area under the ROC curve of the scores (scikit-learn's ``roc_auc_score``)."""
    from sklearn.metrics import roc_auc_score

    s, m = _check_pair(scores, member, "scores")
    if m.all() or not m.any():
        raise ValueError("the AUC needs both members and non-members")
    return float(roc_auc_score(m.ravel(), s.ravel()))


def min_negatives(fpr: float) -> int:
    """The fewest non-members at which a false-positive rate of ``fpr`` can be resolved: ``⌈1/fpr⌉``
    (with fewer, a single false positive already exceeds it)."""
    if not 0.0 < fpr < 1.0:
        raise ValueError(f"fpr must be in (0, 1); got {fpr}")
    return math.ceil(1.0 / fpr - 1e-9)


def tpr_at_fpr(scores: ArrayLike, member: ArrayLike, fpr: float) -> float | None:
    """The highest true-positive rate at a false-positive rate of at most ``fpr``, from the ROC curve.

    Returns ``None`` ("not available") when there are fewer non-members than
    :func:`min_negatives` — e.g. 0.1% FPR needs at least 1,000 non-member scores.
    """
    from sklearn.metrics import roc_curve

    s, m = _check_pair(scores, member, "scores")
    if m.all() or not m.any():
        raise ValueError("TPR at a fixed FPR needs both members and non-members")
    if int((~m).sum()) < min_negatives(fpr):
        return None
    fprs, tprs, _ = roc_curve(m.ravel(), s.ravel())
    return float(tprs[fprs <= fpr].max())


def per_example_success(scores: ArrayLike, member: ArrayLike, threshold: float = 0.0) -> np.ndarray:
    """Each example's balanced attack accuracy over the models under attack, shape ``(N,)``.

    ``scores`` and ``member`` are ``(T, N)``. An example that is in (or out) in every one of the T
    models has no balanced accuracy: its entry is NaN.
    """
    s, m = _check_pair(scores, member, "scores")
    if s.ndim != 2:
        raise ValueError(f"scores must have shape (models, examples); got {s.shape}")
    predicted = s > threshold
    n_in, n_out = m.sum(0), (~m).sum(0)
    with np.errstate(invalid="ignore", divide="ignore"):
        tpr = (predicted & m).sum(0) / n_in
        tnr = (~predicted & ~m).sum(0) / n_out
    success = (tpr + tnr) / 2
    success[(n_in == 0) | (n_out == 0)] = np.nan
    return success


def per_model_accuracy(scores: ArrayLike, member: ArrayLike, threshold: float = 0.0) -> np.ndarray:
    """Each attacked model's balanced accuracy over its examples, shape ``(T,)`` (the replicates
    of a confidence interval: every model has its own seed, training half and data order)."""
    s, m = _check_pair(scores, member, "scores")
    if s.ndim != 2:
        raise ValueError(f"scores must have shape (models, examples); got {s.shape}")
    return np.array([balanced_accuracy(s[t], m[t], threshold) for t in range(len(s))])


def chance_tolerance(num_scored: int, sigmas: float = 3.0) -> float:
    """How far from 0.5 the balanced accuracy of an attack with no signal may land by chance.

    When every example is in for half of the attacked models and the scores do not depend on
    membership (exact unlearning), each example contributes a difference of two means of T/2
    Bernoulli predictions, with variance at most ``1/T``; the examples' differences are
    uncorrelated (memberships are drawn independently), so the balanced accuracy has standard
    deviation at most ``0.5/sqrt(T·N)`` over ``num_scored = T·N`` scored pairs. Returns ``sigmas``
    times that bound.
    """
    if num_scored < 1:
        raise ValueError(f"num_scored must be >= 1; got {num_scored}")
    return sigmas * 0.5 / math.sqrt(num_scored)


def balanced_membership(num_models: int, num_examples: int, seed: int) -> np.ndarray:
    """A ``(num_models, num_examples)`` boolean membership in which every example is in exactly
    ``num_models // 2`` models, the models drawn independently per example (LiRA's assignment).

    Independent draws per example make one example's membership carry no information about
    another's, which :func:`chance_tolerance` relies on.
    """
    if num_models < 1 or num_examples < 1:
        raise ValueError(f"need at least one model and one example; got {num_models} and {num_examples}")
    rng = np.random.default_rng(seed)
    ranks = rng.random((num_models, num_examples)).argsort(0).argsort(0)
    return ranks < num_models // 2


__all__ = [
    "GaussianFit",
    "VARIANCES",
    "Variance",
    "auc",
    "balanced_accuracy",
    "balanced_membership",
    "chance_tolerance",
    "fit_gaussians",
    "fit_population",
    "likelihood_ratio",
    "logit_confidence",
    "min_negatives",
    "min_shadow_models",
    "per_example_success",
    "per_model_accuracy",
    "tpr_at_fpr",
]

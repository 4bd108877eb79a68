"""The U-LiRA attack on a bank's target models (Hayes et al. 2024, arXiv 2403.01218), and its summary."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from unlearn_pl.functional.lira import (
    GaussianFit,
    Variance,
    auc,
    balanced_accuracy,
    chance_tolerance,
    fit_gaussians,
    fit_population,
    likelihood_ratio,
    min_shadow_models,
    per_example_success,
    per_model_accuracy,
    tpr_at_fpr,
)
from unlearn_pl.stats import UNIT_RANGE, Estimate, mean_ci
from unlearn_pl.ulira.bank import ShadowBank

#: The false-positive rates at which the true-positive rate is reported (Carlini et al. 2022).
LOW_FPRS: tuple[float, ...] = (0.01, 0.001)


def check_design(num_shadow: int, variance: Variance) -> None:
    """Raise ``ValueError`` when ``num_shadow`` shadow models are too few for ``variance``."""
    least = min_shadow_models(variance)
    if num_shadow < least:
        raise ValueError(
            f"variance={variance!r} needs at least {least} shadow models (each target in half of them); got "
            f"num_shadow={num_shadow}: train more{' or use variance=global' if variance == 'per_example' else ''}"
        )


def attack_summary(scores: np.ndarray, member: np.ndarray) -> dict[str, float | None]:
    """Balanced accuracy (threshold 0: the likelihood-ratio test), AUC and TPR at :data:`LOW_FPRS`
    (``None`` when there are too few non-members for that rate)."""
    out: dict[str, float | None] = {
        "ulira_acc": balanced_accuracy(scores, member),
        "ulira_auc": auc(scores, member),
    }
    for fpr in LOW_FPRS:
        out[f"ulira_tpr_at_fpr_{fpr:g}"] = tpr_at_fpr(scores, member, fpr)
    return out


@dataclass
class BankAttack:
    """U-LiRA on a bank's target models after unlearning, with three comparisons: the same
    attack before unlearning (plain LiRA on the models' originals: what unlearning has to
    remove), and the *population* attack (one Gaussian pair for all targets) after and before.

    Attributes:
        summary: :func:`attack_summary` of the per-example attack after unlearning.
        before: the same on the target models' originals (Gaussians fit on the shadows' originals).
        population, population_before: the population attack after and before unlearning.
        per_model: ``{name: (T,) balanced accuracy of each target model}`` for ``"after"``,
            ``"before"``, ``"population"``, ``"population_before"``: the replicates of
            :meth:`interval` (each target model has its own seed, training half and data order).
        success: ``(N,)`` per-target balanced accuracy over the target models after unlearning
            (NaN for a target in, or out of, every target model).
        success_before: the same before unlearning.
        fit: the per-target Gaussians after unlearning.
        num_scored: scored (target, target model) pairs.
        tolerance: :func:`~unlearn_pl.functional.lira.chance_tolerance` of ``num_scored``: how far
            from 0.5 an attack with no signal may land (3σ).
    """

    summary: dict[str, float | None]
    before: dict[str, float | None]
    population: dict[str, float | None]
    population_before: dict[str, float | None]
    per_model: dict[str, np.ndarray]
    success: np.ndarray
    success_before: np.ndarray
    fit: GaussianFit
    num_scored: int
    tolerance: float

    def interval(self, name: str = "after") -> Estimate:
        """Mean and 95% t-interval of the balanced accuracy over the target models (clipped to [0, 1])."""
        return mean_ci(self.per_model[name].tolist(), value_range=UNIT_RANGE)


def attack_bank(bank: ShadowBank, variance: Variance = "global") -> BankAttack:
    """Fit the Gaussians on the bank's K shadow models and attack its T target models."""
    check_design(bank.num_shadow, variance)
    k = bank.num_shadow
    member = bank.membership[k:]
    out: dict[str, Any] = {"per_model": {}}
    for which, suffix in (("phi", ""), ("phi_original", "_before")):
        phi = bank.phi(which)
        for kind, fit in (
            ("", fit_gaussians(phi[:k], bank.membership[:k], variance)),
            ("population", fit_population(phi[:k], bank.membership[:k])),
        ):
            scores = likelihood_ratio(phi[k:], fit)
            name = f"{kind}{suffix}" or "after"
            name = "before" if name == "_before" else name
            out[name] = attack_summary(scores, member)
            out["per_model"][name] = per_model_accuracy(scores, member)
            if not kind:
                out[f"success{suffix}"] = per_example_success(scores, member)
                out[f"fit{suffix}"] = fit
    return BankAttack(
        summary=out["after"],
        before=out["before"],
        population=out["population"],
        population_before=out["population_before"],
        per_model=out["per_model"],
        success=out["success"],
        success_before=out["success_before"],
        fit=out["fit"],
        num_scored=int(member.size),
        tolerance=chance_tolerance(int(member.size)),
    )

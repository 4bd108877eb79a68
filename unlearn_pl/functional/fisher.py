"""Diagonal Fisher information and selective synaptic dampening (SSD, Foster et al., 2024)."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor, nn

from unlearn_pl.functional.scores import batch_gradients


def fisher_diagonal(model: nn.Module, batches: Iterable) -> dict[str, Tensor]:
    """Empirical diagonal Fisher: the squared gradient of the batch-mean cross-entropy,
    averaged over batches, per trainable scalar.

    This is the estimator of the SSD authors' code (one squared gradient per mini-batch, not per
    example), so its scale depends on the batch size; compare Fishers computed with the same
    batch size. The model is put in eval mode (BatchNorm uses running statistics) and its
    ``.grad`` fields are not touched. ``batches`` yields ``(index, x, y)`` or ``(x, y)``.
    """
    total: dict[str, Tensor] = {}
    count = 0
    for grads, _ in batch_gradients(model, batches, reduction="mean", what="the data for the Fisher information"):
        for name, g in grads.items():
            total[name] = total[name] + g.detach() ** 2 if name in total else g.detach() ** 2
        count += 1
    return {name: f / count for name, f in total.items()}


def ssd_factors(
    fisher_forget: Mapping[str, Tensor],
    fisher_train: Mapping[str, Tensor],
    alpha: float = 10.0,
    dampening: float = 1.0,
) -> dict[str, Tensor]:
    """SSD's multiplicative factor per scalar: ``min(1, λ·I_D / I_F)`` where ``I_F > α·I_D``, else 1.

    ``I_F`` is the Fisher on the forget set, ``I_D`` on the training set; ``α`` selects scalars
    far more important to the forget set than to the data overall, ``λ`` (``dampening``) sets
    how strongly they shrink. Factors lie in ``[0, 1]``, so magnitudes never grow.

    Example:
        >>> import torch
        >>> ssd_factors({"w": torch.tensor([4.0, 1.0])}, {"w": torch.tensor([0.2, 1.0])})["w"]
        tensor([0.0500, 1.0000])
    """
    if alpha < 0:
        raise ValueError(f"alpha (selection threshold) must be >= 0; got {alpha}")
    if dampening < 0:
        raise ValueError(f"dampening (lambda) must be >= 0; got {dampening}")
    missing = set(fisher_forget) ^ set(fisher_train)
    if missing:
        raise ValueError(f"the two Fisher dicts must name the same parameters; differing: {sorted(missing)}")
    factors = {}
    for name, i_f in fisher_forget.items():
        i_d = fisher_train[name]
        selected = i_f > alpha * i_d  # strict: a scalar unimportant to both (0 > 0) is left alone
        # i_f > 0 wherever selected, so the division is safe where it is used.
        ratio = (dampening * i_d / torch.where(selected, i_f, torch.ones_like(i_f))).clamp(max=1.0)
        factors[name] = torch.where(selected, ratio, torch.ones_like(i_f))
    return factors


@torch.no_grad()
def dampen_(model: nn.Module, factors: Mapping[str, Tensor], masks: Mapping[str, Tensor] | None = None) -> int:
    """Multiply parameters by ``factors`` in place, only where ``masks`` (if given) allow.

    Returns the number of scalars whose factor was below 1 and that the mask allowed.
    """
    changed = 0
    for name, p in model.named_parameters():
        if name not in factors:
            continue
        factor = factors[name].to(p.device)
        if masks is not None:
            mask = masks.get(name)
            allowed = torch.zeros_like(p, dtype=torch.bool) if mask is None else mask.to(p.device)
            factor = torch.where(allowed, factor, torch.ones_like(factor))
        changed += int((factor < 1).sum())
        p.mul_(factor)
    return changed

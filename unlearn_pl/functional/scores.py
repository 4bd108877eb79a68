"""Per-scalar parameter scores for localization (SPEC §3, step 1)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Score = Literal["weighted_grad", "grad", "magnitude"]
SCORES: tuple[str, ...] = ("weighted_grad", "grad", "magnitude")


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The model's trainable parameters by name, in registration order."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def loss_gradients(model: nn.Module, batches: Iterable, sign: float = 1.0) -> dict[str, Tensor]:
    """Mean gradient of ``sign · CE`` over all examples of ``batches``, the model in eval mode.

    ``batches`` yields ``(index, x, y)`` or ``(x, y)``. Eval mode makes BatchNorm use its running
    statistics, so the gradient describes the deployed model. ``.grad`` fields are not touched.
    """
    params = trainable_parameters(model)
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (requires_grad=False everywhere)")
    device = next(iter(params.values())).device
    total = {n: torch.zeros_like(p) for n, p in params.items()}
    count = 0
    was_training = model.training
    model.eval()
    try:
        for batch in batches:
            x, y = batch[-2].to(device), batch[-1].to(device)
            loss = sign * F.cross_entropy(model(x), y, reduction="sum")
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            for (n, _), g in zip(params.items(), grads):
                if g is not None:
                    total[n] += g
            count += len(y)
    finally:
        model.train(was_training)
    if count == 0:
        raise ValueError("the localization data is empty; cannot compute gradients")
    return {n: g / count for n, g in total.items()}


def criticality_scores(
    model: nn.Module, batches: Iterable | None, score: Score = "weighted_grad"
) -> dict[str, Tensor]:
    """Per-scalar criticality: ``|θ·g|`` (weighted_grad), ``|g|`` (grad) or ``|θ|`` (magnitude).

    ``g`` is the mean gradient of the cross-entropy over ``batches`` (see :func:`loss_gradients`);
    ``magnitude`` needs no data.
    """
    if score not in SCORES:
        raise ValueError(f"score must be one of {SCORES}; got {score!r}")
    params = trainable_parameters(model)
    if score == "magnitude":
        return {n: p.detach().abs() for n, p in params.items()}
    if batches is None:
        raise ValueError(f"score={score!r} needs data; got no dataloader")
    grads = loss_gradients(model, batches)
    if score == "grad":
        return {n: g.abs() for n, g in grads.items()}
    return {n: (params[n].detach() * grads[n]).abs() for n in params}

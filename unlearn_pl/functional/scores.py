"""Per-scalar parameter scores for localization (SPEC §3, step 1)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

Score = Literal["weighted_grad", "grad", "magnitude"]
SCORES: tuple[str, ...] = ("weighted_grad", "grad", "magnitude")


def trainable_parameters(model: nn.Module) -> dict[str, nn.Parameter]:
    """The model's trainable parameters by name, in registration order."""
    return {n: p for n, p in model.named_parameters() if p.requires_grad}


def batch_gradients(
    model: nn.Module, batches: Iterable, reduction: str = "mean", what: str = "the data"
) -> Iterator[tuple[dict[str, Tensor], int]]:
    """Yield, per batch, the cross-entropy gradient of every trainable parameter and the batch size.

    The model is in eval mode while iterating (BatchNorm uses its running statistics, so the
    gradients describe the deployed model) and its ``.grad`` fields are not touched. Parameters
    the loss does not reach get zeros. ``batches`` yields ``(index, x, y)`` or ``(x, y)``.
    """
    params = trainable_parameters(model)
    if not params:
        raise ValueError(f"{type(model).__name__} has no trainable parameters (requires_grad=False everywhere)")
    device = next(iter(params.values())).device
    was_training = model.training
    model.eval()
    seen = False
    try:
        for batch in batches:
            x, y = batch[-2].to(device), batch[-1].to(device)
            loss = F.cross_entropy(model(x), y, reduction=reduction)
            grads = torch.autograd.grad(loss, list(params.values()), allow_unused=True)
            seen = True
            yield {n: torch.zeros_like(p) if g is None else g for (n, p), g in zip(params.items(), grads)}, len(y)
    finally:
        model.train(was_training)
    if not seen:
        raise ValueError(f"{what} is empty; cannot compute gradients")


def loss_gradients(model: nn.Module, batches: Iterable, sign: float = 1.0) -> dict[str, Tensor]:
    """Mean gradient of ``sign · CE`` over all examples of ``batches``, the model in eval mode
    (see :func:`batch_gradients`)."""
    total: dict[str, Tensor] = {}
    count = 0
    for grads, n in batch_gradients(model, batches, reduction="sum", what="the localization data"):
        for name, g in grads.items():
            total[name] = total[name] + g if name in total else g
        count += n
    return {name: sign * g / count for name, g in total.items()}


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

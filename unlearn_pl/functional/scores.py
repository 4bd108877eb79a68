"""Per-scalar parameter scores for localization (DEL, Torkzadehmahani et al., 2024, step 1)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from unlearn_pl.utils.arguments import check_value

Score = Literal["weighted_grad", "grad", "magnitude"]
SCORES: tuple[str, ...] = ("weighted_grad", "grad", "magnitude")
#: How per-batch gradients are combined: the mean over all examples, or the sum of per-batch means.
Aggregate = Literal["mean", "batch_sum"]
AGGREGATES: tuple[str, ...] = ("mean", "batch_sum")


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
            yield (
                {n: torch.zeros_like(p) if g is None else g for (n, p), g in zip(params.items(), grads, strict=True)},
                len(y),
            )
    finally:
        model.train(was_training)
    if not seen:
        raise ValueError(f"{what} is empty; cannot compute gradients")


def loss_gradients(
    model: nn.Module, batches: Iterable, sign: float = 1.0, aggregate: Aggregate = "mean"
) -> dict[str, Tensor]:
    """Gradient of ``sign · CE`` over ``batches``, the model in eval mode (see :func:`batch_gradients`).

    - ``mean``: the mean over all examples (independent of how they are batched).
    - ``batch_sum``: the sum over batches of each batch's mean gradient, as the SalUn and DEL
      authors accumulate it (Unlearn-Saliency/Classification/generate_mask.py:30-44,
      DEL-Unlearning/generate_mask.py:80-96). On equal batches it is ``n_batches ×`` the mean;
      a smaller last batch weighs each of its examples more, which can change the ranking.
    """
    check_value("aggregate", aggregate, Aggregate)
    reduction = "sum" if aggregate == "mean" else "mean"
    total: dict[str, Tensor] = {}
    count = 0
    for grads, n in batch_gradients(model, batches, reduction=reduction, what="the localization data"):
        for name, g in grads.items():
            total[name] = total[name] + g if name in total else g
        count += n
    if aggregate == "batch_sum":
        return {name: sign * g for name, g in total.items()}
    return {name: sign * g / count for name, g in total.items()}


def criticality_scores(
    model: nn.Module, batches: Iterable | None, score: Score = "weighted_grad", aggregate: Aggregate = "mean"
) -> dict[str, Tensor]:
    """Per-scalar criticality: ``|θ·g|`` (weighted_grad), ``|g|`` (grad) or ``|θ|`` (magnitude).

    ``g`` is the gradient of the cross-entropy over ``batches``, aggregated by ``aggregate``
    (see :func:`loss_gradients`); ``magnitude`` needs no data.
    """
    check_value("score", score, Score)
    params = trainable_parameters(model)
    if score == "magnitude":
        return {n: p.detach().abs() for n, p in params.items()}
    if batches is None:
        raise ValueError(f"score={score!r} needs data; got no dataloader")
    grads = loss_gradients(model, batches, aggregate=aggregate)
    if score == "grad":
        return {n: g.abs() for n, g in grads.items()}
    return {n: (params[n].detach() * grads[n]).abs() for n in params}

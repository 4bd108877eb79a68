"""Applying parameter masks: which scalars may change, and putting back the ones that may not."""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn


def selected_fraction(masks: Mapping[str, Tensor]) -> float:
    """Fraction of scalars selected across all masks."""
    total = sum(m.numel() for m in masks.values())
    return sum(int(m.sum()) for m in masks.values()) / max(total, 1)


def check_masks(model: nn.Module, masks: Mapping[str, Tensor]) -> None:
    """Raise unless every mask names a parameter of ``model`` and has its shape and a bool dtype."""
    params = dict(model.named_parameters())
    for name, mask in masks.items():
        if name not in params:
            raise ValueError(f"mask names {name!r}, which is not a parameter of the model")
        if mask.shape != params[name].shape or mask.dtype != torch.bool:
            raise ValueError(
                f"mask for {name!r} must be a bool tensor of shape {tuple(params[name].shape)}; "
                f"got {mask.dtype} {tuple(mask.shape)}"
            )


class MaskGuard:
    """Keeps unselected scalars of a model fixed: zeroes their gradients and restores their values.

    Parameters without a mask are treated as fully unselected. Restoring after each optimizer
    step matters because weight decay and momentum move scalars whose gradient is zero.

    Args:
        model: the network being unlearned.
        masks: boolean masks by parameter name; ``True`` = may change.
    """

    def __init__(self, model: nn.Module, masks: Mapping[str, Tensor]) -> None:
        check_masks(model, masks)
        self.masks: dict[str, Tensor] = {}
        self.frozen: dict[str, Tensor] = {}
        for name, p in model.named_parameters():
            mask = masks.get(name)
            if mask is not None and bool(mask.all()):
                continue  # fully selected: nothing to guard
            if mask is not None and bool(mask.any()):
                self.masks[name] = mask.to(p.device)
            self.frozen[name] = p.detach().clone()
        self.model = model

    def _params(self) -> dict[str, nn.Parameter]:
        return dict(self.model.named_parameters())

    @torch.no_grad()
    def zero_grads(self) -> None:
        """Zero the gradients of unselected scalars (call after backward)."""
        params = self._params()
        for name in self.frozen:
            g = params[name].grad
            if g is None:
                continue
            mask = self.masks.get(name)
            if mask is None:
                g.zero_()
            else:
                g.mul_(mask)

    @torch.no_grad()
    def restore(self) -> None:
        """Copy the frozen values back into unselected scalars (call after optimizer steps)."""
        params = self._params()
        for name, frozen in self.frozen.items():
            p = params[name]
            frozen = frozen.to(p.device)
            mask = self.masks.get(name)
            if mask is None:
                p.copy_(frozen)
            else:
                p.copy_(torch.where(mask, p, frozen))

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
        # (parameter, mask or None, frozen values) per guarded parameter, with mask and frozen
        # values already on the parameter's device: these run after every backward and every
        # optimizer step, where ``frozen.to(p.device)`` on every call would be a host-to-device
        # copy per step on GPUs.
        self._guarded: list[tuple[nn.Parameter, Tensor | None, Tensor]] = []
        self._bound: tuple[int, ...] | None = None

    def _params(self) -> dict[str, nn.Parameter]:
        return dict(self.model.named_parameters())

    def _entries(self) -> list[tuple[nn.Parameter, Tensor | None, Tensor]]:
        """The guarded parameters with their mask and frozen values on the parameter's device.

        Rebuilt only if a parameter object or its device changed since the last call (e.g. the
        model was moved after the guard was made), so the result always matches the model. The
        check walks ``named_parameters()`` (~0.2 ms for a ResNet-18), which is what keeps it
        correct when a parameter object is replaced (``load_state_dict(..., assign=True)``).
        """
        params = self._params()
        key = tuple(id(params[n]) for n in self.frozen) + tuple(hash(params[n].device) for n in self.frozen)
        if key != self._bound:
            entries = []
            for name, frozen in self.frozen.items():
                p = params[name]
                mask = self.masks.get(name)
                entries.append((p, None if mask is None else mask.to(p.device), frozen.to(p.device)))
            self._guarded, self._bound = entries, key
        return self._guarded

    @torch.no_grad()
    def zero_grads(self) -> None:
        """Zero the gradients of unselected scalars (call after backward)."""
        for p, mask, _ in self._entries():
            g = p.grad
            if g is None:
                continue
            if mask is None:
                g.zero_()
            else:
                g.mul_(mask)

    @torch.no_grad()
    def restore(self) -> None:
        """Copy the frozen values back into unselected scalars (call after optimizer steps)."""
        for p, mask, frozen in self._entries():
            if mask is None:
                p.copy_(frozen)
            else:
                p.copy_(torch.where(mask, p, frozen))

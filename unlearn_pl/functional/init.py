"""Fresh initialization of selected scalars (the *reset* of DEL's Reset + Finetune)."""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn


def fresh_parameters(model: nn.Module, seed: int) -> dict[str, Tensor]:
    """Parameters of a freshly initialized copy of ``model``, drawn with ``seed``.

    Each module is re-initialized by its own ``reset_parameters`` (the init its type uses when
    constructed). Parameters owned directly by modules without one (e.g. a ViT's position
    embedding) get a truncated normal with std 0.02 (≥2-D) or zeros (1-D), timm's convention.
    The global RNG state is left untouched.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        fresh = copy.deepcopy(model)
        for module in fresh.modules():
            own = list(module.parameters(recurse=False))
            if not own:
                continue
            reset = getattr(module, "reset_parameters", None)
            if callable(reset):
                reset()
                continue
            with torch.no_grad():
                for p in own:
                    if p.ndim >= 2:
                        nn.init.trunc_normal_(p, std=0.02)
                    else:
                        p.zero_()
    return {n: p.detach() for n, p in fresh.named_parameters()}


@torch.no_grad()
def reset_selected_(model: nn.Module, masks: Mapping[str, Tensor], seed: int) -> None:
    """Replace the selected scalars of ``model`` by a seeded fresh initialization, in place.

    Buffers (e.g. BatchNorm running statistics) are kept.
    """
    fresh = fresh_parameters(model, seed)
    for name, p in model.named_parameters():
        mask = masks.get(name)
        if mask is not None and bool(mask.any()):
            p.copy_(torch.where(mask.to(p.device), fresh[name].to(p.device), p))

"""Data-free baseline localizers."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader

from unlearn_pl.functional.scores import trainable_parameters
from unlearn_pl.localizers.base import Localizer


class Full(Localizer):
    """Selects every trainable parameter: plain (non-localized) unlearning."""

    requires_data = False

    def __init__(self) -> None:
        super().__init__(budget=1.0)

    def localize(self, model: nn.Module, dataloader: DataLoader | None) -> dict[str, Tensor]:
        return {n: torch.ones_like(p, dtype=torch.bool) for n, p in trainable_parameters(model).items()}

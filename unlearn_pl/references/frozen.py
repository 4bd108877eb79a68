"""``FrozenReferences``: the networks a run holds beside the one it unlearns."""

from __future__ import annotations

import copy
from collections.abc import Mapping

from torch import nn

from unlearn_pl.models.base import ImageClassifier
from unlearn_pl.utils.describe import content_hash


class FrozenReferences:
    """The untrained network the original and the oracle both train from, and, once prepared, the
    frozen references (eval mode, no gradients) with their content hashes, which key their
    per-example results (:func:`~unlearn_pl.references.results.evaluation_key`).

    A plain object, not an ``nn.Module``: a module that holds it keeps these networks out of its
    state dict (so out of checkpoints) and out of its ``.to()`` moves.

    Args:
        initial: the network, freshly initialized; a copy is kept.
    """

    def __init__(self, initial: ImageClassifier) -> None:
        self.initial = copy.deepcopy(initial)
        self.nets: dict[str, nn.Module] = {}
        self.hashes: tuple[tuple[str, str], ...] = ()

    def hold(self, nets: Mapping[str, nn.Module]) -> None:
        """Keep ``nets`` by name, frozen, with their content hashes."""
        self.nets = {name: net.eval().requires_grad_(False) for name, net in nets.items()}
        self.hashes = tuple((name, content_hash(net)) for name, net in self.nets.items())

    def get(self, name: str) -> nn.Module:
        """The reference ``name`` (``"original"`` or ``"oracle"``)."""
        if name not in self.nets:
            raise KeyError(f"no {name!r} reference model; available: {sorted(self.nets)}")
        return self.nets[name]


__all__ = ["FrozenReferences"]

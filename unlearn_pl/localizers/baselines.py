"""Baseline localizers: everything, random groups, magnitude or gradient scores, named blocks."""

from __future__ import annotations

import torch
from lightning.pytorch.utilities import rank_zero_info
from torch import Tensor, nn
from torch.utils.data import DataLoader

from unlearn_pl.functional.grouping import (
    Granularity,
    TopHOf,
    masks_from_scores,
)
from unlearn_pl.functional.scores import trainable_parameters
from unlearn_pl.functional.selection import (
    block_of,
    blocks,
    matches_prefix,
    random_group_scores,
)
from unlearn_pl.localizers.base import Budget, LocalizationData, Localizer
from unlearn_pl.localizers.del_ import DEL, TopH
from unlearn_pl.utils.arguments import PositiveInt, check_arguments
from unlearn_pl.utils.seeds import derived_seed, run_seed


class Full(Localizer):
    """Selects every trainable parameter: plain (non-localized) unlearning."""

    requires_data = False

    def __init__(self) -> None:
        super().__init__()

    def localize(self, model: nn.Module, dataloader: DataLoader | None) -> dict[str, Tensor]:
        return {n: torch.ones_like(p, dtype=torch.bool) for n, p in trainable_parameters(model).items()}


class Random(Localizer):
    """Uniformly random groups to the budget: DEL's control (same grouping, no scores).

    Groups are DEL's (output channels by default), ranked in a seeded random order and taken
    whole until ``budget`` of the scalars is selected, exactly as DEL takes its ranked groups.

    By default (``seed=None``) the order is drawn anew for every run seed: its seed is derived from
    the run's (``seed_everything``; :func:`~unlearn_pl.utils.seeds.derived_seed`), so replicates over
    seeds vary the mask as they vary the data and the weights, and a comparison with DEL is not
    conditional on one draw. The same run seed gives the same mask. An explicit ``seed`` fixes
    the mask whatever the run seed. Either way the mask is drawn on rank 0 and broadcast, and kept
    in the callback state, so a resumed run keeps it.

    Args:
        budget: fraction of trainable scalars to select, in (0, 1].
        seed: seed of the random order (``None``: derived from the run's seed).
        granularity: ``channel`` (default), ``parameter`` or ``layer``.
    """

    requires_data = False

    def __init__(self, budget: Budget = 0.3, seed: int | None = None, granularity: Granularity = "channel") -> None:
        super().__init__(budget=budget)
        check_arguments(Random.__init__, locals())
        self.seed = seed
        self.granularity = granularity

    def localize(self, model: nn.Module, dataloader: DataLoader | None) -> dict[str, Tensor]:
        shapes = {n: p.shape for n, p in trainable_parameters(model).items()}
        seed = self.seed
        if seed is None:
            seed = derived_seed("unlearn_pl.localizers.Random")
            rank_zero_info(f"Random: groups drawn with seed {seed}, derived from the run's seed {run_seed()}")
        generator = torch.Generator().manual_seed(seed)
        scores = random_group_scores(shapes, self.granularity, generator)
        # Scores are constant within a group, so top_h=1.0 (the group mean) is the drawn value.
        return masks_from_scores(scores, self.selection_budget, self.granularity, top_h=1.0)


class Magnitude(DEL):
    """DEL's pipeline with the data-free score ``|θ|``: the largest-magnitude channels.

    Args:
        budget: fraction of trainable scalars to select, in (0, 1].
        top_h: fraction of a group's scalars averaged into its score, in (0, 1].
        top_h_of: ``group``, ``channels`` or ``authors`` (see :class:`~unlearn_pl.localizers.DEL`).
        granularity: ``channel`` (default), ``parameter`` or ``layer``.
    """

    def __init__(
        self, budget: Budget = 0.3, top_h: TopH = 0.1, top_h_of: TopHOf = "group", granularity: Granularity = "channel"
    ) -> None:
        super().__init__(budget=budget, top_h=top_h, top_h_of=top_h_of, score="magnitude", granularity=granularity)


class Gradient(DEL):
    """DEL's pipeline with the score ``|g|`` (the forget-set gradient, not weighted by ``θ``).

    Args:
        budget: fraction of trainable scalars to select, in (0, 1].
        top_h: fraction of a group's scalars averaged into its score, in (0, 1].
        top_h_of: ``group``, ``channels`` or ``authors`` (see :class:`~unlearn_pl.localizers.DEL`).
        data: ``forget`` (default), ``train`` or ``retain``: where the gradient is taken.
        granularity: ``channel`` (default), ``parameter`` or ``layer``.
    """

    def __init__(
        self,
        budget: Budget = 0.3,
        top_h: TopH = 0.1,
        top_h_of: TopHOf = "group",
        data: LocalizationData = "forget",
        granularity: Granularity = "channel",
    ) -> None:
        super().__init__(
            budget=budget, top_h=top_h, top_h_of=top_h_of, score="grad", data=data, granularity=granularity
        )


class Layers(Localizer):
    """Selects whole named layers or blocks: ``names`` (prefixes), or the ``last`` / ``first`` k blocks.

    A *block* is a parameter's module path truncated to ``depth`` components. With the default
    ``depth=2`` a CIFAR ResNet's blocks are ``conv1, bn1, layer1.0, …, layer4.1, linear`` (the
    residual blocks, with stem and head as their own blocks); an ``MLP``'s are its linear layers
    (``net.1``, ``net.3``, …). ``last=2`` on a ResNet selects ``layer4.1`` and ``linear``.
    Give exactly one of ``names``, ``last``, ``first``. The budget is whatever the blocks hold.

    Args:
        names: parameter-name prefixes, matched on ``.`` boundaries (``layer4`` selects
            ``layer4.0.conv1.weight`` but not ``layer40.weight``); each must match something.
        last: select the last ``k`` blocks (in parameter registration order).
        first: select the first ``k`` blocks.
        depth: module-path depth that defines a block, ≥ 1.
    """

    requires_data = False

    def __init__(
        self,
        names: list[str] | None = None,
        last: PositiveInt | None = None,
        first: PositiveInt | None = None,
        depth: PositiveInt = 2,
    ) -> None:
        super().__init__()
        given = [k for k, v in (("names", names), ("last", last), ("first", first)) if v is not None]
        if len(given) != 1:
            raise ValueError(f"give exactly one of names=, last=, first=; got {given or 'none'}")
        if names is not None and (isinstance(names, str) or not names):
            raise ValueError(f"names must be a non-empty list of parameter-name prefixes; got {names!r}")
        check_arguments(Layers.__init__, locals())
        self.names = list(names) if names is not None else None
        self.last = last
        self.first = first
        self.depth = depth

    def selected_prefixes(self, model: nn.Module) -> list[str]:
        """The prefixes this localizer selects on ``model`` (blocks for ``last``/``first``)."""
        params = list(trainable_parameters(model))
        if self.names is not None:
            unknown = [p for p in self.names if not any(matches_prefix(n, p) for n in params)]
            if unknown:
                raise ValueError(
                    f"Layers names {unknown} match no trainable parameter; available blocks at depth "
                    f"{self.depth}: {blocks(params, self.depth)}"
                )
            return list(self.names)
        available = blocks(params, self.depth)
        k = self.last if self.last is not None else self.first
        assert k is not None
        if k > len(available):
            raise ValueError(
                f"asked for {k} blocks but the model has {len(available)} at depth {self.depth}: {available}"
            )
        return available[-k:] if self.last is not None else available[:k]

    def localize(self, model: nn.Module, dataloader: DataLoader | None) -> dict[str, Tensor]:
        chosen = self.selected_prefixes(model)
        if self.names is None:  # blocks: exact block membership
            return {
                n: torch.full_like(p, block_of(n, self.depth) in chosen, dtype=torch.bool)
                for n, p in trainable_parameters(model).items()
            }
        return {
            n: torch.full_like(p, any(matches_prefix(n, c) for c in chosen), dtype=torch.bool)
            for n, p in trainable_parameters(model).items()
        }

"""Grouping scalar scores into channels/layers and selecting groups to a budget (DEL, steps 2–4).

DEL: Torkzadehmahani et al., 2024; the authors' code is github reihaneh-torkzadehmahani/DEL-Unlearning.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor

from unlearn_pl.utils.arguments import PositiveFraction, check_value

Granularity = Literal["parameter", "channel", "layer"]
TopHOf = Literal["group", "channels", "authors"]
BudgetRounding = Literal["group", "exact"]


@dataclass
class Unit:
    """Scalars of one or more parameter tensors laid out as a ``(groups, group_size)`` matrix."""

    names: list[str]
    shapes: list[torch.Size]
    rows: Tensor  # (G, k) scores
    out_channels: int  # C_out of the (first) tensor, for the authors' top-h rule
    per_element: bool = False  # a 1-D tensor grouped element-wise (the authors score those scalars alone)


def make_units(scores: Mapping[str, Tensor], granularity: Granularity) -> list[Unit]:
    """Lay out scalar scores as groups.

    - ``channel``: a tensor of shape ``(C_out, ...)`` gives ``C_out`` groups; a 1-D tensor
      (bias, norm scale/shift) is grouped element-wise.
    - ``parameter``: every scalar is its own group.
    - ``layer``: all parameters of one module (e.g. a conv's weight and bias) form one group.
    """
    check_value("granularity", granularity, Granularity)
    if granularity == "layer":
        modules: dict[str, list[str]] = {}
        for name in scores:
            modules.setdefault(name.rpartition(".")[0], []).append(name)
        return [
            Unit(
                names,
                [scores[n].shape for n in names],
                torch.cat([scores[n].reshape(-1) for n in names]).unsqueeze(0),
                scores[names[0]].shape[0] if scores[names[0]].ndim else 1,
            )
            for names in modules.values()
        ]
    units = []
    for name, s in scores.items():
        c_out = s.shape[0] if s.ndim else 1
        per_element = granularity == "parameter" or s.ndim <= 1
        rows = s.reshape(-1, 1) if per_element else s.reshape(c_out, -1)
        units.append(Unit([name], [s.shape], rows, c_out, per_element))
    return units


def top_h_count(group_size: int, out_channels: int, top_h: float, top_h_of: TopHOf) -> int:
    """How many top scalars a group's score averages.

    - ``group`` (the paper): ``max(1, ceil(top_h · group_size))``.
    - ``channels``: ``max(1, int(top_h · C_out))`` whatever the group size, capped at the group
      size — the authors' rule, except that it never averages zero scalars.
    - ``authors``: ``int(top_h · C_out)`` exactly (DEL-Unlearning/generate_mask.py:112), capped
      at the group size. It is 0 for a tensor with fewer than ``1 / top_h`` output channels;
      the authors' mean of zero values is NaN, so those channels are never selected
      (:func:`group_scores` ranks them last).
    """
    check_value("top_h", top_h, PositiveFraction)
    check_value("top_h_of", top_h_of, TopHOf)
    if top_h_of == "group":
        return min(group_size, max(1, math.ceil(top_h * group_size)))
    if top_h_of == "channels":
        return min(group_size, max(1, int(top_h * out_channels)))
    return min(group_size, int(top_h * out_channels))  # "authors"


def group_scores(unit: Unit, top_h: float, top_h_of: TopHOf = "group") -> Tensor:
    """Mean of each group's top-h scalar scores, shape ``(G,)``.

    Under ``top_h_of="authors"`` an element-wise group (a 1-D tensor's scalar) is scored by
    its own value, and a group whose top-h count is 0 gets ``-inf`` (ranked after every real
    score, like the authors' NaN, which ``argsort`` puts last).
    """
    if top_h_of == "authors" and unit.per_element:
        return unit.rows[:, 0]
    h = top_h_count(unit.rows.shape[1], unit.out_channels, top_h, top_h_of)
    if h == 0:
        return torch.full((unit.rows.shape[0],), -math.inf, dtype=unit.rows.dtype)
    return unit.rows.topk(h, dim=1).values.mean(dim=1)


def select_to_budget(scores: Tensor, sizes: Tensor, budget_scalars: float) -> Tensor:
    """Take groups in descending score while the selected scalar count is below the budget.

    Ties keep input order (stable sort), so masks are reproducible. The last group taken may
    overshoot the budget by less than one group. Returns a boolean vector over groups.
    """
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_sizes = sizes[order]
    before = sorted_sizes.cumsum(0) - sorted_sizes  # scalars already selected when a group is reached
    chosen = torch.zeros_like(scores, dtype=torch.bool)
    chosen[order[before < budget_scalars]] = True
    return chosen


def scalars_to_take(scores: Tensor, sizes: Tensor, budget_scalars: int) -> Tensor:
    """How many scalars of each group to take so exactly ``budget_scalars`` are selected.

    Groups are taken whole in descending score (stable: ties keep input order); the group at
    the boundary is taken in part — its first scalars in memory order. This is the authors'
    ``ranks < int(N · ratio)`` over a stable sort of the flattened scores
    (DEL-Unlearning/generate_mask.py:138-158), where every scalar carries its group's score.
    Returns a long vector over groups.
    """
    order = torch.sort(scores, descending=True, stable=True).indices
    sorted_sizes = sizes[order]
    before = sorted_sizes.cumsum(0) - sorted_sizes
    take_sorted = (budget_scalars - before).clamp(min=0).minimum(sorted_sizes)
    take = torch.zeros_like(sizes)
    take[order] = take_sorted
    return take


def masks_from_scores(
    scores: Mapping[str, Tensor],
    budget: float,
    granularity: Granularity = "channel",
    top_h: float = 0.1,
    top_h_of: TopHOf = "group",
    budget_rounding: BudgetRounding = "group",
    max_share_per_tensor: float | None = None,
) -> dict[str, Tensor]:
    """Group scalar scores, rank all groups globally, and return boolean masks to ``budget``.

    ``budget`` is the fraction of all scalars in ``scores`` to select, in ``(0, 1]``.
    ``budget_rounding="group"`` takes whole groups until the budget is reached (overshooting by
    less than one group); ``"exact"`` selects exactly ``int(budget · N)`` scalars, the boundary
    group in part (:func:`scalars_to_take`), as the DEL and SalUn authors' code does.
    ``max_share_per_tensor`` (not in the papers; see :func:`within_tensor_cap`) selects at most
    that fraction of any one parameter tensor's groups; the budget is filled from the next-ranked
    groups of other tensors.
    """
    check_budget(budget)
    check_value("budget_rounding", budget_rounding, BudgetRounding)
    check_tensor_cap(max_share_per_tensor, budget, granularity)
    units = make_units({n: torch.nan_to_num(s.detach().float(), nan=0.0) for n, s in scores.items()}, granularity)
    per_unit = torch.cat([group_scores(u, top_h, top_h_of) for u in units])
    sizes = torch.cat([torch.full((u.rows.shape[0],), u.rows.shape[1], dtype=torch.long) for u in units])
    total = int(sizes.sum())
    eligible = (
        torch.ones_like(sizes, dtype=torch.bool)
        if max_share_per_tensor is None
        else within_tensor_cap(per_unit, [u.rows.shape[0] for u in units], max_share_per_tensor)
    )
    wanted = int(total * budget) if budget_rounding == "exact" else budget * total
    selectable = int(sizes[eligible].sum())
    if selectable < wanted:
        raise ValueError(
            f"max_share_per_tensor={max_share_per_tensor} leaves {selectable} of the {total} scalars "
            f"selectable, fewer than budget={budget} asks; raise the cap or lower the budget"
        )
    take = torch.zeros_like(sizes)
    if budget_rounding == "exact":
        take[eligible] = scalars_to_take(per_unit[eligible], sizes[eligible], int(wanted))
    else:
        take[eligible] = torch.where(select_to_budget(per_unit[eligible], sizes[eligible], wanted), sizes[eligible], 0)
    masks: dict[str, Tensor] = {}
    for u, part in zip(units, take.split([u.rows.shape[0] for u in units]), strict=True):
        columns = torch.arange(u.rows.shape[1]).unsqueeze(0)
        flat = (columns < part.unsqueeze(1)).reshape(-1)
        for name, shape, piece in zip(u.names, u.shapes, flat.split([s.numel() for s in u.shapes]), strict=True):
            masks[name] = piece.reshape(shape).clone()
    return masks


def within_tensor_cap(scores: Tensor, groups_per_tensor: list[int], max_share: float) -> Tensor:
    """Which groups stay selectable under a per-tensor cap: the ``floor(max_share · G)``
    best-scored groups of each tensor of ``G`` groups (stable: ties keep input order).

    Groups of one tensor have equal size, so this caps the tensor's share of selected scalars.
    Why a cap: DEL's channel scores favour the first layers' few, cheap channels (at a 10% budget
    it can take most of a ResNet's stem); the cap spreads the same budget over more layers.
    Returns a boolean vector over all groups.
    """
    eligible = []
    for part in scores.split(groups_per_tensor):
        order = torch.sort(part, descending=True, stable=True).indices
        keep = torch.zeros_like(part, dtype=torch.bool)
        keep[order[: math.floor(max_share * len(part))]] = True
        eligible.append(keep)
    return torch.cat(eligible)


def check_tensor_cap(max_share: float | None, budget: float, granularity: Granularity) -> None:
    """Raise unless ``max_share`` is ``None`` or a fraction in [budget, 1] at a granularity finer than layers."""
    if max_share is None:
        return
    if isinstance(max_share, bool) or not isinstance(max_share, (int, float)) or not budget <= max_share <= 1.0:
        raise ValueError(
            f"max_share_per_tensor must be None or a fraction in [budget, 1] = [{budget}, 1]; got {max_share!r}"
        )
    if granularity == "layer":
        raise ValueError(
            "max_share_per_tensor needs granularity 'channel' or 'parameter' (a layer is one group); "
            "got granularity='layer'"
        )


def check_budget(budget: float) -> None:
    """Raise unless ``budget`` is a fraction of the parameters in (0, 1]."""
    check_value("budget", budget, PositiveFraction)

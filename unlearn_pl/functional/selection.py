"""Data-free selections of parameters: random groups and named blocks."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import torch
from torch import Tensor

from unlearn_pl.functional.grouping import Granularity
from unlearn_pl.utils.arguments import check_value


def random_group_scores(
    shapes: Mapping[str, torch.Size], granularity: Granularity, generator: torch.Generator
) -> dict[str, Tensor]:
    """Scores that are one uniform random value per group, constant within it.

    Groups are those of :func:`~unlearn_pl.functional.grouping.make_units` (``channel``: an
    output channel of a ≥2-D tensor, or one element of a 1-D tensor; ``parameter``: a scalar;
    ``layer``: all parameters of one module). Fed to ``masks_from_scores`` with the same
    granularity, they select uniformly random groups to the budget with DEL's exact grouping.
    Values are drawn in parameter order from ``generator`` only, so a seed fixes the result.
    """
    check_value("granularity", granularity, Granularity)
    scores: dict[str, Tensor] = {}
    module_value: dict[str, Tensor] = {}
    for name, shape in shapes.items():
        shape = torch.Size(shape)
        if granularity == "layer":
            module = name.rpartition(".")[0]
            if module not in module_value:
                module_value[module] = torch.rand((), generator=generator)
            scores[name] = module_value[module].expand(shape).clone()
        elif granularity == "parameter" or len(shape) <= 1:
            scores[name] = torch.rand(shape, generator=generator)
        else:
            per_channel = torch.rand(shape[0], generator=generator)
            scores[name] = per_channel.reshape(-1, *([1] * (len(shape) - 1))).expand(shape).clone()
    return scores


def block_of(name: str, depth: int) -> str:
    """The block a parameter belongs to: its module path truncated to ``depth`` components.

    ``layer1.0.conv1.weight`` → ``layer1.0`` (depth 2) or ``layer1`` (depth 1); a parameter of a
    shallower module keeps that module (``linear.weight`` → ``linear``); a parameter owned by the
    root module is its own block (``pos_embed`` → ``pos_embed``).
    """
    if depth < 1:
        raise ValueError(f"depth must be >= 1; got {depth}")
    parts = name.split(".")
    module = parts[:-1] or parts  # root-owned parameter: the parameter itself
    return ".".join(module[:depth])


def blocks(names: Iterable[str], depth: int) -> list[str]:
    """Distinct blocks of ``names`` (see :func:`block_of`) in first-appearance order."""
    return list(dict.fromkeys(block_of(n, depth) for n in names))


def matches_prefix(name: str, prefix: str) -> bool:
    """Whether parameter ``name`` lies under ``prefix`` on a component boundary
    (``layer1`` matches ``layer1.0.conv1.weight`` but not ``layer10.weight``)."""
    return name == prefix or name.startswith(prefix + ".")

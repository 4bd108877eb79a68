"""Drawing decision regions: one panel per model over a plane, and sending figures to loggers."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import lightning.pytorch as pl
import numpy as np
from torch import Tensor

from unlearn_pl.functional import Plane, plane_grid, region_similarity
from unlearn_pl.names import ORIGINAL as BASELINE

if TYPE_CHECKING:
    from matplotlib.figure import Figure


def plot_regions(
    predictions: Mapping[str, Tensor],
    plane: Plane,
    margin: float = 0.1,
    anchor_labels: Sequence[int] | None = None,
    anchor_is_forget: Sequence[bool] | None = None,
    num_classes: int | None = None,
    title: str | None = None,
) -> Figure:
    """One panel per model: its predicted class over the plane, the three anchors marked.

    Args:
        predictions: model name → ``(R, R)`` prediction grid from
            :func:`~unlearn_pl.functional.predict_plane` on ``plane`` with the same ``margin``;
            panels appear in this order.
        plane: the plane the grids were predicted on.
        margin: the margin used for the grids (sets the axes' extent).
        anchor_labels: the anchors' labels, written next to them.
        anchor_is_forget: which anchors are forget examples (drawn as crosses, others as dots).
        num_classes: fixes the colour of each class across panels and plots (default: the
            largest predicted class + 1).
        title: the figure title.

    Returns:
        A ``matplotlib.figure.Figure`` (not registered with pyplot: no GUI backend is touched).
    """
    try:
        from matplotlib import colormaps
        from matplotlib.colors import BoundaryNorm, ListedColormap
        from matplotlib.figure import Figure
    except ImportError as e:  # pragma: no cover — exercised only without matplotlib
        raise ImportError("decision-region plots need matplotlib: pip install 'unlearn_pl[plots]'") from e

    if not predictions:
        raise ValueError("predictions is empty: pass at least one model's prediction grid")
    grids = {name: p.detach().cpu() for name, p in predictions.items()}
    shapes = {tuple(g.shape) for g in grids.values()}
    if len(shapes) != 1 or len(next(iter(shapes))) != 2 or next(iter(shapes))[0] != next(iter(shapes))[1]:
        raise ValueError(f"predictions must be square grids of one shape (R, R); got shapes {sorted(shapes)}")
    resolution = next(iter(shapes))[0]
    if num_classes is None:
        num_classes = int(max(int(g.max()) for g in grids.values())) + 1
    alphas, betas = plane_grid(plane, resolution, margin)
    extent = (float(alphas[0]), float(alphas[-1]), float(betas[0]), float(betas[-1]))
    base = colormaps["tab10" if num_classes <= 10 else "tab20"]
    cmap = ListedColormap([base(k % base.N) for k in range(num_classes)])
    norm = BoundaryNorm(np.arange(num_classes + 1) - 0.5, num_classes)
    forget = list(anchor_is_forget) if anchor_is_forget is not None else [False] * 3

    fig = Figure(figsize=(4 * len(grids) + 1, 4), layout="constrained")
    axes = fig.subplots(1, len(grids), squeeze=False)[0]
    image = None
    for ax, (name, grid) in zip(axes, grids.items(), strict=True):
        image = ax.imshow(
            grid.numpy(), origin="lower", extent=extent, cmap=cmap, norm=norm, interpolation="nearest", aspect="auto"
        )
        panel = name
        if name != BASELINE and BASELINE in grids:
            panel += f" (same as {BASELINE}: {region_similarity(grid, grids[BASELINE]):.0%})"
        ax.set_title(panel, fontsize=10)
        for k, (a, b) in enumerate(plane.anchors.tolist()):
            ax.scatter(
                [a],
                [b],
                marker="X" if forget[k] else "o",
                s=90,
                c="white",
                edgecolors="black",
                linewidths=1.2,
                label="forget example" if forget[k] else "other example",
            )
            if anchor_labels is not None:
                ax.annotate(str(int(anchor_labels[k])), (a, b), xytext=(5, 5), textcoords="offset points", fontsize=9)
        ax.set_xticks([])
        ax.set_yticks([])
    handles, labels = axes[0].get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))  # one entry per marker kind, not per anchor
    fig.legend(unique.values(), unique.keys(), loc="outside lower center", ncols=len(unique), fontsize=8)
    assert image is not None  # there is at least one grid
    fig.colorbar(image, ax=list(axes), ticks=range(num_classes), label="predicted class")
    if title:
        fig.suptitle(title, fontsize=11)
    return fig


def log_figure(trainer: pl.Trainer, tag: str, figure: Figure, path: Path) -> list[str]:
    """Send a figure to every logger of ``trainer`` that records images.

    TensorBoard-style experiments get ``add_figure``; loggers with a ``log_image(key, images)``
    method (W&B, Neptune…) get the saved PNG; others (CSVLogger) only have the file at ``path``.

    Returns:
        The class names of the loggers that received the figure.
    """
    used = []
    for logger in trainer.loggers:
        add_figure = getattr(getattr(logger, "experiment", None), "add_figure", None)
        log_image = getattr(logger, "log_image", None)
        if callable(add_figure):
            add_figure(tag, figure, global_step=trainer.global_step, close=False)
        elif callable(log_image):
            log_image(key=tag, images=[str(path)], step=trainer.global_step)
        else:
            continue
        used.append(type(logger).__name__)
    return used

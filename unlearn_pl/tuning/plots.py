"""The study's plots: validation accuracy vs goal (the overparameterization study's Figure 1)
and paired differences with their confidence intervals."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from unlearn_pl.names import FORGET_ACC, GOAL, TEST_ACC, VAL_ACC


def _labels(row: Mapping[str, Any], axes: Sequence[str]) -> str:
    return ", ".join(f"{a}={row[a]}" for a in axes if a in row)


def pareto(
    trials: Sequence[Mapping[str, Any]], selection: Sequence[Mapping[str, Any]], goal: str, axes: Sequence[str] = ()
) -> Figure:
    """Every completed trial (grey dots) and, per point, the mean over seeds of the candidates
    chosen per λ (marker size grows with λ)."""
    fig = Figure(figsize=(6, 4.5), layout="constrained")
    ax = fig.subplots()
    done = [r for r in trials if r.get("state") == "COMPLETE" and f"goal_{goal}" in r]
    ax.scatter([r[VAL_ACC] for r in done], [r[f"goal_{goal}"] for r in done], s=8, color="0.7", label="trials")
    scored = [r for r in selection if VAL_ACC in r]  # a point none of whose trials completed has no mean
    for point in dict.fromkeys(_labels(r, axes) for r in scored):
        sel = [r for r in scored if _labels(r, axes) == point]
        ax.scatter(
            [r[VAL_ACC] for r in sel],
            [r[GOAL] for r in sel],
            s=[40 + 400 * r["lambda"] for r in sel],
            alpha=0.7,
            label=point or "chosen",
        )
    ax.set(
        xlabel="validation accuracy", ylabel=f"goal ({goal})", title="chosen per λ (marker size: λ), mean over seeds"
    )
    ax.legend(fontsize=7)
    return fig


def differences(
    rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = (TEST_ACC, FORGET_ACC, GOAL), axes: Sequence[str] = ()
) -> Figure:
    """Paired differences and their 95% CIs, one panel per metric of ``metrics`` present (the
    comparison's other ``axes`` label each row)."""
    shown = [m for m in metrics if any(r["metric"] == m for r in rows)] or [rows[0]["metric"]]
    fig = Figure(figsize=(4.5 * len(shown), 1.5 + 0.3 * len(rows) / len(shown)), layout="constrained")
    for ax, metric in zip(fig.subplots(1, len(shown), squeeze=False)[0], shown, strict=True):
        sel = [r for r in rows if r["metric"] == metric]
        low = [0 if math.isnan(r["ci_low"]) else r["difference"] - r["ci_low"] for r in sel]
        high = [0 if math.isnan(r["ci_high"]) else r["ci_high"] - r["difference"] for r in sel]
        ax.errorbar([r["difference"] for r in sel], range(len(sel)), xerr=[low, high], fmt="o", capsize=3)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_yticks(
            range(len(sel)),
            [f"{r['comparison']} ({_labels(r, [a for a in axes if a != r['axis']])}) λ={r['lambda']:g}" for r in sel],
            fontsize=7,
        )
        ax.set_title(f"{metric}: paired difference, 95% CI", fontsize=9)
    return fig


def save(fig: Figure, path: Path, logger: Any = None) -> Path:
    """Write ``fig`` as PNG and send it to a Lightning logger that takes figures (TensorBoard's
    ``experiment.add_figure``, or a ``log_image`` method as in the W&B and Neptune loggers)."""
    fig.savefig(path, dpi=120)
    experiment = getattr(logger, "experiment", None)
    if experiment is not None and hasattr(experiment, "add_figure"):
        experiment.add_figure(path.stem, fig)
    elif hasattr(logger, "log_image"):
        logger.log_image(key=path.stem, images=[str(path)])
    return path

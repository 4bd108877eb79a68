"""What ``unlearn-pl audit`` writes and prints: the audit of every method from its folder's records.

Files in the audit folder:

- ``audit.csv`` / ``audit_results.json``: one row per method (and ``original``, the models before
  unlearning): F, the final score, the retain and test accuracy ratios, KLOM's median, quartiles
  and 95th percentile per split, each with ``_ci_low``/``_ci_high`` (a paired bootstrap over the
  seeds, :mod:`unlearn_pl.audit.scores`), the mean accuracies and the number of models ``n``;
- ``epsilon_histogram.csv``: per method and ε bucket, its range (``epsilon_to`` empty for the last
  bucket, which has no upper edge), points, count and fraction (with its interval);
- ``per_example.csv``: per method, split and recorded example, its KLOM (and ε and points on the
  forget set);
- ``klom.png`` and ``epsilon_histogram.png`` (with matplotlib).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from unlearn_pl.audit.scores import KLOM_SPLITS, KLOM_STATISTICS, MethodAudit
from unlearn_pl.report import format_rows, jsonable, rows_to_csv
from unlearn_pl.stats import Estimate
from unlearn_pl.utils.io import write_json, write_text

#: What the intervals are, as the JSON results and the printed table say it.
INTERVAL = (
    "95% smoothed bootstrap over the model seeds, paired (each resample draws seeds with replacement and "
    "takes the unlearned model and the oracle of each; kernel noise on confidences and margins), percentile "
    "interval recentred on the estimate"
)


def _estimate_columns(name: str, e: Estimate) -> dict[str, float]:
    return {name: e.mean, f"{name}_ci_low": e.low, f"{name}_ci_high": e.high}


def summary_rows(audits: Mapping[str, MethodAudit], classes: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """One row per method (see the module notes)."""
    rows = []
    for name, a in audits.items():
        row: dict[str, Any] = {"method": name, **classes.get(name, {}), "n": a.num_models}
        for column, e in (
            ("forget_quality", a.forget_quality),
            ("score", a.score),
            ("retain_ratio", a.retain_ratio),
            ("test_ratio", a.test_ratio),
        ):
            row.update(_estimate_columns(column, e))
        row["epsilon_undefined"] = a.undefined_epsilons
        for split in KLOM_SPLITS:
            for statistic in KLOM_STATISTICS:
                row.update(_estimate_columns(f"klom_{split}_{statistic}", a.klom_intervals[split][statistic]))
            row[f"klom_{split}_undefined"] = a.klom[split].undefined
        for which in ("unlearned", "oracle"):
            row.update({f"{which}_{split}_acc": value for split, value in a.accuracy[which].items()})
        rows.append(row)
    return rows


def histogram_rows(audits: Mapping[str, MethodAudit]) -> list[dict[str, Any]]:
    """One row per method and ε bucket."""
    rows = []
    for name, a in audits.items():
        starts = np.concatenate([[0.0], a.bucket_edges])
        ends: list[float | None] = [*map(float, a.bucket_edges), None]  # the last bucket has no upper edge
        points = np.concatenate([a.bucket_points, [0.0]])
        for k, fraction in enumerate(a.histogram):
            rows.append(
                {
                    "method": name,
                    "bucket": k,
                    "epsilon_from": float(starts[k]),
                    "epsilon_to": ends[k],
                    "points": float(points[k]),
                    "count": int(a.histogram_counts[k]),
                    **_estimate_columns("fraction", fraction),
                }
            )
    return rows


def per_example_rows(audits: Mapping[str, MethodAudit], indices: Mapping[str, Sequence[int]]) -> list[dict[str, Any]]:
    """One row per method, split and recorded example: its KLOM, and on the forget set its ε and points."""
    rows = []
    for name, a in audits.items():
        for split in KLOM_SPLITS:
            for k, index in enumerate(indices[split]):
                row = {"method": name, "split": split, "index": int(index), "klom": float(a.klom_values[split][k])}
                if split == "forget":
                    row.update(epsilon=float(a.epsilons[k]), points=float(a.points[k]))
                rows.append(row)
    return rows


def summary_table(audits: Mapping[str, MethodAudit]) -> str:
    """The short table printed at the end of an audit."""

    def cell(e: Estimate) -> str:
        return f"{e:.3f}"

    rows = [
        {
            "method": name,
            "n": str(a.num_models),
            "F": cell(a.forget_quality),
            "score": cell(a.score),
            **{f"KLOM {s}": cell(a.klom_intervals[s]["median"]) for s in KLOM_SPLITS},
        }
        for name, a in audits.items()
    ]
    return format_rows(rows, ["method", "n", "F", "score", *(f"KLOM {s}" for s in KLOM_SPLITS)])


def plot_klom(audits: Mapping[str, MethodAudit], path: Path) -> Path:
    """Box plots of per-example KLOM, one panel per split, one box per method (PNG)."""
    from matplotlib.figure import Figure  # no pyplot: a notebook's backend stays untouched

    fig = Figure(figsize=(4 * len(KLOM_SPLITS), 0.5 * len(audits) + 2))
    for ax, split in zip(fig.subplots(1, len(KLOM_SPLITS), sharey=True), KLOM_SPLITS, strict=True):
        values = [a.klom_values[split][~np.isnan(a.klom_values[split])] for a in audits.values()]
        ax.boxplot(values, vert=False, whis=(5, 95), showfliers=False)
        ax.set_yticks(range(1, len(audits) + 1), list(audits), fontsize=8)
        ax.set_xlabel(f"KLOM on {split} examples (nats)")
    fig.suptitle("KLOM per example: box = quartiles, whiskers = 5th-95th percentile", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def plot_histogram(audits: Mapping[str, MethodAudit], path: Path) -> Path:
    """The fraction of forget examples per ε bucket, with intervals, one bar series per method (PNG)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7, 3.5))
    ax = fig.subplots()
    width = 0.8 / max(len(audits), 1)
    for k, (name, a) in enumerate(audits.items()):
        x = np.arange(len(a.histogram)) + k * width
        mean = np.array([e.mean for e in a.histogram])
        err = np.nan_to_num([[e.mean - e.low for e in a.histogram], [e.high - e.mean for e in a.histogram]])
        ax.bar(x, mean, width, yerr=np.maximum(err, 0), label=name, capsize=2)
    first = next(iter(audits.values()))
    labels = [f"<{e:g}" for e in first.bucket_edges] + [
        f"≥{first.bucket_edges[-1]:g}" if len(first.bucket_edges) else "all"
    ]
    ax.set_xticks(np.arange(len(labels)) + 0.4 - width / 2, labels, fontsize=8)
    ax.set_xlabel("ε bucket (points 1, 1/2, 1/4, …; the last scores 0)")
    ax.set_ylabel("fraction of forget examples")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def write_report(
    folder: Path,
    audits: Mapping[str, MethodAudit],
    classes: Mapping[str, Mapping[str, str]],
    settings: Mapping[str, Any],
    seeds: Sequence[int],
) -> list[Path]:
    """Write the audit's tables, results and plots into ``folder``; returns the files written."""
    summary = summary_rows(audits, classes)
    histogram = histogram_rows(audits)
    files = [
        write_text(folder / "audit.csv", rows_to_csv(summary)),
        write_text(folder / "epsilon_histogram.csv", rows_to_csv(histogram)),
        write_text(folder / "per_example.csv", rows_to_csv(per_example_rows(audits, settings["plan"]["indices"]))),
        write_json(
            folder / "audit_results.json",
            jsonable(
                {
                    "interval": INTERVAL,
                    "seeds": list(seeds),
                    "seed_keys": settings.get("seed_keys"),
                    "plan": {
                        "split": settings["plan"]["split"],
                        "examples": {s: len(v) for s, v in settings["plan"]["indices"].items()},
                    },
                    "methods": summary,
                    "epsilon_histogram": histogram,
                }
            ),
        ),
    ]
    try:
        files += [plot_klom(audits, folder / "klom.png"), plot_histogram(audits, folder / "epsilon_histogram.png")]
    except ImportError:
        print("matplotlib is not installed: no plots (pip install unlearn_pl[plots])")
    return files


__all__ = [
    "INTERVAL",
    "histogram_rows",
    "per_example_rows",
    "plot_histogram",
    "plot_klom",
    "summary_rows",
    "summary_table",
    "write_report",
]

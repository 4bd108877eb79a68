"""``differences.csv``: along each axis, every value minus the axis's first value (the other axes
fixed), per λ and metric, paired by seed on each seed's chosen run, with what the seeds could detect.

Each row has the mean difference with its 95% t-interval (clipped to the range of a difference of
a bounded metric, flagged in ``ci_clipped``), ``n``, the minimal detectable effect at 80% power
(``mde``), a TOST equivalence test when the study gives the metric a ``margin``, and its
``verdict``: ``higher``, ``lower``, ``equivalent within ±m`` or ``inconclusive (could detect ≥ x)``
(:mod:`unlearn_pl.stats`). A *claim* is one comparison of one metric (``axis``, ``comparison``,
``metric``) over its settings (the other axes' values and λ): its p-values are Holm-adjusted
together (``*_holm``, ``verdict_holm``) and ``claim`` counts how many settings agree. ``split``
names the data a metric is computed on: ``val`` for the selection's own scores (``J``, ``goal``),
``test`` for the held-out ones (``J_test``, ``goal_test``), the split of a split's metric.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

from unlearn_pl.names import FORGET_ACC, GOAL, PRIVACY_READOUTS, TEST_ACC, J, absolute, scored_on, target_gap
from unlearn_pl.protocols import EVAL_SPLITS
from unlearn_pl.stats import HOLM_COLUMNS, VERDICT_COLUMNS, paired_values, verdict_rows
from unlearn_pl.tuning.selection import ordered, value_range

#: The columns of ``differences.csv`` besides the other axes' values (written even without rows:
#: a study of one point has nothing to compare).
DIFFERENCE_COLUMNS = ("axis", "comparison", "lambda", "metric", "split", *VERDICT_COLUMNS, *HOLM_COLUMNS)
#: The columns that name one claim; its rows are its settings.
CLAIM_KEYS = ("axis", "comparison", "metric")

#: ``{point: {λ: {seed: every value the study reports of the seed's chosen run}}}``.
PointValues = Mapping[str, Mapping[float, Mapping[int, Mapping[str, float]]]]


def headline_metrics(score_on: str) -> tuple[str, ...]:
    """The metrics whose claims a study's summary prints: its score on ``score_on``, test accuracy,
    and the distances of forget accuracy and the privacy readouts to the target."""
    score = J if score_on == "val" else scored_on(J, score_on)
    return (score, TEST_ACC, *(absolute(target_gap(m)) for m in (FORGET_ACC, *PRIVACY_READOUTS)))


def split_of(metric: str) -> str:
    """The data ``metric`` is computed on, by its name: ``val`` for J and the goal, the suffix of a
    held-out score (``J_test``: ``test``), the prefix of a split's metric (``forget_acc``); else ``""``."""
    name = metric.rsplit("/", 1)[-1].removeprefix("abs_")
    if name in (J, GOAL):
        return "val"
    for split in EVAL_SPLITS:
        if name in (scored_on(J, split), scored_on(GOAL, split)):
            return split
    prefix = name.split("_", 1)[0]
    return prefix if prefix in EVAL_SPLITS else ""


def difference_rows(
    values: PointValues,
    labels: Mapping[str, Mapping[str, str]],
    axes: Mapping[str, Sequence[str]],
    margins: Mapping[str, float] | None = None,
) -> list[dict[str, Any]]:
    """Every paired difference along every axis, with its verdict (see the module docstring)."""
    point_of = {tuple(sorted(lab.items())): point for point, lab in labels.items()}
    rows: list[dict[str, Any]] = []
    for axis, axis_values in axes.items():
        for point, lab in labels.items():
            base = point_of.get(tuple(sorted({**lab, axis: axis_values[0]}.items())))
            if lab[axis] == axis_values[0] or point not in values or base is None or base not in values:
                continue
            for lam in [lam for lam in values[point] if lam in values[base]]:
                a, b = values[point][lam], values[base][lam]
                for metric in ordered({k for m in a.values() for k in m} & {k for m in b.values() for k in m}):
                    per_seed = paired_values(
                        {s: m.get(metric, math.nan) for s, m in a.items()},
                        {s: m.get(metric, math.nan) for s, m in b.items()},
                    )
                    rows.append(
                        {
                            "axis": axis,
                            "comparison": f"{lab[axis]} - {axis_values[0]}",
                            **{k: v for k, v in lab.items() if k != axis},
                            "lambda": lam,
                            "metric": metric,
                            "split": split_of(metric),
                            "per_seed": per_seed,
                        }
                    )
    ranges = _ranges(values, {r["metric"] for r in rows})
    out = verdict_rows(rows, margins=margins, ranges=ranges, claim_keys=CLAIM_KEYS)
    return [{k: v for k, v in r.items() if k != "per_seed"} for r in out]


def _ranges(values: PointValues, metrics: set[str]) -> dict[str, Any]:
    """The range of each metric's values (None where a value lies outside its name's range)."""
    seen: dict[str, list[float]] = {m: [] for m in metrics}
    for per_lambda in values.values():
        for per_seed in per_lambda.values():
            for m in per_seed.values():
                for metric in metrics & m.keys():
                    seen[metric].append(m[metric])
    return {metric: value_range(metric, v) for metric, v in seen.items()}


def claims(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """One entry per claim (:data:`CLAIM_KEYS`) of ``rows``, of ``metrics`` only when given (in
    their order): its settings' count and how many agree (``claim``, Holm-adjusted)."""
    found: dict[tuple[Any, ...], dict[str, Any]] = {}
    for r in rows:
        if metrics is None or r["metric"] in metrics:
            entry = found.setdefault(tuple(r[k] for k in CLAIM_KEYS), {**{k: r[k] for k in CLAIM_KEYS}, "settings": 0})
            entry.update(settings=entry["settings"] + 1, claim=r["claim"])
    rank = {m: i for i, m in enumerate(metrics or [])}
    return sorted(found.values(), key=lambda e: (e["axis"], e["comparison"], rank.get(e["metric"], 0)))


def no_differences_line(axes: Mapping[str, Sequence[str]]) -> str:
    """The one line a study prints when it has no paired differences to report, saying why."""
    if not any(len(v) > 1 for v in axes.values()):
        return "no paired differences to report: the study has no axis with two values to compare"
    return (
        "no paired differences to report: no two points along an axis both have a completed choice "
        "(see trials.csv for the failures)"
    )

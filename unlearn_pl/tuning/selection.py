"""``selection.csv``: per point and λ, what the study chose on validation data and how it scores.

One row per point and λ:

- ``n`` and ``chosen``: each seed's best cell (:func:`~unlearn_pl.tuning.choice.chosen_per_seed`),
  and per metric its mean over those seeds with a 95% t-interval (``<metric>``, ``<metric>_ci_low``,
  ``<metric>_ci_high``; clipped to a bounded metric's range, the clipped ones named in
  ``ci_clipped``). ``J`` is then optimistic: every seed keeps its own best cell;
- ``setting``: the one cell with the highest mean J over seeds
  (:func:`~unlearn_pl.tuning.choice.best_setting`), with its per-seed J (``setting_J_per_seed``),
  their mean and interval, and the same for its held-out score (``setting_J_test``);
- ``target_retrains``: on how many seeds the target is the mean of two retrains (else the oracle's);
- ``grid_edge``: how many seeds chose a cell at the lowest or highest value of a numeric grid key
  (with at least three values), and how many chose the do-nothing cell: a choice at an edge says
  the grid should be extended there before the choice is read (:func:`grid_edges`);
- with the grid's cell states: ``n_per_cell`` (completed seeds of each cell), ``missing`` (each
  cell and seed without an outcome, and why) and ``diverged`` (each cell and seed whose network
  diverged: it ran, and cannot be chosen), and a row for a point none of whose trials completed.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from unlearn_pl.names import (
    FORGET_ACC,
    GOAL,
    ORACLE,
    ORIGINAL,
    RETAIN_ACC,
    TEST_ACC,
    VAL_ACC,
    J,
    absolute,
    logged,
    scored_on,
    target_gap,
)
from unlearn_pl.stats import Estimate, Range, mean_ci, metric_range
from unlearn_pl.tuning.choice import Run, Runs, best_setting, format_chosen, format_per_seed
from unlearn_pl.tuning.scores import PRIVACY_READOUTS, Retrains, seed_values
from unlearn_pl.tuning.space import NO_OP_PARAM, Candidate, short_key
from unlearn_pl.tuning.trial_table import diverged_status

#: Metrics shown first in the tables (when present).
KEY_METRICS = (
    J,
    GOAL,
    scored_on(J, "test"),
    scored_on(GOAL, "test"),
    f"{scored_on(J, 'test')}_gap",
    logged(ORIGINAL, scored_on(J, "test")),
    f"{logged(ORIGINAL, scored_on(J, 'test'))}_gap",
    logged(ORACLE, scored_on(J, "test")),
    VAL_ACC,
    FORGET_ACC,
    TEST_ACC,
    RETAIN_ACC,
    *(absolute(target_gap(m)) for m in (FORGET_ACC, *PRIVACY_READOUTS)),
)


def ordered(names: set[str]) -> list[str]:
    """``names`` with :data:`KEY_METRICS` first, the rest sorted."""
    return [m for m in KEY_METRICS if m in names] + sorted(names - set(KEY_METRICS))


def value_range(metric: str, values: Sequence[float]) -> Range | None:
    """The range of ``metric`` by its name, or None when a value lies outside it (a metric of
    one's own whose name reads like a bounded one: its interval is then not clipped)."""
    r = metric_range(metric)
    if r is None or all(math.isnan(v) or r[0] - 1e-6 <= v <= r[1] + 1e-6 for v in values):
        return r
    return None


def estimate(metric: str, values: Sequence[float]) -> Estimate:
    """Mean and 95% t-interval of ``values``, clipped to ``metric``'s range (:func:`value_range`)."""
    return mean_ci(values, value_range=value_range(metric, values))


def scored(
    runs: Mapping[int, Run], goal: str, lam: float, score_on: str, targets: Mapping[tuple[str, int], Retrains]
) -> dict[int, dict[str, float]]:
    """``{seed: every value a study reports of the seed's run}`` (:func:`~unlearn_pl.tuning.scores.seed_values`)."""
    return {s: seed_values(r, goal, lam, score_on, targets.get((r.candidate.point, s))) for s, r in runs.items()}


def _means(values: Mapping[int, Mapping[str, float]], prefix: str = "") -> tuple[dict[str, Any], list[str]]:
    """Per metric its mean and interval over the seeds (``<prefix><metric>``, ``…_ci_low``, ``…_ci_high``),
    and the metrics whose interval was clipped."""
    row: dict[str, Any] = {}
    clipped = []
    for metric in ordered({k for m in values.values() for k in m}):
        e = estimate(metric, [m.get(metric, math.nan) for m in values.values()])
        row.update(
            {f"{prefix}{metric}": e.mean, f"{prefix}{metric}_ci_low": e.low, f"{prefix}{metric}_ci_high": e.high}
        )
        if e.clipped:
            clipped.append(f"{prefix}{metric}")
    return row, clipped


#: Grid keys whose value 0 trains nothing (short names): a point's do-nothing cell is their lower end.
ZERO_TRAINS_NOTHING = ("lr", "max_epochs")
#: The kinds of edge a ``grid_edge`` entry names: the open ends of a grid, the lowest value of a
#: learning rate or epoch count above the do-nothing cell (bracketed by it), and that cell itself.
LOWEST, HIGHEST, LOWEST_ABOVE_NO_OP = "lowest", "highest", "lowest, above no_op"


def grid_edges(point_candidates: Sequence[Candidate], chosen: Mapping[int, Run]) -> str:
    """``selection.csv``'s ``grid_edge`` entry, e.g. ``lr=0.1 (highest): 3 of 5; no_op: 1 of 5``.

    Numeric grid keys with at least three values count (with two, every choice is at an edge);
    the do-nothing cell (``no_op``) is not a grid value and is counted on its own. Where the point
    has one, the lowest learning rate or epoch count is marked ``lowest, above no_op``: the
    do-nothing cell is that key's value 0, so a choice there beat both of its neighbours and is
    bracketed, not at an open end. :func:`edge_counts` reads the entries back.
    """
    values: dict[str, set[float]] = {}
    for c in point_candidates:
        for k, v in c.params:
            if k != NO_OP_PARAM and isinstance(v, (int, float)) and not isinstance(v, bool):
                values.setdefault(k, set()).add(v)
    has_no_op = any(dict(c.params).get(NO_OP_PARAM) is True for c in point_candidates)
    parts, n = [], len(chosen)
    for key, found in values.items():
        if len(found) < 3:
            continue
        bracketed = has_no_op and short_key(key) in ZERO_TRAINS_NOTHING
        for edge, which in ((min(found), LOWEST_ABOVE_NO_OP if bracketed else LOWEST), (max(found), HIGHEST)):
            hits = sum(dict(r.candidate.params).get(key) == edge for r in chosen.values())
            if hits:
                parts.append(f"{short_key(key)}={edge:g} ({which}): {hits} of {n}")
    no_op = sum(dict(r.candidate.params).get(NO_OP_PARAM) is True for r in chosen.values())
    if no_op:
        parts.append(f"{NO_OP_PARAM}: {no_op} of {n}")
    return "; ".join(parts)


_KINDS = "|".join(map(re.escape, (LOWEST_ABOVE_NO_OP, LOWEST, HIGHEST)))
_EDGE_PART = re.compile(
    rf"(?P<key>[\w.]+)=\S+ \((?P<kind>{_KINDS})\): (?P<hits>\d+) of \d+|{NO_OP_PARAM}: (?P<no_op>\d+) of \d+"
)


def edge_counts(entries: Iterable[str]) -> Counter[tuple[str, str]]:
    """The choices counted by grid key and kind of edge over ``grid_edge`` entries (the text of
    :func:`grid_edges`, one per selection row): ``{(key, kind): choices}``, ``kind`` one of
    :data:`LOWEST`, :data:`HIGHEST` and :data:`LOWEST_ABOVE_NO_OP`; the do-nothing cell counts as
    ``("no_op", "no_op")``. An empty entry counts
    nothing; text that :func:`grid_edges` does not write raises a ``ValueError`` naming it.

    >>> edge_counts(["lr=0.1 (highest): 3 of 5; no_op: 1 of 5", "", "lr=1 (highest): 1 of 5"])
    Counter({('lr', 'highest'): 4, ('no_op', 'no_op'): 1})
    """
    counts: Counter[tuple[str, str]] = Counter()
    for entry in entries:
        for part in filter(None, entry.split("; ")):
            match = _EDGE_PART.fullmatch(part)
            if match is None:
                raise ValueError(
                    f"not a grid_edge entry: {part!r} (expected e.g. 'lr=0.1 (highest): 3 of 5' or 'no_op: 1 of 5')"
                )
            if match["no_op"] is not None:
                counts[NO_OP_PARAM, NO_OP_PARAM] += int(match["no_op"])
            else:
                counts[match["key"], match["kind"]] += int(match["hits"])
    return counts


def open_ends(counts: Mapping[tuple[str, str], int]) -> int:
    """How many of :func:`edge_counts`' choices sit at an open end of a grid (the lowest or highest
    value with nothing beyond it): the choices to extend the grid for before reading them."""
    return sum(hits for (_, kind), hits in counts.items() if kind in (LOWEST, HIGHEST))


def selection_rows(
    runs: Runs,
    chosen: Mapping[str, Mapping[float, Mapping[int, Run]]],
    targets: Mapping[tuple[str, int], Retrains],
    labels: Mapping[str, Mapping[str, str]],
    goal: str,
    lambdas: Sequence[float],
    score_on: str = "val",
    status: Mapping[tuple[str, int], str] | None = None,
    candidates: Sequence[Candidate] = (),
    seeds: Sequence[int] = (),
) -> list[dict[str, Any]]:
    """One row per point and λ (see the module docstring). ``status`` (per candidate and seed, from
    :func:`~unlearn_pl.tuning.trial_table.cell_status`) with the study's ``candidates`` and
    ``seeds`` adds ``n_per_cell``, ``missing`` (the cells without an outcome, and why) and
    ``diverged`` (the cells whose network diverged: run, and not choosable)."""
    # Each point's grid: the study's candidates, else those its completed runs drew.
    grids: dict[str, list[Candidate]] = {}
    for c in candidates or [r.candidate for per_seed in runs.values() for rs in per_seed.values() for r in rs]:
        if c not in grids.setdefault(c.point, []):
            grids[c.point].append(c)
    # The cells whose states are reported: the study's own grid, when the states are known.
    cells = grids if status and candidates else {}
    held = [scored_on(J, score_on)] if score_on != "val" else []
    rows = []
    for point in sorted(set(chosen) | set(cells)):
        extra: dict[str, Any] = {}
        if point in cells and status is not None:
            label = {c.name: c.name.rsplit("/", 1)[-1] for c in cells[point]}
            extra["n_per_cell"] = "; ".join(
                f"{label[c.name]}: {sum(status.get((c.name, s)) == 'COMPLETE' for s in seeds)}" for c in cells[point]
            )
            states = [(label[c.name], s, status.get((c.name, s), "COMPLETE")) for s in seeds for c in cells[point]]
            extra["missing"] = "; ".join(
                f"{cell} seed {s}: {state}"
                for cell, s, state in states
                if state != "COMPLETE" and not diverged_status(state)
            )
            extra["diverged"] = "; ".join(f"{cell} seed {s}" for cell, s, state in states if diverged_status(state))
        for lam in chosen.get(point) or [float(lam) for lam in lambdas]:
            per_seed = chosen.get(point, {}).get(lam, {})
            values = scored(per_seed, goal, lam, score_on, targets)
            best = best_setting(runs.get(point, {}), goal, lam)
            setting = scored(best, goal, lam, score_on, targets)
            row: dict[str, Any] = {
                **labels[point],
                "lambda": lam,
                "n": len(values),
                "chosen": format_chosen({s: r.candidate.name for s, r in per_seed.items()}),
            }
            row.update(_setting_columns(next(iter(best.values())).cell if best else "", setting, [J, *held]))
            row.update(extra)
            row["grid_edge"] = grid_edges(grids.get(point, []), per_seed)
            row["target_retrains"] = sum(
                targets[(point, s)].retrain is not None for s in per_seed if (point, s) in targets
            )
            means, clipped = _means(values)
            row.update(means)
            row["ci_clipped"] = "; ".join(clipped)
            rows.append(row)
    return rows


def _setting_columns(cell: str, values: Mapping[int, Mapping[str, float]], scores: Sequence[str]) -> dict[str, Any]:
    """The one setting's columns: its cell, seeds, per-seed J, and the mean and interval of ``scores``."""
    out: dict[str, Any] = {"setting": cell, "setting_n": len(values)}
    out[f"setting_{J}_per_seed"] = format_per_seed({s: m[J] for s, m in values.items()})
    for score in scores:
        e = estimate(score, [m.get(score, math.nan) for m in values.values()])
        out.update({f"setting_{score}": e.mean, f"setting_{score}_ci_low": e.low, f"setting_{score}_ci_high": e.high})
    return out

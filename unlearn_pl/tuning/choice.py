"""What a study chooses, on validation data: per point and λ, each seed's best cell, and the one
cell whose mean J(λ) over seeds is highest.

- **Per seed** (:func:`chosen_per_seed`): argmax J(λ) over the seed's completed candidates of the
  point. A mean over these choices is *optimistic*: each seed keeps its own best cell.
- **One setting** (:func:`best_setting`): the cell with the highest mean J(λ) over seeds, among
  the cells completed on the most seeds; the study's single answer per point and λ.

Both break ties the same way (:data:`TIE_BREAK`): the earlier cell in grid order.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.trial import TrialState

from unlearn_pl.names import VAL_ACC
from unlearn_pl.tuning.engine import repeated_copies
from unlearn_pl.tuning.objective import best_index, select
from unlearn_pl.tuning.objective import objective as j_value
from unlearn_pl.tuning.space import Candidate

#: How equally good cells are told apart, in every choice a study makes.
TIE_BREAK = (
    "ties go to the earlier cell in grid order (the grid's keys in the order given, each key's values "
    "in the order listed)"
)


@dataclass(frozen=True)
class Run:
    """A completed trial: its candidate (and the candidate's place in grid order), seed, metrics and
    goals (on validation data)."""

    candidate: Candidate
    order: int
    seed: int
    metrics: Mapping[str, float]
    goals: Mapping[str, float]

    @property
    def cell(self) -> str:
        """The grid cell, ``max_epochs=10,lr=0.05`` (the point alone when it has no grid)."""
        return self.candidate.name.rsplit("/", 1)[-1]

    def j(self, goal: str, lam: float) -> float:
        """J(λ) on validation data: the selection score."""
        return j_value(self.metrics[VAL_ACC], self.goals[goal], lam)


#: ``{point: {seed: the seed's completed runs, in grid order}}``.
Runs = dict[str, dict[int, list[Run]]]


def completed_runs(study: optuna.Study, candidates: Mapping[str, Candidate]) -> Runs:
    """Every completed trial of ``study`` whose candidate is one of ``candidates``, per point and seed
    (a trial copied twice from another study once: :func:`~unlearn_pl.tuning.engine.repeated_copies`)."""
    order = {name: i for i, name in enumerate(candidates)}
    out: Runs = {}
    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    repeated = repeated_copies(done)
    for t in done:
        if t.number not in repeated and (c := candidates.get(t.params.get("candidate", ""))) is not None:
            run = Run(c, order[c.name], t.params["seed"], t.user_attrs["metrics"], t.user_attrs["goals"])
            out.setdefault(c.point, {}).setdefault(run.seed, []).append(run)
    for per_seed in out.values():
        for runs in per_seed.values():
            runs.sort(key=lambda r: r.order)
    return {point: dict(sorted(per_seed.items())) for point, per_seed in sorted(out.items())}


def chosen_per_seed(runs: Runs, goal: str, lambdas: Sequence[float]) -> dict[str, dict[float, dict[int, Run]]]:
    """``{point: {λ: {seed: chosen run}}}``: argmax J(λ) over each seed's completed candidates."""
    out: dict[str, dict[float, dict[int, Run]]] = {}
    for point, per_seed in runs.items():
        for seed, done in per_seed.items():
            for lam, i in select([r.metrics[VAL_ACC] for r in done], [r.goals[goal] for r in done], lambdas).items():
                out.setdefault(point, {}).setdefault(lam, {})[seed] = done[i]
    return out


def best_setting(per_seed: Mapping[int, Sequence[Run]], goal: str, lam: float) -> dict[int, Run]:
    """``{seed: run}`` of the point's one cell with the highest mean J(λ) over seeds, among the
    cells completed on the most seeds (the mean of two cells is over the same seeds then); empty
    when no run completed."""
    cells: dict[str, dict[int, Run]] = {}
    for seed, done in per_seed.items():
        for r in done:
            cells.setdefault(r.candidate.name, {})[seed] = r
    if not cells:
        return {}
    most = max(len(by_seed) for by_seed in cells.values())
    in_grid_order = sorted(cells, key=lambda name: next(iter(cells[name].values())).order)
    competing = [name for name in in_grid_order if len(cells[name]) == most]
    # fsum: the same per-seed values give the same mean whatever their order, so a tie stays a tie.
    means = [math.fsum(r.j(goal, lam) for r in cells[name].values()) / most for name in competing]
    return dict(sorted(cells[competing[best_index(means)]].items()))


def format_chosen(names: Mapping[int, str]) -> str:
    """``selection.csv``'s ``chosen`` entry from ``{seed: chosen candidate's name}``: each seed's grid
    cell (the name's last component), ``seed 0: max_epochs=10,lr=0.05; seed 1: …``."""
    return "; ".join(f"seed {s}: {names[s].rsplit('/', 1)[-1]}" for s in sorted(names))


def format_per_seed(values: Mapping[int, float], spec: str = ".4f") -> str:
    """``seed 0: 0.9123; seed 1: 0.9011``: a value per seed, as ``selection.csv`` lists them."""
    return "; ".join(f"seed {s}: {values[s]:{spec}}" for s in sorted(values))


# A cell's ``key=value`` pairs are joined by commas; a comma inside a value (a JSON list prints as
# ``[32, 16]``) is followed by a space, never directly by ``key=``.
_PAIR_SEPARATOR = re.compile(r",(?=[^,=\s]+=)")


def parse_chosen(text: str) -> dict[int, dict[str, str]]:
    """Read a ``chosen`` entry of ``selection.csv`` back into ``{seed: {key: value text}}``: the
    grid cell each seed chose, its keys the columns of ``trials.csv`` that hold them.

    >>> parse_chosen("seed 0: max_epochs=10,lr=0.05; seed 1: max_epochs=2,lr=0.05")[1]
    {'max_epochs': '2', 'lr': '0.05'}
    """
    cells: dict[int, dict[str, str]] = {}
    for part in text.split("; "):
        seed, sep, cell = part.partition(": ")
        if not sep or not seed.startswith("seed ") or not seed[5:].isdigit():
            raise ValueError(f"not a selection.csv 'chosen' entry ('seed <n>: <key>=<value>,…; …'): {text!r}")
        cells[int(seed[5:])] = parse_cell(cell)
    return cells


def parse_cell(cell: str) -> dict[str, str]:
    """``{key: value text}`` of a grid cell's name (``max_epochs=10,lr=0.05``); a candidate without
    grid parameters is named by its point alone (``base`` without axes): ``{}``.

    >>> parse_cell("max_epochs=10,hidden=[32, 16]")
    {'max_epochs': '10', 'hidden': '[32, 16]'}
    """
    pairs: list[tuple[str, Any, str]] = [kv.partition("=") for kv in _PAIR_SEPARATOR.split(cell)]
    return {k: v for k, eq, v in pairs if eq}

"""The trials a worker takes: the cells of a grid queued once each (Optuna's trial queue), or
trials drawn by a sampler up to ``n_trials``; a cell queued twice runs once."""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.exceptions import UpdateFinishedTrialError
from optuna.trial import FrozenTrial, TrialState


# ----------------------------------------------------------------------------- grids
@dataclass(frozen=True)
class Grid:
    """The cells of a grid study: each a parameter set that runs once. With ``distributions``
    (those the objective suggests), queued trials carry their parameters from the start."""

    cells: Sequence[Mapping[str, Any]]
    distributions: Mapping[str, BaseDistribution] | None = None

    @classmethod
    def product(cls, space: Mapping[str, Sequence[Any]]) -> Grid:
        """Every combination of ``space``'s values (a ``GridSampler``'s search space)."""
        return cls([dict(zip(space, values, strict=True)) for values in itertools.product(*space.values())])


def cell_key(params: Mapping[str, Any]) -> str:
    """A cell's identity: its parameters as canonical JSON."""
    return json.dumps(dict(params), sort_keys=True, default=str)


def trial_cell(t: FrozenTrial) -> dict[str, Any]:
    """A trial's parameters, or those it was queued with (``fixed_params``) before it ran."""
    return dict(t.params) or dict(t.system_attrs.get("fixed_params") or {})


def retried_trials(trials: Sequence[FrozenTrial]) -> set[int]:
    """The numbers of the failed trials that a later trial retries."""
    return {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}


#: The user attribute naming where a copied trial came from: ``"<study name>#<trial number>"``.
REUSED_FROM = "reused_from"

#: The user attribute (``True``) of a FAIL trial whose network diverged (NaN or infinite weights):
#: an outcome of its cell, which cannot be chosen, rather than an error to fix and run again.
DIVERGED = "diverged"


def repeated_copies(trials: Sequence[FrozenTrial]) -> set[int]:
    """The numbers of the trials that repeat another and do not count: the later copy of a cell two
    processes queued at once (PRUNED with ``duplicate_of`` when it came to run), and a trial copied
    from another study's trial that an earlier trial already copies. Two processes that grow the
    same study from the same lender at once (two machines starting ``tune --reuse`` on shared
    storage) each copy its trials, and a finished trial cannot be marked afterwards: only the first
    copy of each lender trial stands."""
    first: dict[str, int] = {}
    repeated = set()
    for t in sorted(trials, key=lambda t: t.number):
        origin = t.user_attrs.get(REUSED_FROM)
        if "duplicate_of" in t.user_attrs or (origin is not None and first.setdefault(origin, t.number) != t.number):
            repeated.add(t.number)
    return repeated


def final_failure(t: FrozenTrial, retried: set[int]) -> bool:
    """A FAIL that stands: not an interrupt (queued again) and not a dead worker's trial with a retry."""
    return t.state == TrialState.FAIL and not t.user_attrs.get("interrupted") and t.number not in retried


def stands_for_cell(t: FrozenTrial, retried: set[int], repeated: set[int]) -> bool:
    """Whether ``t`` stands for its cell: live, done, or failed for good, and not a repeat
    (``repeated``: :func:`repeated_copies`)."""
    if t.number in repeated:
        return False
    return t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED) or final_failure(
        t, retried
    )


def standing_cells(study: optuna.Study) -> dict[str, list[FrozenTrial]]:
    """``{cell key: the trials that stand for the cell}`` (:func:`stands_for_cell`), over ``study``'s trials."""
    trials = study.get_trials(deepcopy=False)
    retried, repeated = retried_trials(trials), repeated_copies(trials)
    standing: dict[str, list[FrozenTrial]] = {}
    for t in trials:
        if stands_for_cell(t, retried, repeated):
            standing.setdefault(cell_key(trial_cell(t)), []).append(t)
    return standing


def queue_cells(study: optuna.Study, grid: Grid, retry_failed: bool = False) -> int:
    """Queue every cell of ``grid`` that no trial stands for (and, with ``retry_failed``, every
    cell whose trials all failed); return how many were queued."""
    standing = standing_cells(study)
    queued = 0
    for cell in grid.cells:
        held = standing.get(cell_key(cell), [])
        if held and not (retry_failed and all(t.state == TrialState.FAIL for t in held)):
            continue
        # Queued as Optuna's enqueue_trial does (fixed_params), with the parameters themselves when
        # their distributions are known; a retry names the failures it follows as a retry callback does.
        system: dict[str, Any] = {"fixed_params": dict(cell)}
        if held:
            system.update(failed_trial=held[0].number, retry_history=[t.number for t in held])
        known = grid.distributions
        study.add_trial(
            optuna.trial.create_trial(
                state=TrialState.WAITING,
                params=dict(cell) if known is not None else None,
                system_attrs=system,
                distributions={k: known[k] for k in cell} if known is not None else None,
            )
        )
        queued += 1
    return queued


def earlier_copy(study: optuna.Study, trial: FrozenTrial) -> int | None:
    """An earlier trial standing for ``trial``'s cell (two processes queued it at once), if any."""
    key, trials = cell_key(trial_cell(trial)), study.get_trials(deepcopy=False)
    retried, ancestry = retried_trials(trials), set(trial.system_attrs.get("retry_history", []))
    repeated = repeated_copies(trials)
    for t in trials:
        if (
            t.number < trial.number
            and t.number not in ancestry
            and stands_for_cell(t, retried, repeated)
            and cell_key(trial_cell(t)) == key
        ):
            return t.number
    return None


# ----------------------------------------------------------------------------- taking a trial
@dataclass
class Plan:
    """What a worker takes: queued trials of a grid, or trials drawn by the sampler up to ``n_trials``."""

    grid: bool
    n_trials: int | None
    distributions: Mapping[str, BaseDistribution] | None


def suggest(trial: optuna.Trial, name: str, d: BaseDistribution) -> None:
    """Record parameter ``name`` of a queued trial with its distribution ``d``."""
    if isinstance(d, CategoricalDistribution):
        trial.suggest_categorical(name, d.choices)
    elif isinstance(d, IntDistribution):
        trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    elif isinstance(d, FloatDistribution):
        trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)


#: The trials this process took: one still RUNNING when no trial runs here was left by an error
#: between taking it and recording the process (a full disk).
CLAIMED: set[tuple[str, int]] = set()


def claim_queued(study: optuna.Study) -> optuna.Trial | None:
    """Take a queued trial (WAITING → RUNNING, the atomic step of Optuna's trial queue), or None."""
    storage = study._storage
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                CLAIMED.add((study.study_name, t.number))
                return optuna.Trial(study, t._trial_id)
        except UpdateFinishedTrialError:
            continue
    return None


def live_count(study: optuna.Study) -> int:
    """The trials that stand for a cell (for an open search's ``n_trials``)."""
    retried = retried_trials(trials := study.get_trials(deepcopy=False))
    repeated = repeated_copies(trials)
    return sum(stands_for_cell(t, retried, repeated) for t in trials)


def next_trial(study: optuna.Study, plan: Plan) -> optuna.Trial | None:
    """The next trial of ``plan`` for this worker, or None when there is none left."""
    if (
        plan.n_trials is not None
        and live_count(study) >= plan.n_trials
        and not study.get_trials(deepcopy=False, states=(TrialState.WAITING,))
    ):
        return None
    if not plan.grid:
        return study.ask(fixed_distributions=dict(plan.distributions or {}))  # parameters drawn at once
    trial = claim_queued(study)
    if trial is not None and plan.distributions:
        # A trial queued with parameters has them; one queued by name only (enqueue_trial) gets them now.
        for name in trial_cell(study._storage.get_trial(trial._trial_id)):
            if name in plan.distributions:
                suggest(trial, name, plan.distributions[name])
    return trial

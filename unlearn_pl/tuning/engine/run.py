"""The engine's entry point, :func:`run_trials` (see :mod:`unlearn_pl.tuning.engine`)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence

import optuna
from optuna.distributions import BaseDistribution
from optuna.samplers import BaseSampler, GridSampler
from optuna.storages import BaseStorage
from optuna.study import StudyDirection

from unlearn_pl.tuning.engine.devices import plan_workers, resolve_workers
from unlearn_pl.tuning.engine.processes import run_workers
from unlearn_pl.tuning.engine.queue import Grid, Plan, queue_cells
from unlearn_pl.tuning.engine.storage import heartbeat_enabled, open_storage
from unlearn_pl.tuning.engine.worker import Objective, fail_interrupted_trials, work


def run_trials(
    objective: Objective,
    *,
    study_name: str,
    storage: str | os.PathLike | BaseStorage,
    sampler: BaseSampler | None = None,
    directions: Sequence[str] = ("maximize",),
    n_trials: int | None = None,
    workers: int | str = 1,
    grid: Grid | None = None,
    retry_failed: bool = False,
    distributions: Mapping[str, BaseDistribution] | None = None,
    gpus_per_trial: int = 0,
) -> optuna.Study:
    """Create (or resume) the study ``study_name`` in ``storage`` (an Optuna storage, an RDB URL or
    a journal file path) and run its trials with ``workers`` processes (1: in this process).

    The trials are the cells of ``grid`` (or of a ``GridSampler``'s grid), each run once, or, with
    another sampler, ``n_trials`` in all, each drawing ``distributions`` when it starts.
    ``retry_failed`` queues the cells whose trials failed once more. Returns the study, reloaded after every worker finished (see the module docstring).

    ``gpus_per_trial`` is how many GPUs a trial trains on (0: CPU trials;
    :func:`~unlearn_pl.tuning.engine.devices.trial_gpus` reads it from a config): each worker
    process gets its own GPUs and ``cores // workers`` torch threads
    (:mod:`~unlearn_pl.tuning.engine.devices`); ``workers="auto"`` is one worker per trial's GPUs,
    or per core for CPU trials.

    Raises:
        ValueError: on a bad argument, or an existing study of that name with other directions.
        StudyInterrupted: Ctrl-C or SIGTERM stopped the trials.
        WorkerDied: a worker process ended abnormally.
    """
    if isinstance(gpus_per_trial, bool) or not isinstance(gpus_per_trial, int) or gpus_per_trial < 0:
        raise ValueError(f"gpus_per_trial must be an integer >= 0; got {gpus_per_trial!r}")
    workers = resolve_workers(workers, gpus_per_trial)
    # Every worker's share is settled (or refused) before the study is touched.
    resources = plan_workers(workers, gpus_per_trial)
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise ValueError(f"n_trials must be an integer >= 1 or None; got {n_trials!r}")
    if grid is None and isinstance(sampler, GridSampler):
        grid = Grid.product(sampler._search_space)  # GridSampler keeps its grid there; it has no public accessor
    if n_trials is None and grid is None:
        raise ValueError(
            f"n_trials=None runs until the grid is exhausted, so it needs a GridSampler or a grid; got "
            f"{type(sampler).__name__ if sampler is not None else 'the default sampler'}: give n_trials"
        )
    if not directions or any(d not in ("maximize", "minimize") for d in directions):
        raise ValueError(f"directions must be 'maximize' or 'minimize' per objective; got {list(directions)}")
    storage = open_storage(storage)
    study = optuna.create_study(
        study_name=study_name,
        storage=storage,
        sampler=sampler,
        directions=[StudyDirection[d.upper()] for d in directions],
        load_if_exists=True,
    )
    if [d.name.lower() for d in study.directions] != list(directions):
        raise ValueError(
            f"study {study_name!r} already exists with directions "
            f"{[d.name.lower() for d in study.directions]}, not {list(directions)}; use another study name"
        )
    if not heartbeat_enabled(study):
        fail_interrupted_trials(study)
    if grid is not None:
        queue_cells(study, grid, retry_failed)
    plan = Plan(grid is not None, n_trials, grid.distributions if grid is not None else distributions)
    if workers == 1:
        work(objective, study, plan)
    else:
        run_workers(objective, study_name, storage, None if grid is not None else study.sampler, plan, resources)
    return optuna.load_study(study_name=study_name, storage=storage, sampler=study.sampler)

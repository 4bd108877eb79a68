"""Run an Optuna study's trials in one or several processes, all on one storage.

This is the documented Optuna pattern for parallel optimization (Optuna's tutorial "Easy
Parallelization"): every worker process opens the same study with ``optuna.load_study`` and
calls ``study.optimize``; the storage (a journal file here, an RDB server across machines)
hands each worker its next trial. There is no job queue of ours.

API::

    def run_trials(objective, *, study_name, storage, sampler=None, directions=("maximize",),
                   n_trials=None, workers=1) -> optuna.Study
    def journal_storage(path) -> optuna.storages.JournalStorage

``objective`` takes an ``optuna.Trial`` and returns a float (or one float per direction). It must
be picklable when ``workers > 1`` (a top-level function, or an instance of a top-level class),
because each worker is a fresh process of the ``spawn`` start method, limited to one torch thread.

Behaviour a study relies on:

- **Resuming.** Calling :func:`run_trials` again with the same ``study_name`` and ``storage``
  continues the study: completed trials are kept. Trials left RUNNING by a worker that died
  (same host, process gone) are marked FAIL with ``error = "interrupted: …"`` and their
  parameters are queued once more as a new trial (user attr ``retry_of``), so the grid still
  completes; a trial whose objective *raised* is recorded as FAIL with its error message (user
  attr ``error``) and never retried.
- **Grids.** With ``optuna.samplers.GridSampler`` and ``n_trials=None`` the run ends when the
  grid is exhausted (Optuna stops the study then); other samplers need ``n_trials``.
- **n_trials** counts the study's trials in every state, over all workers and earlier runs
  (``optuna.study.MaxTrialsCallback``); concurrent workers may overshoot it by ``workers − 1``.
- **Other machines** join a study by calling :func:`run_trials` (or ``unlearn-pl tune …
  --storage URL --study_name NAME``) with the same RDB URL (e.g. ``postgresql://…``; see
  Optuna's ``RDBStorage``) and study name.

Example::

    import optuna
    from unlearn_pl.tuning.engine import journal_storage, run_trials

    def objective(trial):                      # top level: picklable
        x = trial.suggest_categorical("x", [0, 1, 2])
        return -(x - 1) ** 2

    study = run_trials(objective, study_name="demo", storage=journal_storage("runs/demo/study.log"),
                       sampler=optuna.samplers.GridSampler({"x": [0, 1, 2]}), workers=2)
    study.trials_dataframe()
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.samplers import GridSampler
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

Objective = Callable[[optuna.Trial], "float | Sequence[float]"]

_log = logging.getLogger(__name__)

#: User attributes the engine writes on every trial.
ERROR_ATTR, HOST_ATTR, PID_ATTR, RETRY_ATTR, DUPLICATE_ATTR = "error", "host", "pid", "retry_of", "duplicate_of"


def journal_storage(path: str | os.PathLike) -> JournalStorage:
    """An Optuna journal storage in the file ``path`` (created with its folder if needed).

    Several processes on one machine may share it (Optuna locks the file); open it with
    ``optuna-dashboard path``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def open_storage(storage: str | os.PathLike | BaseStorage) -> BaseStorage:
    """``storage`` itself, an RDB URL opened by Optuna (``sqlite:///…``, ``postgresql://…``), or
    a plain file path opened as a :func:`journal_storage`."""
    if isinstance(storage, BaseStorage):
        return storage
    text = os.fspath(storage)
    if "://" in text:
        return optuna.storages.get_storage(text)
    return journal_storage(text)


def _grid_duplicate(trial: optuna.Trial) -> int | None:
    """The number of an earlier live trial of the same grid cell, if any.

    Optuna's ``GridSampler`` gives the first ``len(grid)`` trial numbers one cell each, but a
    worker that asks for a trial while the last cells are still running is handed one of them
    again (``GridSampler._get_unvisited_grid_ids``): that trial is a duplicate.
    """
    storage = trial.study._storage
    cell = storage.get_trial_system_attrs(trial._trial_id).get("grid_id")
    if cell is None:
        return None
    live = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.WAITING)
    for t in trial.study.get_trials(deepcopy=False, states=live):
        if t.number < trial.number and t.system_attrs.get("grid_id") == cell and DUPLICATE_ATTR not in t.user_attrs:
            return t.number
    return None


class RecordedObjective:
    """Wraps an objective so every trial records its host and process (to detect a dead worker)
    and, if it raises, its error message as the user attr ``error`` before Optuna marks it FAIL.

    A grid cell handed out a second time while its first trial is live is not run: the trial is
    PRUNED with the user attr ``duplicate_of`` and this worker stops (every cell has started).
    """

    def __init__(self, objective: Objective) -> None:
        self.objective = objective

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        trial.set_user_attr(HOST_ATTR, socket.gethostname())
        trial.set_user_attr(PID_ATTR, os.getpid())
        original = _grid_duplicate(trial)
        if original is not None:
            trial.set_user_attr(DUPLICATE_ATTR, original)
            trial.study.stop()
            raise optuna.TrialPruned(f"grid cell already taken by trial {original}")
        try:
            return self.objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as e:
            trial.set_user_attr(ERROR_ATTR, f"{type(e).__name__}: {e}")
            raise


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def fail_interrupted_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials whose worker (on this host) no longer exists, and queue their
    parameters again as new trials. Returns the numbers of the trials marked.

    Only this host's trials can be judged (by process id); for trials of other machines use an
    RDB storage with a heartbeat (Optuna's ``RDBStorage(heartbeat_interval=…)``), which Optuna
    checks itself at every new trial.
    """
    storage, host, marked = study._storage, socket.gethostname(), []
    grid_keys = ("grid_id", "search_space")
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get(PID_ATTR)
        if t.user_attrs.get(HOST_ATTR) != host or not isinstance(pid, int) or _process_alive(pid):
            continue
        try:
            storage.set_trial_user_attr(t._trial_id, ERROR_ATTR, f"interrupted: worker process {pid} on {host} ended")
            storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another process judged it first
        # A queued copy with the same parameters; a GridSampler reads its grid cell from the
        # system attrs (copied), so the grid is not re-drawn.
        system = {k: t.system_attrs[k] for k in grid_keys if k in t.system_attrs}
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, system_attrs={"fixed_params": dict(t.params), **system},
            user_attrs={RETRY_ATTR: t.number},
        ))
        _log.warning("trial %d was interrupted (worker %d gone): marked FAIL and queued again", t.number, pid)
        marked.append(t.number)
    return marked


def _grid_started(study: optuna.Study) -> bool:
    """Whether a grid study has a trial for every cell and none queued (asking for another trial
    would only repeat a cell)."""
    sampler = study.sampler
    if not isinstance(sampler, GridSampler):
        return False
    trials = study.get_trials(deepcopy=False)
    if any(t.state == TrialState.WAITING for t in trials):
        return False
    cells = {t.system_attrs.get("grid_id") for t in trials if "grid_id" in t.system_attrs}
    return len(cells) >= len(sampler._all_grids)


def _stop_when_grid_started(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    if _grid_started(study):
        study.stop()


def _optimize(objective: Objective, study: optuna.Study, n_trials: int | None) -> None:
    callbacks: list[Callable[[optuna.Study, optuna.trial.FrozenTrial], None]] = [_stop_when_grid_started]
    if n_trials is not None:
        callbacks.append(optuna.study.MaxTrialsCallback(n_trials, states=None))
        if len(study.get_trials(deepcopy=False)) >= n_trials:
            return
    if _grid_started(study):
        return
    study.optimize(RecordedObjective(objective), n_trials=n_trials, catch=(Exception,), callbacks=callbacks)


def _worker(objective: Objective, study_name: str, storage: BaseStorage, sampler: optuna.samplers.BaseSampler,
            n_trials: int | None, index: int) -> None:
    """One worker process: one torch thread, the shared study, optimize until done."""
    import torch

    torch.set_num_threads(1)
    if index > 0:
        sampler.reseed_rng()  # copies of one sampler would otherwise propose the same points
    study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
    _optimize(objective, study, n_trials)


def run_trials(
    objective: Objective,
    *,
    study_name: str,
    storage: str | os.PathLike | BaseStorage,
    sampler: optuna.samplers.BaseSampler | None = None,
    directions: Sequence[str] = ("maximize",),
    n_trials: int | None = None,
    workers: int = 1,
) -> optuna.Study:
    """Create (or resume) the study ``study_name`` in ``storage`` and run its trials.

    Args:
        objective: ``(optuna.Trial) -> float | Sequence[float]``; picklable if ``workers > 1``.
        study_name: the study's name in the storage.
        storage: an Optuna storage, an RDB URL, or a journal file path (see :func:`open_storage`).
        sampler: Optuna's sampler (default: Optuna's default for the number of directions).
        directions: ``"maximize"``/``"minimize"`` per objective value.
        n_trials: total trials of the study (all states, all workers, earlier runs included);
            ``None`` only with a ``GridSampler`` (the run ends with the grid).
        workers: processes on this machine (``spawn``, one torch thread each); 1 runs in this process.

    Returns:
        The study, reloaded after every worker finished.

    Raises:
        ValueError: on bad ``workers``/``n_trials``/``directions``, or a study of that name with
            other directions.
        RuntimeError: if a worker process exits with an error.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise ValueError(f"n_trials must be an integer >= 1 or None; got {n_trials!r}")
    if n_trials is None and not isinstance(sampler, GridSampler):
        raise ValueError("n_trials=None runs until the grid is exhausted, so it needs a GridSampler; "
                         f"got {type(sampler).__name__ if sampler is not None else 'the default sampler'}: give n_trials")
    bad = [d for d in directions if d not in ("maximize", "minimize")]
    if not directions or bad:
        raise ValueError(f"directions must be 'maximize' or 'minimize' per objective; got {list(directions)}")
    storage = open_storage(storage)
    study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                directions=list(directions), load_if_exists=True)
    wanted = [optuna.study.StudyDirection.MAXIMIZE if d == "maximize" else optuna.study.StudyDirection.MINIMIZE
              for d in directions]
    if list(study.directions) != wanted:
        raise ValueError(f"study {study_name!r} already exists with directions "
                         f"{[d.name.lower() for d in study.directions]}, not {list(directions)}; use another study name")
    fail_interrupted_trials(study)
    if workers == 1:
        _optimize(objective, study, n_trials)
    else:
        _run_workers(objective, study_name, storage, study.sampler, n_trials, workers)
    return optuna.load_study(study_name=study_name, storage=storage, sampler=study.sampler)


def _run_workers(objective: Objective, study_name: str, storage: BaseStorage, sampler: Any,
                 n_trials: int | None, workers: int) -> None:
    context = multiprocessing.get_context("spawn")
    # Set before the children start: they import torch while unpickling the objective, and the
    # OpenMP pool size is read at import.
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        processes = [context.Process(target=_worker, args=(objective, study_name, storage, sampler, n_trials, k),
                                     name=f"optuna-worker-{k}") for k in range(workers)]
        for p in processes:
            p.start()
    finally:
        if saved is None:
            os.environ.pop("OMP_NUM_THREADS", None)
        else:
            os.environ["OMP_NUM_THREADS"] = saved
    try:
        for p in processes:
            p.join()
    except BaseException:
        for p in processes:
            p.terminate()
        raise
    failed = [(p.name, p.exitcode) for p in processes if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"worker processes exited with errors {failed}; see their output above")

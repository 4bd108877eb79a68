"""Run an Optuna study's trials in one or several processes, all on one storage.

This is Optuna's documented pattern for parallel optimization ("Easy Parallelization"): every
worker process opens the same study with ``optuna.load_study`` and calls ``study.optimize``; the
storage (a journal file here, an RDB server across machines) hands out the trials. There is no
job queue of ours. API::

    run_trials(objective, *, study_name, storage, sampler=None, directions=("maximize",),
               n_trials=None, workers=1) -> optuna.Study
    journal_storage(path) -> optuna.storages.JournalStorage

``objective(trial) -> float | Sequence[float]`` must be picklable when ``workers > 1`` (a top-level
function or an instance of a top-level class): each worker is a ``spawn`` process with one torch thread.

- **Resuming**: calling :func:`run_trials` again with the same study continues it; completed
  trials are kept. A trial left RUNNING by a dead worker (same host, process gone) is marked FAIL
  with ``error = "interrupted: …"`` and its parameters are queued again as a new trial (user attr
  ``retry_of``); a trial whose objective *raised* is FAIL with its error (user attr ``error``) and
  is never retried.
- **Grids**: with a ``GridSampler`` and ``n_trials=None`` the run ends when every cell has run
  once (a cell handed out twice by concurrent workers is PRUNED with ``duplicate_of``).
- **n_trials** counts the study's trials in every state, over all workers and runs.
- **Other machines** join by calling :func:`run_trials` with the same RDB URL (see Optuna's
  ``RDBStorage``) and study name, e.g. ``unlearn-pl tune … --storage URL --study_name NAME``.

Example::

    def objective(trial):                      # top level: picklable
        return -(trial.suggest_categorical("x", [0, 1, 2]) - 1) ** 2

    study = run_trials(objective, study_name="demo", storage=journal_storage("runs/demo/study.log"),
                       sampler=optuna.samplers.GridSampler({"x": [0, 1, 2]}), workers=2)
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import socket
from collections.abc import Callable, Sequence
from pathlib import Path

import optuna
from optuna.exceptions import UpdateFinishedTrialError
from optuna.samplers import BaseSampler, GridSampler
from optuna.storages import BaseStorage, JournalStorage
from optuna.storages.journal import JournalFileBackend
from optuna.trial import TrialState

Objective = Callable[[optuna.Trial], "float | Sequence[float]"]

_log = logging.getLogger(__name__)


def journal_storage(path: str | os.PathLike) -> JournalStorage:
    """An Optuna journal storage in the file ``path`` (its folder created); processes on one
    machine may share it, ``optuna-dashboard path`` opens it."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(os.fspath(path)))


def open_storage(storage: str | os.PathLike | BaseStorage) -> BaseStorage:
    """``storage`` itself, an RDB URL (``sqlite:///…``, ``postgresql://…``) or a journal file path."""
    if isinstance(storage, BaseStorage):
        return storage
    text = os.fspath(storage)
    return optuna.storages.get_storage(text) if "://" in text else journal_storage(text)


def _grid_duplicate(trial: optuna.Trial) -> int | None:
    """An earlier live trial of this trial's grid cell: Optuna's ``GridSampler`` hands a started
    cell out again to a worker that asks while the last cells are still running."""
    cell = trial.study._storage.get_trial_system_attrs(trial._trial_id).get("grid_id")
    live = (TrialState.RUNNING, TrialState.COMPLETE, TrialState.WAITING)
    for t in trial.study.get_trials(deepcopy=False, states=live) if cell is not None else []:
        if t.number < trial.number and t.system_attrs.get("grid_id") == cell and "duplicate_of" not in t.user_attrs:
            return t.number
    return None


class RecordedObjective:
    """The objective, with every trial's host and process recorded (to detect a dead worker), an
    exception's message kept as the user attr ``error``, and a duplicated grid cell not run."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        original = _grid_duplicate(trial)
        if original is not None:
            trial.set_user_attr("duplicate_of", original)
            trial.study.stop()  # every cell has started
            raise optuna.TrialPruned(f"grid cell already taken by trial {original}")
        try:
            return self.objective(trial)
        except optuna.TrialPruned:
            raise
        except Exception as e:
            trial.set_user_attr("error", f"{type(e).__name__}: {e}")
            raise


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return True


def fail_interrupted_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials of this host whose worker process is gone, queue their
    parameters again, and return their numbers. (Other machines' trials need an RDB storage with
    a heartbeat, ``RDBStorage(heartbeat_interval=…)``, which Optuna checks itself.)"""
    host, marked = socket.gethostname(), []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        if t.user_attrs.get("host") != host or not isinstance(pid, int) or _process_alive(pid):
            continue
        try:
            study._storage.set_trial_user_attr(t._trial_id, "error", f"interrupted: worker process {pid} on {host} ended")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another process judged it first
        # The copy keeps the grid cell (system attrs), so a GridSampler does not draw a new one.
        system = {k: t.system_attrs[k] for k in ("grid_id", "search_space") if k in t.system_attrs}
        study.add_trial(optuna.trial.create_trial(state=TrialState.WAITING, user_attrs={"retry_of": t.number},
                                                  system_attrs={"fixed_params": dict(t.params), **system}))
        _log.warning("trial %d was interrupted (worker %d gone): marked FAIL and queued again", t.number, pid)
        marked.append(t.number)
    return marked


def _grid_started(study: optuna.Study) -> bool:
    """Whether a grid study has a trial for every cell and none queued."""
    if not isinstance(study.sampler, GridSampler):
        return False
    trials = study.get_trials(deepcopy=False)
    cells = {t.system_attrs["grid_id"] for t in trials if "grid_id" in t.system_attrs}
    return len(cells) >= len(study.sampler._all_grids) and all(t.state != TrialState.WAITING for t in trials)


def _optimize(objective: Objective, study: optuna.Study, n_trials: int | None) -> None:
    def stop_when_grid_started(study: optuna.Study, _: optuna.trial.FrozenTrial) -> None:
        if _grid_started(study):
            study.stop()

    callbacks = [stop_when_grid_started]
    if n_trials is not None:
        callbacks.append(optuna.study.MaxTrialsCallback(n_trials, states=None))
        if len(study.get_trials(deepcopy=False)) >= n_trials:
            return
    if not _grid_started(study):
        study.optimize(RecordedObjective(objective), n_trials=n_trials, catch=(Exception,), callbacks=callbacks)


#: Loggers whose levels the worker processes take over from the process that starts them.
WORKER_LOGGERS = ("lightning.pytorch", "lightning.fabric", "optuna", "unlearn_pl")


def _worker(objective: Objective, study_name: str, storage: BaseStorage, sampler: BaseSampler,
            n_trials: int | None, index: int, log_levels: dict[str, int]) -> None:
    import torch

    torch.set_num_threads(1)
    # A spawned process starts with default logging: keep the caller's choice (a quiet notebook).
    for name, level in log_levels.items():
        logging.getLogger(name).setLevel(level)
    if index > 0:
        sampler.reseed_rng()  # copies of one sampler would otherwise propose the same points
    _optimize(objective, optuna.load_study(study_name=study_name, storage=storage, sampler=sampler), n_trials)


def run_trials(
    objective: Objective,
    *,
    study_name: str,
    storage: str | os.PathLike | BaseStorage,
    sampler: BaseSampler | None = None,
    directions: Sequence[str] = ("maximize",),
    n_trials: int | None = None,
    workers: int = 1,
) -> optuna.Study:
    """Create (or resume) the study ``study_name`` in ``storage`` (an Optuna storage, an RDB URL or
    a journal file path) and run its trials with ``workers`` processes (1: in this process);
    ``n_trials`` is the study's total (``None`` only with a ``GridSampler``). Returns the study,
    reloaded after every worker finished (see the module docstring).

    Raises:
        ValueError: on a bad argument, or an existing study of that name with other directions.
        RuntimeError: if a worker process exits with an error.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise ValueError(f"n_trials must be an integer >= 1 or None; got {n_trials!r}")
    if n_trials is None and not isinstance(sampler, GridSampler):
        raise ValueError(f"n_trials=None runs until the grid is exhausted, so it needs a GridSampler; got "
                         f"{type(sampler).__name__ if sampler is not None else 'the default sampler'}: give n_trials")
    if not directions or any(d not in ("maximize", "minimize") for d in directions):
        raise ValueError(f"directions must be 'maximize' or 'minimize' per objective; got {list(directions)}")
    storage = open_storage(storage)
    study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                directions=list(directions), load_if_exists=True)
    if [d.name.lower() for d in study.directions] != list(directions):
        raise ValueError(f"study {study_name!r} already exists with directions "
                         f"{[d.name.lower() for d in study.directions]}, not {list(directions)}; use another study name")
    fail_interrupted_trials(study)
    if workers == 1:
        _optimize(objective, study, n_trials)
    else:
        _run_workers(objective, study_name, storage, study.sampler, n_trials, workers)
    return optuna.load_study(study_name=study_name, storage=storage, sampler=study.sampler)


def _run_workers(objective: Objective, study_name: str, storage: BaseStorage, sampler: BaseSampler,
                 n_trials: int | None, workers: int) -> None:
    context = multiprocessing.get_context("spawn")
    # The children import torch while unpickling the objective, and OpenMP reads its pool size then.
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    try:
        levels = {name: logging.getLogger(name).level for name in WORKER_LOGGERS}
        processes = [context.Process(target=_worker, args=(objective, study_name, storage, sampler, n_trials, k, levels),
                                     name=f"optuna-worker-{k}") for k in range(workers)]
        for p in processes:
            p.start()
    finally:
        os.environ.pop("OMP_NUM_THREADS") if saved is None else os.environ.update(OMP_NUM_THREADS=saved)
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

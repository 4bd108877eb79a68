"""Run an Optuna study's trials in one or several processes, all on one storage.

This is Optuna's documented pattern for parallel optimization ("Easy Parallelization"): every
worker process opens the same study and takes trials from the storage (a journal file here, an
RDB server across machines); there is no job queue of ours. Trials go through Optuna's
ask-and-tell interface, so a worker only ever creates a trial it runs. API::

    run_trials(objective, *, study_name, storage, sampler=None, directions=("maximize",),
               n_trials=None, workers=1, grid=None, retry_failed=False) -> optuna.Study
    journal_storage(path) -> optuna.storages.JournalStorage
    open_storage(storage, heartbeat_interval=60) -> optuna.storages.BaseStorage

- **Grids** (:class:`Grid`, or a ``GridSampler``'s grid): every cell is queued once as a trial
  with its parameters (Optuna's trial queue, ``enqueue_trial``) and the workers take queued trials
  only, so no trial without parameters is ever created and the run ends when the queue is empty.
  Adding cells later (more seeds) queues just the new ones. A cell queued twice by two processes
  that started at once runs once: the later copy is PRUNED with ``duplicate_of``.
- **Open searches** (a sampler and ``n_trials``, the study's total over all workers and runs):
  each trial is drawn with ``study.ask(fixed_distributions=…)``, its parameters at once.
- **Failures are the trial's**: an exception or ``SystemExit`` inside the objective (the CLI exits
  with status 2 on a bad value) is recorded as FAIL with its one-line error (user attr ``error``)
  and the study goes on. Such a trial is not retried, unless ``retry_failed`` queues its cell again.
- **Dead workers**: a RUNNING trial whose worker process on this host is gone (journal), or whose
  heartbeat stopped (RDB storage from :func:`open_storage`, Optuna's ``heartbeat_interval``), is
  marked FAIL and retried once by Optuna's ``RetryFailedTrialCallback(max_retry=1)``: a retry that
  dies too ends the chain. Killing the process that started the workers stops them.
- **Interrupts**: Ctrl-C (SIGINT) or SIGTERM stops every worker within seconds; the running trials
  are marked FAIL with ``interrupted = True`` and their cells are queued again on the next run.
  :func:`run_trials` then raises :class:`StudyInterrupted`; a worker that died raises :class:`WorkerDied`.
- **Other machines** join by calling :func:`run_trials` with the same RDB URL and study name,
  e.g. ``unlearn-pl tune … --storage postgresql://… --study_name NAME``.

Example::

    def objective(trial):                      # top level: picklable
        return -(trial.suggest_categorical("x", [0, 1, 2]) - 1) ** 2

    study = run_trials(objective, study_name="demo", storage=journal_storage("runs/demo/study.log"),
                       sampler=optuna.samplers.GridSampler({"x": [0, 1, 2]}), workers=2)
"""

from __future__ import annotations

import copy
import inspect
import itertools
import json
import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.distributions import (
    BaseDistribution,
    CategoricalDistribution,
    FloatDistribution,
    IntDistribution,
)
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.samplers import BaseSampler, GridSampler
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import FrozenTrial, TrialState

Objective = Callable[[optuna.Trial], "float | Sequence[float]"]

_log = logging.getLogger(__name__)

#: Seconds between a running trial's heartbeats in an RDB storage (Optuna's ``heartbeat_interval``);
#: a trial silent for twice as long is failed and retried once.
HEARTBEAT_INTERVAL = 60

#: How long the process that started the workers waits for them after an interrupt before killing them.
STOP_TIMEOUT_S = 20.0


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the study's trials; completed trials are kept, the interrupted
    ones are queued again by the next run."""


class WorkerDied(RuntimeError):
    """A worker process ended abnormally (killed, or an error outside its trials such as a full disk)."""


# ----------------------------------------------------------------------------- storages
def _retry_once() -> Callable[[optuna.Study, FrozenTrial], None]:
    # Optuna 4.9 renamed RetryFailedTrialCallback (kept as a deprecated alias) to RetryHeartbeatStaleTrialCallback.
    retry = getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        return retry(max_retry=1)


def _drop_torn_tail(path: Path) -> int:
    """Cut a journal's last record when it is incomplete (no newline: a write cut short by a full
    disk or a kill) or not JSON; return the bytes dropped. Optuna's replay skips a torn last line,
    but the next record would be appended to it and make the whole journal unreadable."""
    size = path.stat().st_size
    if size == 0:
        return 0
    with open(path, "rb") as f:
        f.seek(max(0, size - (1 << 20)))
        tail = f.read()
    end = len(tail)
    if tail.endswith(b"\n"):
        last = tail[:-1].rsplit(b"\n", 1)[-1]
        try:
            json.loads(last)
            return 0
        except ValueError:
            end = len(tail) - 1 - len(last)  # a complete but garbled last line
    else:
        end = tail.rfind(b"\n") + 1
    keep = size - len(tail) + end
    if keep <= 0 and size > len(tail):
        return 0  # one record longer than the window read: leave it to the replay's own check
    with open(path, "r+b") as f:
        f.truncate(keep)
    return size - keep


def journal_storage(path: str | os.PathLike) -> JournalStorage:
    """An Optuna journal storage in the file ``path`` (its folder created); processes on one
    machine may share it, ``optuna-dashboard path`` opens it.

    An incomplete last record is dropped with a warning naming the file (the study resumes from
    the record before); any other damage raises ``ValueError`` naming the file and how to recover.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.is_file():
        lock = JournalFileSymlinkLock(os.fspath(path))
        lock.acquire()  # no other process appends while the tail is checked
        try:
            dropped = _drop_torn_tail(path)
        finally:
            lock.release()
        if dropped:
            warnings.warn(f"{path}: its last record was incomplete ({dropped} bytes, a write cut short by a full disk "
                          "or a kill); skipped it, the study resumes from the record before", stacklevel=2)
    try:
        return JournalStorage(JournalFileBackend(os.fspath(path)))
    except Exception as e:  # the replay raises whatever a damaged record makes it trip on
        raise ValueError(f"the study journal {path} is damaged inside ({type(e).__name__}: {e}); move it aside "
                         "(e.g. to study.log.damaged) and run the same command to start the study afresh: "
                         "the earlier trials' folders are kept and not overwritten") from e


def open_storage(storage: str | os.PathLike | BaseStorage, heartbeat_interval: int = HEARTBEAT_INTERVAL) -> BaseStorage:
    """``storage`` itself, a journal file path, or an RDB URL (``sqlite:///…``, ``postgresql://…``)
    opened with Optuna's heartbeat: a trial whose worker stops sending heartbeats for
    ``2 * heartbeat_interval`` seconds is failed and retried once (``RetryFailedTrialCallback``)."""
    if isinstance(storage, BaseStorage):
        return storage
    text = os.fspath(storage)
    if "://" not in text:
        return journal_storage(text)
    # Optuna 4.9 renamed failed_trial_callback (still accepted, deprecated) to heartbeat_stale_trial_callback.
    name = ("heartbeat_stale_trial_callback" if "heartbeat_stale_trial_callback" in inspect.signature(RDBStorage).parameters
            else "failed_trial_callback")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        callback: Any = _retry_once()
        rdb = RDBStorage(text, heartbeat_interval=heartbeat_interval, **{name: callback})
    return optuna.storages.get_storage(rdb)  # with Optuna's cache in front, as get_storage(url) gives


def _heartbeat_enabled(study: optuna.Study) -> bool:
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(study._storage)


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
        return cls([dict(zip(space, values)) for values in itertools.product(*space.values())])


def cell_key(params: Mapping[str, Any]) -> str:
    """A cell's identity: its parameters as canonical JSON."""
    return json.dumps(dict(params), sort_keys=True, default=str)


def trial_cell(t: FrozenTrial) -> dict[str, Any]:
    """A trial's parameters, or those it was queued with (``fixed_params``) before it ran."""
    return dict(t.params) or dict(t.system_attrs.get("fixed_params") or {})


def _retried(trials: Sequence[FrozenTrial]) -> set[int]:
    return {t.system_attrs["failed_trial"] for t in trials if "failed_trial" in t.system_attrs}


def final_failure(t: FrozenTrial, retried: set[int]) -> bool:
    """A FAIL that stands: not an interrupt (queued again) and not a dead worker's trial with a retry."""
    return t.state == TrialState.FAIL and not t.user_attrs.get("interrupted") and t.number not in retried


def _counts(t: FrozenTrial, retried: set[int]) -> bool:
    """Whether ``t`` stands for its cell: live, done, or failed for good."""
    if "duplicate_of" in t.user_attrs:
        return False
    return t.state in (TrialState.WAITING, TrialState.RUNNING, TrialState.COMPLETE, TrialState.PRUNED) or final_failure(t, retried)


def queue_cells(study: optuna.Study, grid: Grid, retry_failed: bool = False) -> int:
    """Queue every cell of ``grid`` that no trial stands for (and, with ``retry_failed``, every
    cell whose trials all failed); return how many were queued."""
    trials = study.get_trials(deepcopy=False)
    retried = _retried(trials)
    standing: dict[str, list[FrozenTrial]] = {}
    for t in trials:
        if _counts(t, retried):
            standing.setdefault(cell_key(trial_cell(t)), []).append(t)
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
        study.add_trial(optuna.trial.create_trial(
            state=TrialState.WAITING, params=dict(cell) if known is not None else None, system_attrs=system,
            distributions={k: known[k] for k in cell} if known is not None else None))
        queued += 1
    return queued


def _earlier_copy(study: optuna.Study, trial: FrozenTrial) -> int | None:
    """An earlier trial standing for ``trial``'s cell (two processes queued it at once), if any."""
    key, trials = cell_key(trial_cell(trial)), study.get_trials(deepcopy=False)
    retried, ancestry = _retried(trials), set(trial.system_attrs.get("retry_history", []))
    for t in trials:
        if t.number < trial.number and t.number not in ancestry and _counts(t, retried) and cell_key(trial_cell(t)) == key:
            return t.number
    return None


# ----------------------------------------------------------------------------- the objective
def one_line(error: BaseException) -> str:
    """``Type: first line`` of an error; for the CLI's exit on a bad value, the line it printed."""
    if isinstance(error, SystemExit):
        message = getattr(error, "message", None)  # unlearn_pl.cli.errors.CLIExit
        return message or f"SystemExit: the run exited with status {error.code}"
    from unlearn_pl.cli.errors import one_line_error

    return one_line_error(error)


class TrialFailed(Exception):
    """A trial's objective raised, or exited (``SystemExit``); the message is the one-line error."""


class RecordedObjective:
    """The objective, with every trial's host and process recorded (to detect a dead worker) and
    any exception or ``SystemExit`` turned into a one-line error kept as the user attr ``error``."""

    def __init__(self, objective: Objective) -> None:
        self.objective = objective

    def __call__(self, trial: optuna.Trial) -> float | Sequence[float]:
        trial.set_user_attr("host", socket.gethostname())
        trial.set_user_attr("pid", os.getpid())
        try:
            return self.objective(trial)
        except optuna.TrialPruned:
            raise
        except (Exception, SystemExit) as e:
            if _STOP.requested:  # Lightning turns Ctrl-C inside fit into SystemExit(1)
                raise KeyboardInterrupt from e
            message = one_line(e)
            trial.set_user_attr("error", message)
            raise TrialFailed(message) from e


# ----------------------------------------------------------------------------- interrupts
class _StopRequest:
    """Set by SIGINT/SIGTERM: the first signal also raises ``KeyboardInterrupt`` in the main
    thread; later ones (a terminal's Ctrl-C reaches every process of the group) only set it."""

    def __init__(self) -> None:
        self.requested = False
        self.signal: str | None = None

    def handler(self, signum: int, frame: Any) -> None:
        first = not self.requested
        self.requested, self.signal = True, self.signal or signal.Signals(signum).name
        if first:
            raise KeyboardInterrupt


_STOP = _StopRequest()


@contextmanager
def _interruptible() -> Iterator[_StopRequest]:
    """SIGINT and SIGTERM become a stop request while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield _STOP
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    _STOP.requested, _STOP.signal = False, None
    for s in previous:
        signal.signal(s, _STOP.handler)
    try:
        yield _STOP
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


# ----------------------------------------------------------------------------- one worker's loop
@dataclass
class _Plan:
    """What a worker takes: queued trials of a grid, or trials drawn by the sampler up to ``n_trials``."""

    grid: bool
    n_trials: int | None
    distributions: Mapping[str, BaseDistribution] | None


def _suggest(trial: optuna.Trial, name: str, d: BaseDistribution) -> None:
    if isinstance(d, CategoricalDistribution):
        trial.suggest_categorical(name, d.choices)
    elif isinstance(d, IntDistribution):
        trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
    elif isinstance(d, FloatDistribution):
        trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)


#: The trials this process took: one still RUNNING when no trial runs here was left by an error
#: between taking it and recording the process (a full disk).
_CLAIMED: set[tuple[str, int]] = set()


def _claim_queued(study: optuna.Study) -> optuna.Trial | None:
    """Take a queued trial (WAITING → RUNNING, the atomic step of Optuna's trial queue), or None."""
    storage = study._storage
    for t in study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
        try:
            if storage.set_trial_state_values(t._trial_id, state=TrialState.RUNNING):
                _CLAIMED.add((study.study_name, t.number))
                return optuna.Trial(study, t._trial_id)
        except UpdateFinishedTrialError:
            continue
    return None


def _live_count(study: optuna.Study) -> int:
    retried = _retried(trials := study.get_trials(deepcopy=False))
    return sum(_counts(t, retried) for t in trials)


def _next_trial(study: optuna.Study, plan: _Plan) -> optuna.Trial | None:
    if plan.n_trials is not None and _live_count(study) >= plan.n_trials and not study.get_trials(
            deepcopy=False, states=(TrialState.WAITING,)):
        return None
    if not plan.grid:
        return study.ask(fixed_distributions=dict(plan.distributions or {}))  # parameters drawn at once
    trial = _claim_queued(study)
    if trial is not None and plan.distributions:
        # A trial queued with parameters has them; one queued by name only (enqueue_trial) gets them now.
        for name in trial_cell(study._storage.get_trial(trial._trial_id)):
            if name in plan.distributions:
                _suggest(trial, name, plan.distributions[name])
    return trial


def _tell(study: optuna.Study, trial: optuna.Trial, **kwargs: Any) -> None:
    try:
        study.tell(trial, **kwargs)
    except UpdateFinishedTrialError:
        pass  # a heartbeat check elsewhere judged it stale meanwhile


def _run_one(study: optuna.Study, trial: optuna.Trial, objective: RecordedObjective) -> None:
    from optuna.storages._heartbeat import (
        get_heartbeat_thread,  # what Study.optimize runs around a trial
    )

    frozen = study._storage.get_trial(trial._trial_id)
    if (original := _earlier_copy(study, frozen)) is not None:
        trial.set_user_attr("duplicate_of", original)
        _tell(study, trial, state=TrialState.PRUNED)
        return
    with get_heartbeat_thread(trial._trial_id, study._storage):
        try:
            values = objective(trial)
        except optuna.TrialPruned:
            _tell(study, trial, state=TrialState.PRUNED)
            return
        except TrialFailed as e:
            _log.warning("trial %d failed: %s", trial.number, e)
            _tell(study, trial, state=TrialState.FAIL)
            return
        except KeyboardInterrupt:
            try:
                trial.set_user_attr("interrupted", True)
                trial.set_user_attr("error", f"interrupted ({_STOP.signal or 'KeyboardInterrupt'}); queued again by the next run")
                _tell(study, trial, state=TrialState.FAIL)
            finally:
                raise StudyInterrupted from None
    _tell(study, trial, values=values)


def _work(objective: Objective, study: optuna.Study, plan: _Plan) -> None:
    """Take and run trials until none is left (RDB: until no trial runs elsewhere that may go stale)."""
    recorded = RecordedObjective(objective)
    heartbeat, waited_for = _heartbeat_enabled(study), None
    with _interruptible() as stop:
        try:
            while not stop.requested:
                if heartbeat:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ExperimentalWarning)
                        optuna.storages.fail_stale_trials(study)  # Optuna's heartbeat check, as in Study.optimize
                trial = _next_trial(study, plan)
                if trial is None:
                    running = [t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                               if "pid" in t.user_attrs]
                    if heartbeat and plan.grid and running:
                        # Another machine's trial may go stale and come back as a retry: wait for it.
                        if running != waited_for:
                            _log.warning("waiting for trials %s running elsewhere (retried here if their "
                                         "heartbeat stops)", running)
                            waited_for = running
                        time.sleep(min(5.0, getattr(study._storage, "get_heartbeat_interval", lambda: 5.0)() or 5.0))
                        continue
                    break
                _run_one(study, trial, recorded)
                if threading.current_thread() is threading.main_thread():
                    signal.signal(signal.SIGINT, stop.handler)  # Lightning ignores SIGINT after its own interrupt
        except KeyboardInterrupt:
            raise StudyInterrupted from None
        if stop.requested:
            raise StudyInterrupted


# ----------------------------------------------------------------------------- dead workers on this host
def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        pass
    return True


def fail_interrupted_trials(study: optuna.Study) -> list[int]:
    """Mark FAIL the RUNNING trials of this host whose worker process is gone (or is this process,
    which runs no trial when this is called) and retry each once
    (``RetryFailedTrialCallback(max_retry=1)``: a retry whose worker dies too is not retried);
    return their numbers. Other machines' trials are judged by an RDB storage's heartbeat."""
    host, marked, retry = socket.gethostname(), [], _retry_once()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        # This process runs no trial now: one it left RUNNING ended with an error outside the trial.
        mine = (study.study_name, t.number) in _CLAIMED or (t.user_attrs.get("host") == host and pid == os.getpid())
        if not mine and (t.user_attrs.get("host") != host or not isinstance(pid, int) or _process_alive(pid)):
            continue
        pid = pid if isinstance(pid, int) else os.getpid()
        try:
            study._storage.set_trial_user_attr(t._trial_id, "error", f"interrupted: the run of process {pid} on {host} stopped")
            study._storage.set_trial_state_values(t._trial_id, TrialState.FAIL)
        except UpdateFinishedTrialError:
            continue  # another process judged it first
        if trial_cell(t):  # a trial that never got its parameters has nothing to retry
            failed = copy.deepcopy(study._storage.get_trial(t._trial_id))  # the storage may hand out its own
            failed.user_attrs = {k: v for k, v in failed.user_attrs.items() if k != "error"}  # not the retry's
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", ExperimentalWarning)
                retry(study, failed)
        _log.warning("trial %d was interrupted (worker %d gone): marked FAIL and retried once", t.number, pid)
        marked.append(t.number)
    return marked


# ----------------------------------------------------------------------------- processes
#: Loggers whose levels the worker processes take over from the process that starts them.
WORKER_LOGGERS = ("lightning.pytorch", "lightning.fabric", "optuna", "unlearn_pl")


def _watch_parent(parent: int) -> None:
    """Stop this worker (as Ctrl-C would) once the process that started it is gone."""
    direct = os.getppid() == parent  # forked by it (else by a forkserver): reparented when it dies
    while (os.getppid() == parent) if direct else _process_alive(parent):
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)


def _own_copy(storage: BaseStorage) -> BaseStorage:
    """This process's own copy of ``storage``, as a spawned worker gets by unpickling: a journal
    storage tells its workers apart by an id made when it is created (a forked copy would share
    the parent's, and two workers could take one trial), an RDB storage opens its own connections."""
    rdb = getattr(storage, "_backend", storage)
    if isinstance(rdb, RDBStorage):
        rdb.engine.dispose(close=False)  # SQLAlchemy's advice after fork: leave the parent's connections alone
    return pickle.loads(pickle.dumps(storage))


def _worker(objective: Objective, study_name: str, storage: BaseStorage, sampler: BaseSampler | None, plan: _Plan,
            index: int, log_levels: dict[str, int], parent: int) -> None:
    import torch

    torch.set_num_threads(1)
    storage = _own_copy(storage)
    for name, level in log_levels.items():  # a spawned process starts with default logging
        logging.getLogger(name).setLevel(level)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()
    if sampler is not None and index > 0:
        sampler.reseed_rng()  # copies of one sampler would otherwise propose the same points
    try:
        _work(objective, optuna.load_study(study_name=study_name, storage=storage, sampler=sampler), plan)
    except StudyInterrupted:
        sys.exit(130)
    except Exception as e:  # noqa: BLE001 -- outside any trial: the storage failed (a full disk, a lost server)
        print(f"error: worker {index} (pid {os.getpid()}): {one_line(e)}", file=sys.stderr, flush=True)
        sys.exit(1)


def _context() -> multiprocessing.context.BaseContext:
    """``fork`` on Linux (a worker starts in milliseconds, with torch and the package already
    imported, as PyTorch's DataLoader workers do) unless CUDA is initialized; else ``forkserver``
    with the package preloaded, or ``spawn``."""
    import torch

    methods = multiprocessing.get_all_start_methods()
    if sys.platform == "linux" and "fork" in methods and not torch.cuda.is_initialized():
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["unlearn_pl.cli"])
        return context
    return multiprocessing.get_context("spawn")


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


def _run_workers(objective: Objective, study_name: str, storage: BaseStorage, sampler: BaseSampler | None, plan: _Plan,
                 workers: int) -> None:
    context = _context()
    # A spawned child imports torch while unpickling the objective, and OpenMP reads its pool size then.
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = "1"
    levels = {name: logging.getLogger(name).level for name in WORKER_LOGGERS}
    processes = [context.Process(target=_worker, name=f"worker {k}",
                                 args=(objective, study_name, storage, sampler, plan, k, levels, os.getpid()))
                 for k in range(workers)]
    with _interruptible() as stop:
        try:
            for p in processes:
                p.start()
        finally:
            os.environ.pop("OMP_NUM_THREADS") if saved is None else os.environ.update(OMP_NUM_THREADS=saved)
        try:
            while live := [p.sentinel for p in processes if p.is_alive()]:
                multiprocessing.connection.wait(live)
        except KeyboardInterrupt:
            pass
        if stop.requested:
            _stop_workers(processes)
            raise StudyInterrupted
    dead = [p for p in processes if p.exitcode != 0]
    if dead:
        study = optuna.load_study(study_name=study_name, storage=storage, sampler=sampler)
        fail_interrupted_trials(study)
        raise WorkerDied("; ".join(f"{p.name} (pid {p.pid}) {_exit_reason(p.exitcode)}" for p in dead)
                         + "; run the same command again to resume")


def _stop_workers(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    """Ask every live worker to stop (SIGINT: its trial is marked interrupted), then kill laggards."""
    for p in processes:
        if p.is_alive() and p.pid is not None:
            os.kill(p.pid, signal.SIGINT)
    deadline = time.monotonic() + STOP_TIMEOUT_S
    for p in processes:
        p.join(max(0.0, deadline - time.monotonic()))
    for p in processes:
        if p.is_alive():
            p.kill()
            p.join()


# ----------------------------------------------------------------------------- the entry point
def run_trials(
    objective: Objective,
    *,
    study_name: str,
    storage: str | os.PathLike | BaseStorage,
    sampler: BaseSampler | None = None,
    directions: Sequence[str] = ("maximize",),
    n_trials: int | None = None,
    workers: int = 1,
    grid: Grid | None = None,
    retry_failed: bool = False,
    distributions: Mapping[str, BaseDistribution] | None = None,
) -> optuna.Study:
    """Create (or resume) the study ``study_name`` in ``storage`` (an Optuna storage, an RDB URL or
    a journal file path) and run its trials with ``workers`` processes (1: in this process).

    The trials are the cells of ``grid`` (or of a ``GridSampler``'s grid), each run once, or, with
    another sampler, ``n_trials`` in all, each drawing ``distributions`` when it starts.
    ``retry_failed`` queues the cells whose trials failed once more. Returns the study, reloaded after every worker finished (see the module docstring).

    Raises:
        ValueError: on a bad argument, or an existing study of that name with other directions.
        StudyInterrupted: Ctrl-C or SIGTERM stopped the trials.
        WorkerDied: a worker process ended abnormally.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1; got {workers!r}")
    if n_trials is not None and (isinstance(n_trials, bool) or not isinstance(n_trials, int) or n_trials < 1):
        raise ValueError(f"n_trials must be an integer >= 1 or None; got {n_trials!r}")
    if grid is None and isinstance(sampler, GridSampler):
        grid = Grid.product(sampler._search_space)  # GridSampler keeps its grid there; it has no public accessor
    if n_trials is None and grid is None:
        raise ValueError(f"n_trials=None runs until the grid is exhausted, so it needs a GridSampler or a grid; got "
                         f"{type(sampler).__name__ if sampler is not None else 'the default sampler'}: give n_trials")
    if not directions or any(d not in ("maximize", "minimize") for d in directions):
        raise ValueError(f"directions must be 'maximize' or 'minimize' per objective; got {list(directions)}")
    storage = open_storage(storage)
    study = optuna.create_study(study_name=study_name, storage=storage, sampler=sampler,
                                directions=list(directions), load_if_exists=True)
    if [d.name.lower() for d in study.directions] != list(directions):
        raise ValueError(f"study {study_name!r} already exists with directions "
                         f"{[d.name.lower() for d in study.directions]}, not {list(directions)}; use another study name")
    if not _heartbeat_enabled(study):
        fail_interrupted_trials(study)
    if grid is not None:
        queue_cells(study, grid, retry_failed)
    plan = _Plan(grid is not None, n_trials, grid.distributions if grid is not None else distributions)
    if workers == 1:
        _work(objective, study, plan)
    else:
        _run_workers(objective, study_name, storage, None if grid is not None else study.sampler, plan, workers)
    return optuna.load_study(study_name=study_name, storage=storage, sampler=study.sampler)

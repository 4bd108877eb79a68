"""One worker's loop: take a trial, run the objective with its host and process recorded, tell
the storage how it ended (an error is the trial's, kept as one line); and the trials of workers
on this host that died, failed and retried once."""

from __future__ import annotations

import copy
import logging
import os
import signal
import socket
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning, UpdateFinishedTrialError
from optuna.trial import TrialState

from unlearn_pl.tuning.engine.queue import CLAIMED, DIVERGED, Plan, earlier_copy, next_trial, trial_cell
from unlearn_pl.tuning.engine.signals import STOP, StudyInterrupted, interruptible
from unlearn_pl.tuning.engine.storage import heartbeat_enabled, retry_once
from unlearn_pl.utils.errors import diverged, one_line_error

#: What a study calls per trial: its value, or one value per direction.
Objective = Callable[[optuna.Trial], "float | Sequence[float]"]

_log = logging.getLogger("unlearn_pl.tuning.engine")


# ----------------------------------------------------------------------------- the objective
def one_line(error: BaseException) -> str:
    """``Type: first line`` of an error; for the CLI's exit on a bad value, the line it printed."""
    if isinstance(error, SystemExit):
        message = getattr(error, "message", None)  # the line a command printed before it exited
        return message or f"SystemExit: the run exited with status {error.code}"
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
            if STOP.requested:  # Lightning turns Ctrl-C inside fit into SystemExit(1)
                raise KeyboardInterrupt from e
            message = one_line(e)
            trial.set_user_attr("error", message)
            if diverged(e):
                trial.set_user_attr(DIVERGED, True)
            raise TrialFailed(message) from e


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
    if (original := earlier_copy(study, frozen)) is not None:
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
                trial.set_user_attr(
                    "error", f"interrupted ({STOP.signal or 'KeyboardInterrupt'}); queued again by the next run"
                )
                _tell(study, trial, state=TrialState.FAIL)
            finally:
                raise StudyInterrupted from None
    _tell(study, trial, values=values)


def work(objective: Objective, study: optuna.Study, plan: Plan) -> None:
    """Take and run trials until none is left (RDB: until no trial runs elsewhere that may go stale)."""
    recorded = RecordedObjective(objective)
    heartbeat, waited_for = heartbeat_enabled(study), None
    with interruptible() as stop:
        try:
            while not stop.requested:
                if heartbeat:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", ExperimentalWarning)
                        optuna.storages.fail_stale_trials(study)  # Optuna's heartbeat check, as in Study.optimize
                trial = next_trial(study, plan)
                if trial is None:
                    running = [
                        t.number
                        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
                        if "pid" in t.user_attrs
                    ]
                    if heartbeat and plan.grid and running:
                        # Another machine's trial may go stale and come back as a retry: wait for it.
                        if running != waited_for:
                            _log.warning(
                                "waiting for trials %s running elsewhere (retried here if their heartbeat stops)",
                                running,
                            )
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
def process_alive(pid: int) -> bool:
    """Whether process ``pid`` of this host is still running."""
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
    host, marked, retry = socket.gethostname(), [], retry_once()
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        pid = t.user_attrs.get("pid")
        # This process runs no trial now: one it left RUNNING ended with an error outside the trial.
        mine = (study.study_name, t.number) in CLAIMED or (t.user_attrs.get("host") == host and pid == os.getpid())
        if not mine and (t.user_attrs.get("host") != host or not isinstance(pid, int) or process_alive(pid)):
            continue
        pid = pid if isinstance(pid, int) else os.getpid()
        try:
            study._storage.set_trial_user_attr(
                t._trial_id, "error", f"interrupted: the run of process {pid} on {host} stopped"
            )
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

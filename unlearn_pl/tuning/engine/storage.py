"""Where a study lives: a journal file on one machine (an incomplete last record dropped before
it is replayed) or an RDB server across machines, with Optuna's heartbeat and one retry of a
trial whose worker went silent."""

from __future__ import annotations

import inspect
import json
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.exceptions import ExperimentalWarning
from optuna.storages import BaseStorage, JournalStorage, RDBStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock
from optuna.trial import FrozenTrial

#: Seconds between a running trial's heartbeats in an RDB storage (Optuna's ``heartbeat_interval``);
#: a trial silent for twice as long is failed and retried once.
HEARTBEAT_INTERVAL = 60


def retry_once() -> Callable[[optuna.Study, FrozenTrial], None]:
    """Optuna's retry callback for a trial whose worker stopped: retried once, never a retry's retry."""
    # Optuna 4.9 renamed RetryFailedTrialCallback (kept as a deprecated alias) to RetryHeartbeatStaleTrialCallback.
    retry = (
        getattr(optuna.storages, "RetryHeartbeatStaleTrialCallback", None) or optuna.storages.RetryFailedTrialCallback
    )
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
            warnings.warn(
                f"{path}: its last record was incomplete ({dropped} bytes, a write cut short by a full disk "
                "or a kill); skipped it, the study resumes from the record before",
                stacklevel=2,
            )
    try:
        return JournalStorage(JournalFileBackend(os.fspath(path)))
    except Exception as e:  # the replay raises whatever a damaged record makes it trip on
        raise ValueError(
            f"the study journal {path} is damaged inside ({type(e).__name__}: {e}); move it aside "
            "(e.g. to study.log.damaged) and run the same command to start the study afresh: "
            "the earlier trials' folders are kept and not overwritten"
        ) from e


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
    name = (
        "heartbeat_stale_trial_callback"
        if "heartbeat_stale_trial_callback" in inspect.signature(RDBStorage).parameters
        else "failed_trial_callback"
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        callback: Any = retry_once()
        rdb = RDBStorage(text, heartbeat_interval=heartbeat_interval, **{name: callback})
    return optuna.storages.get_storage(rdb)  # with Optuna's cache in front, as get_storage(url) gives


def heartbeat_enabled(study: optuna.Study) -> bool:
    """Whether the study's storage judges trials by heartbeat (an RDB storage from :func:`open_storage`)."""
    from optuna.storages._heartbeat import is_heartbeat_enabled

    return is_heartbeat_enabled(study._storage)

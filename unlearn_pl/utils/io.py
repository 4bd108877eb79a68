"""Small file helpers shared by the package: atomic writes so a killed run never leaves half a
file, and file locks that say when a run waits on one."""

from __future__ import annotations

import json
import logging
import os
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from filelock import BaseFileLock, Timeout

_log = logging.getLogger(__name__)

#: Seconds a run waits on a lock before it says so.
LOCK_NOTICE_S = 5.0


def current_umask() -> int:
    """The process's umask. POSIX can only read it by setting it, so it is set and restored at
    once (the package writes files from one thread)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike, write: Callable[[Path], object]) -> Path:
    """Write ``path`` via ``write(tmp_path)`` on a temporary file in the same folder, then rename.

    The rename is atomic on POSIX, so readers see either the old file or the complete new one.
    The file gets the permissions a plain ``open(path, "w")`` would give it: those of the file it
    replaces, or else ``0o666`` minus the umask (``mkstemp`` alone would leave it ``0o600``).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = stat.S_IMODE(path.stat().st_mode) if path.exists() else 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, mode)
    finally:
        os.close(fd)
    try:
        write(Path(tmp))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_json(path: str | os.PathLike, obj: Any) -> Path:
    """Atomically write ``obj`` as indented JSON."""
    return atomic_write(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=2, sort_keys=False) + "\n"))


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Atomically write a text file."""
    return atomic_write(path, lambda tmp: tmp.write_text(text))


def acquire_saying_so(lock: BaseFileLock, notice_after: float = LOCK_NOTICE_S) -> None:
    """``lock.acquire()``, with a warning naming the lock file when another run has held it for
    ``notice_after`` seconds (a run that waits silently looks hung)."""
    try:
        lock.acquire(timeout=notice_after)
        return
    except Timeout:
        _log.warning(
            "waiting for %s: another run holds it (it is making or evaluating the same reference model); "
            "this run goes on when it is released",
            lock.lock_file,
        )
    lock.acquire()

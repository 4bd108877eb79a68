"""Where trained reference models are cached, and the lock that keeps concurrent runs from training one twice."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from filelock import FileLock

from unlearn_pl.utils.io import acquire_saying_so


def default_cache_dir() -> Path:
    """``$UNLEARN_PL_CACHE`` if set, else ``~/.cache/unlearn_pl``."""
    return Path(os.environ.get("UNLEARN_PL_CACHE", Path.home() / ".cache" / "unlearn_pl"))


@contextlib.contextmanager
def cache_lock(path: Path) -> Iterator[None]:
    """Hold a file lock (``filelock``) beside the cache entry ``path`` while it is read or made.

    Where the cache folder cannot be created or written, no lock is taken: no other run can write
    that entry either, and :class:`ReferenceModels` then trains without caching (with a warning).
    """
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{path}.lock")
        acquire_saying_so(lock)
    except OSError:
        yield
        return
    try:
        yield
    finally:
        lock.release()

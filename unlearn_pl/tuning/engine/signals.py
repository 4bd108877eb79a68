"""How trials stop: Ctrl-C or SIGTERM becomes a stop request that every worker honours, and the
two ways a study's run ends early (:class:`StudyInterrupted`, :class:`WorkerDied`)."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class StudyInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM stopped the study's trials; completed trials are kept, the interrupted
    ones are queued again by the next run."""


class WorkerDied(RuntimeError):
    """A worker process ended abnormally (killed, or an error outside its trials such as a full disk)."""


class StopRequest:
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


STOP = StopRequest()


@contextmanager
def interruptible() -> Iterator[StopRequest]:
    """SIGINT and SIGTERM become a stop request while the block runs (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield STOP
        return
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    STOP.requested, STOP.signal = False, None
    for s in previous:
        signal.signal(s, STOP.handler)
    try:
        yield STOP
    finally:
        for s, h in previous.items():
            signal.signal(s, h)

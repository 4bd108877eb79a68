"""Process-group cleanup at exit for CPU (gloo) DDP runs."""

from __future__ import annotations

import atexit
import signal

import torch.distributed as dist

_registered = False


def destroy_gloo_group_at_exit() -> None:
    """Destroy an initialized gloo process group when the interpreter exits (idempotent).

    Lightning registers this cleanup only for NCCL (``lightning.fabric.utilities.distributed.
    _init_dist_connection``). A gloo group left alive keeps worker threads that hold tensors with
    Python references; torn down during interpreter finalization they can abort the process
    (SIGABRT, "terminate called without an active exception") after its work finished, as
    discussed in pytorch/pytorch#179291. ``atexit`` handlers run while the interpreter is intact.
    """
    global _registered
    if _registered or not (dist.is_available() and dist.is_initialized()) or dist.get_backend() != "gloo":
        return
    atexit.register(_destroy)
    _registered = True


def _destroy() -> None:
    # As Lightning's own handler: Ctrl+C must not interrupt the cleanup half-way.
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        if dist.is_initialized():
            dist.destroy_process_group()
    finally:
        signal.signal(signal.SIGINT, previous)

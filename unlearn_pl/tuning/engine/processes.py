"""Worker processes on this machine: started with their own GPUs and torch threads
(:mod:`~unlearn_pl.tuning.engine.devices`; ``fork`` where safe), stopped within seconds on an interrupt, stopped when the process that started them is gone, and
named with how they ended when one dies."""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import pickle
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

import optuna
from optuna.samplers import BaseSampler
from optuna.storages import BaseStorage, RDBStorage

from unlearn_pl.tuning.engine.devices import WorkerResources
from unlearn_pl.tuning.engine.queue import Plan
from unlearn_pl.tuning.engine.signals import StudyInterrupted, WorkerDied, interruptible
from unlearn_pl.tuning.engine.worker import Objective, fail_interrupted_trials, one_line, process_alive, work

#: How long the process that started the workers waits for them after an interrupt before killing them.
STOP_TIMEOUT_S = 20.0

#: Loggers whose levels the worker processes take over from the process that starts them.
WORKER_LOGGERS = ("lightning.pytorch", "lightning.fabric", "optuna", "unlearn_pl")


def _watch_parent(parent: int) -> None:
    """Stop this worker (as Ctrl-C would) once the process that started it is gone."""
    direct = os.getppid() == parent  # forked by it (else by a forkserver): reparented when it dies
    while (os.getppid() == parent) if direct else process_alive(parent):
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


def _worker(
    objective: Objective,
    study_name: str,
    storage: BaseStorage,
    sampler: BaseSampler | None,
    plan: Plan,
    index: int,
    log_levels: dict[str, int],
    parent: int,
    resources: WorkerResources,
    parent_gpu_mask: str | None,
) -> None:
    # Before anything here touches CUDA: a worker from the forkserver has that server's environment.
    worker_environment(resources, parent_gpu_mask)
    import torch

    torch.set_num_threads(resources.threads)
    storage = _own_copy(storage)
    for name, level in log_levels.items():  # a spawned process starts with default logging
        logging.getLogger(name).setLevel(level)
    threading.Thread(target=_watch_parent, args=(parent,), daemon=True, name="watch-parent").start()
    if sampler is not None and index > 0:
        sampler.reseed_rng()  # copies of one sampler would otherwise propose the same points
    try:
        work(objective, optuna.load_study(study_name=study_name, storage=storage, sampler=sampler), plan)
    except StudyInterrupted:
        sys.exit(130)
    except Exception as e:
        print(f"error: worker {index} (pid {os.getpid()}): {one_line(e)}", file=sys.stderr, flush=True)
        sys.exit(1)


def _context(
    gpus: bool,
) -> (
    multiprocessing.context.ForkContext
    | multiprocessing.context.ForkServerContext
    | multiprocessing.context.SpawnContext
):
    """``fork`` on Linux (a worker starts in milliseconds, with torch and the package already
    imported, as PyTorch's DataLoader workers do) for CPU workers while CUDA is not initialized;
    else ``forkserver`` with the package (torch and Lightning with it) preloaded, or ``spawn``:
    PyTorch's advice for CUDA in subprocesses (https://pytorch.org/docs/stable/notes/multiprocessing.html),
    which also keeps a GPU worker clear of any driver state of this process."""
    import torch

    methods = multiprocessing.get_all_start_methods()
    if sys.platform == "linux" and "fork" in methods and not gpus and not torch.cuda.is_initialized():
        return multiprocessing.get_context("fork")
    if "forkserver" in methods:
        context = multiprocessing.get_context("forkserver")
        context.set_forkserver_preload(["unlearn_pl"])
        return context
    return multiprocessing.get_context("spawn")


def worker_environment(resources: WorkerResources, parent_gpu_mask: str | None) -> None:
    """Set this worker's threads and GPUs in its environment. A worker without GPUs of its own sees
    what the starting process saw: a forkserver, started once per process, keeps the environment of
    the study that started it, so an earlier GPU study's mask must not carry over."""
    environment = resources.environment()
    os.environ.update(environment)
    if "CUDA_VISIBLE_DEVICES" not in environment:
        if parent_gpu_mask is None:
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
        else:
            os.environ["CUDA_VISIBLE_DEVICES"] = parent_gpu_mask


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with status {code}"


@contextmanager
def _environment(values: Mapping[str, str]) -> Iterator[None]:
    """This process's environment with ``values`` for the duration (a child started then inherits them)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            os.environ.pop(k) if v is None else os.environ.update({k: v})


def run_workers(
    objective: Objective,
    study_name: str,
    storage: BaseStorage,
    sampler: BaseSampler | None,
    plan: Plan,
    resources: Sequence[WorkerResources],
) -> None:
    """Run one process of :func:`~unlearn_pl.tuning.engine.worker.work` per entry of ``resources``
    (its GPUs and threads) until the trials run out; raise :class:`StudyInterrupted` on an
    interrupt (after stopping them), or :class:`WorkerDied` naming each worker that ended
    abnormally (its trial failed and retried once)."""
    context = _context(any(r.gpus for r in resources))
    parent_gpu_mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    levels = {name: logging.getLogger(name).level for name in WORKER_LOGGERS}
    processes = [
        context.Process(
            target=_worker,
            name=f"worker {k}",
            args=(objective, study_name, storage, sampler, plan, k, levels, os.getpid(), r, parent_gpu_mask),
        )
        for k, r in enumerate(resources)
    ]
    with interruptible() as stop:
        try:  # a Ctrl-C while the workers start (seconds with forkserver) stops those already started
            for p, r in zip(processes, resources, strict=True):
                # A spawned child imports torch while unpickling the objective, and OpenMP reads its pool size then.
                with _environment(r.environment()):
                    p.start()
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
        raise WorkerDied(
            "; ".join(f"{p.name} (pid {p.pid}) {_exit_reason(p.exitcode)}" for p in dead)
            + "; run the same command again to resume"
        )


def _stop_workers(processes: Sequence[multiprocessing.process.BaseProcess]) -> None:
    """Ask every live worker to stop (SIGINT: its trial is marked interrupted), then kill laggards."""
    processes = [p for p in processes if p.pid is not None]  # those started
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

"""Which GPUs and how many CPU threads each worker process of a study owns.

A worker sees only its own GPUs: ``CUDA_VISIBLE_DEVICES`` in its environment, set before torch
initialises CUDA in it (CUDA reads the variable once, when it initialises:
https://docs.nvidia.com/cuda/cuda-c-programming-guide/index.html#env-vars), so a trial's
``trainer.devices: 1`` is the worker's own GPU and its ``devices: [0]`` the first of its own.

- **GPUs**: with N workers on G visible GPUs, worker i gets GPU ``i mod G`` when N > G (G=2, N=4:
  0, 1, 0, 1; two workers then share a GPU), else one of N disjoint sets of consecutive GPUs, as
  even as they go (G=5, N=2: 0,1,2 and 3,4). The ids are those this process sees: an existing
  ``CUDA_VISIBLE_DEVICES=4,6`` gives the workers 4 and 6.
- **Refusal**: a trial that asks for more GPUs than a worker owns (:func:`gpus_asked`) is refused
  before the first trial, with the worker count that fits.
- **Threads**: ``cores // N`` (at least 1) torch threads per worker, or ``OMP_NUM_THREADS`` when
  the user set it; the worker's ``OMP_NUM_THREADS`` says the same, for OpenMP pools started in it.
- **auto**: ``G // (GPUs per trial)`` workers when the trials train on GPUs and GPUs are visible
  (one per GPU for ``devices: 1``), else one per core.

Example::

    split_devices(4, ["0", "1"])        # [("0",), ("1",), ("0",), ("1",)]
    split_devices(2, ["0", "1", "2"])   # [("0", "1"), ("2",)]
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

#: ``workers="auto"``: one worker per GPU of the trials (or per core when they train on CPUs).
AUTO = "auto"

#: Lightning's accelerator names of CUDA GPUs (``auto`` picks CUDA when a GPU is visible).
GPU_ACCELERATORS = ("gpu", "cuda")


def gpu_count() -> int:
    """CUDA devices this process may use, counted through NVML where it can (Lightning's
    ``num_cuda_devices``): counting does not initialise CUDA, so workers may still be forked."""
    from lightning.fabric.accelerators.cuda import num_cuda_devices

    return num_cuda_devices()


def visible_gpus() -> list[str]:
    """The ids of the GPUs this process may use, as ``CUDA_VISIBLE_DEVICES`` names them (``0``…
    when it is unset): the ids a worker's own ``CUDA_VISIBLE_DEVICES`` is made of."""
    count = gpu_count()
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    if mask is None:
        return [str(i) for i in range(count)]
    return [d.strip() for d in mask.split(",") if d.strip()][:count]


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def gpus_asked(accelerator: Any, devices: Any) -> int:
    """How many of its worker's GPUs one training takes (0: it trains on the CPU), from Lightning's
    ``accelerator`` (a name or an accelerator object) and ``devices`` (a count, a list of indices,
    a string of either, ``-1`` or ``auto``: all the worker owns, at least one)."""
    name = (accelerator if isinstance(accelerator, str) else type(accelerator).__name__).lower()
    gpu = name in GPU_ACCELERATORS or name.startswith("cuda") or (name == "auto" and gpu_count() > 0)
    if not gpu:
        return 0
    if isinstance(devices, str):
        text = devices.strip()
        if text in ("auto", "-1", ""):
            return 1
        devices = [int(d) for d in text.split(",") if d.strip()] if "," in text else int(text)
    if devices is None or devices == -1:
        return 1
    if isinstance(devices, (list, tuple)):  # indices into the worker's own devices
        return max((int(d) for d in devices), default=-1) + 1
    return int(devices)


def trial_gpus(*trainings: tuple[Any, Any]) -> int:
    """The GPUs a trial needs: the most any of its ``(accelerator, devices)`` trainings takes."""
    return max((gpus_asked(a, d) for a, d in trainings), default=0)


def split_devices(workers: int, gpus: Sequence[str]) -> list[tuple[str, ...]]:
    """Each worker's GPUs: round-robin when there are more workers than GPUs, else disjoint sets
    of consecutive GPUs, the first ``len(gpus) % workers`` one larger (none without GPUs)."""
    if not gpus:
        return [()] * workers
    if workers >= len(gpus):
        return [(gpus[i % len(gpus)],) for i in range(workers)]
    size, extra = divmod(len(gpus), workers)
    starts = [i * size + min(i, extra) for i in range(workers + 1)]
    return [tuple(gpus[starts[i] : starts[i + 1]]) for i in range(workers)]


def thread_count(workers: int) -> int:
    """Torch threads per worker: ``OMP_NUM_THREADS`` when set, else the cores shared out (at least 1)."""
    user = os.environ.get("OMP_NUM_THREADS")
    if user is None:
        return max(1, available_cores() // workers)
    if not user.strip().isdigit() or int(user) < 1:
        raise ValueError(f"OMP_NUM_THREADS must be a positive integer (the torch threads of each worker); got {user!r}")
    return int(user)


def resolve_workers(workers: int | str, gpus_per_trial: int = 0) -> int:
    """The number of worker processes: ``workers`` itself, or for ``auto`` one per
    ``gpus_per_trial`` visible GPUs (at least one) when the trials use GPUs and GPUs are visible,
    else one per core."""
    if workers == AUTO:
        gpus = visible_gpus() if gpus_per_trial > 0 else []
        return max(1, len(gpus) // gpus_per_trial) if gpus else available_cores()
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1 or 'auto'; got {workers!r}")
    return workers


@dataclass(frozen=True)
class WorkerResources:
    """What one worker process owns: its GPUs (ids as the starting process sees them; none: the
    worker sees what that process sees) and its torch threads."""

    gpus: tuple[str, ...]
    threads: int

    def environment(self) -> dict[str, str]:
        """The variables the worker's environment gets before torch starts in it."""
        env = {"OMP_NUM_THREADS": str(self.threads)}
        if self.gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.gpus)
        return env


def plan_workers(workers: int, gpus_per_trial: int = 0) -> list[WorkerResources]:
    """Every worker's GPUs and threads, for trials that take ``gpus_per_trial`` GPUs each (0: CPU
    trials, which get threads only).

    Raises:
        ValueError: a trial asks for more GPUs than a worker owns.
    """
    gpus = visible_gpus() if gpus_per_trial > 0 else []
    sets = split_devices(workers, gpus)
    owned = min((len(s) for s in sets), default=0)
    if gpus and gpus_per_trial > owned:
        fits = len(gpus) // gpus_per_trial
        raise ValueError(
            f"a trial asks for {gpus_per_trial} GPUs (trainer or recipe devices) but each of {workers} workers on the "
            f"{len(gpus)} visible GPUs ({','.join(gpus)}) owns {owned}; allowed: at most {owned} per trial, or "
            + (f"at most {fits} workers" if fits else f"more GPUs than the {len(gpus)} visible")
        )
    threads = thread_count(workers)
    return [WorkerResources(s, threads) for s in sets]


__all__ = [
    "AUTO",
    "GPU_ACCELERATORS",
    "WorkerResources",
    "available_cores",
    "gpu_count",
    "gpus_asked",
    "plan_workers",
    "resolve_workers",
    "split_devices",
    "thread_count",
    "trial_gpus",
    "visible_gpus",
]

"""Seeds derived from the run's seed, for random parts that should vary with it unless given a seed.

The run's seed is the one torch's global generator was last seeded with: ``seed_everything``
(the CLI's ``seed_everything:`` key, or ``lightning.pytorch.seed_everything`` from Python) sets
it, drawing random numbers leaves it, and :func:`isolated_rng` restores it after the reference
models are trained with their own seed. A DDP strategy re-seeds every process at setup from the
seed ``seed_everything`` recorded (Lightning's ``reset_seed``), which is the same seed. A part that
derives its seed from the run's therefore draws the same values for the same run seed, on one
device or several, and new ones for another run seed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from collections.abc import Iterator

import numpy as np
import torch
from lightning.pytorch.utilities.seed import isolate_rng

# Where seed_everything records its seed for reset_seed (lightning.fabric.utilities.seed).
_LIGHTNING_SEED_ENV = ("PL_GLOBAL_SEED", "PL_SEED_WORKERS")


def run_seed() -> int:
    """The run's seed: ``torch.initial_seed()``, which ``seed_everything(s)`` sets to ``s``."""
    return torch.initial_seed()


def derived_seed(purpose: str, seed: int | None = None) -> int:
    """A 64-bit seed for ``purpose`` from ``seed`` (default: :func:`run_seed`).

    numpy's ``SeedSequence`` mixes the run seed with a key hashed from ``purpose``, so the derived
    stream is unrelated to the run's own: the network's initial weights are drawn from the global
    generator seeded with the run seed, and a mask drawn from that same seed would be tied to them.

    >>> derived_seed("mask", 0) == derived_seed("mask", 0) != derived_seed("mask", 1)
    True
    """
    seed = run_seed() if seed is None else seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"a run seed must be a non-negative int; got {seed!r}")
    key = int.from_bytes(hashlib.sha256(purpose.encode()).digest()[:8], "little")
    return int(np.random.SeedSequence(seed, spawn_key=(key,)).generate_state(1, dtype=np.uint64)[0])


@contextlib.contextmanager
def isolated_rng() -> Iterator[None]:
    """Lightning's ``isolate_rng``, and also the seed ``seed_everything`` records in the environment.

    ``isolate_rng`` restores the generators' states but not ``PL_GLOBAL_SEED``; a
    ``seed_everything`` inside it (training a reference model with its recipe's seed) would
    otherwise become the seed a DDP strategy re-seeds the run with at setup, so that the run's
    randomness would depend on whether the reference was trained or found in the cache.
    """
    saved = {key: os.environ.get(key) for key in _LIGHTNING_SEED_ENV}
    with isolate_rng():
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

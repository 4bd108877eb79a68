"""The frozen reference models' per-example results, as values with a key and as files named by it.

The original and oracle never change during a run, so their per-example results (loss,
prediction… per evaluated example) depend only on their weights and on what is evaluated
(:func:`evaluation_key`). :class:`ReferenceResults` carries the results with that key;
:class:`ReferenceResultsStore` keeps them as one file per key in a folder, so the runs of a study
(each a separate ``unlearn-pl fit``, possibly in another process) evaluate each reference once:
the first run holds the key's file lock while it evaluates and writes, the others wait, then load
the file. :class:`ReferenceEvaluation` is that protocol, as the module runs it at every
evaluation epoch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
import torch
from filelock import FileLock
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import move_data_to_device

from unlearn_pl.protocols import UnlearningData, attached_data, eval_splits
from unlearn_pl.utils.describe import content_hash
from unlearn_pl.utils.io import acquire_saying_so, atomic_write


def evaluation_key(
    weights: Sequence[tuple[str, str]],
    data: Sequence[str],
    batch_size: int | None,
    batches: Sequence[float],
    world_size: int,
) -> str:
    """What the reference models' per-example results depend on, hashed: their weights (content
    hashes by name), the evaluated splits (data fingerprints), the evaluation batch size, the
    number of batches evaluated per split and the number of processes."""
    return content_hash([list(weights), list(data), batch_size, [float(b) for b in batches], world_size])


@dataclass(frozen=True)
class ReferenceResults:
    """Per-example results ``{model: {split: {field: tensor}}}`` of the reference models, with the
    key of what they depend on (:func:`evaluation_key`). A value, not
    shared state: a module uses one only when its own key is equal."""

    key: str
    results: dict[str, Any]


class ReferenceResultsStore:
    """A folder of :class:`ReferenceResults`, one file ``results-<key>.pt`` per key.

    Files are written atomically and loaded with ``weights_only=True``; a file whose stored key
    differs from its name, or that cannot be loaded, counts as absent.
    """

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)

    def path(self, key: str) -> Path:
        return self.folder / f"results-{key}.pt"

    def lock(self, key: str) -> FileLock:
        """The lock a run holds while it evaluates and writes the results of ``key``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        return FileLock(f"{self.path(key)}.lock")

    def load(self, key: str) -> ReferenceResults | None:
        """The stored results of ``key``, or ``None``."""
        path = self.path(key)
        if not path.is_file():
            return None
        try:
            stored = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # an unreadable file is re-evaluated, never trusted
            return None
        if not isinstance(stored, dict) or stored.get("key") != key or not isinstance(stored.get("results"), dict):
            return None
        return ReferenceResults(key, stored["results"])

    def save(self, held: ReferenceResults) -> Path:
        """Write ``held`` atomically under its key."""
        return atomic_write(
            self.path(held.key), lambda tmp: torch.save({"key": held.key, "results": held.results}, tmp)
        )


class ReferenceEvaluation(Callback):
    """Decides, at each evaluation epoch, whether the reference models are evaluated or their
    results reused, and shares fresh results through a :class:`ReferenceResultsStore`.

    Reuse needs results of the same :func:`evaluation_key`, held from an earlier epoch of this
    run or found in the store. Without them, rank 0 holds the key's lock from :meth:`start` until
    :meth:`finish` has written the results, so concurrent runs wait and then load them. A run that
    fails in between releases the lock (Lightning calls ``on_exception`` on callbacks).

    Args:
        folder: the store's folder (``None``: results are kept for this run only).
    """

    def __init__(self, folder: str | os.PathLike | None = None) -> None:
        self.store = ReferenceResultsStore(folder) if folder else None
        #: The last results this run evaluated or loaded.
        self.held: ReferenceResults | None = None
        #: Whether this epoch reuses :attr:`held` instead of evaluating the reference models.
        self.reuse = False
        self.key = ""
        self._lock: FileLock | None = None

    def start(self, trainer: pl.Trainer, weights: Sequence[tuple[str, str]], device: torch.device) -> bool:
        """Begin an evaluation epoch of reference models with content hashes ``weights``
        (``(name, hash)`` pairs) on the trainer's data; returns whether their results are reused."""
        datamodule = attached_data(trainer)
        known = isinstance(datamodule, UnlearningData)
        self.key = key = evaluation_key(
            weights,
            [datamodule.fingerprint(s) for s in eval_splits(datamodule)] if known else [type(datamodule).__name__],
            datamodule.eval_batch_size if known else None,
            trainer.num_test_batches if trainer.testing else trainer.num_val_batches,
            trainer.world_size,
        )
        held = self.held if self.held is not None and self.held.key == key else self._load(key, trainer, device)
        self.reuse = held is not None
        if held is not None:
            self.held = held
        return self.reuse

    def _load(self, key: str, trainer: pl.Trainer, device: torch.device) -> ReferenceResults | None:
        if self.store is None:
            return None
        loaded = None
        if trainer.is_global_zero:
            lock = self.store.lock(key)
            acquire_saying_so(lock)
            loaded = self.store.load(key)
            if loaded is None:
                self._lock = lock  # held until finish(): concurrent runs wait for this run's results
            else:
                lock.release()
        loaded = trainer.strategy.broadcast(loaded, src=0)
        # Stored results load on the CPU; they join the unlearned model's on this device.
        return ReferenceResults(loaded.key, move_data_to_device(loaded.results, device)) if loaded else None

    def complete(self, results: dict[str, Any], references: Sequence[str]) -> dict[str, Any]:
        """This epoch's per-example ``results`` with the reference models' rows: the held ones when
        they are reused, else the evaluated ones are kept (:meth:`finish`)."""
        if self.reuse:
            assert self.held is not None
            return {**results, **self.held.results}
        self.finish({name: results[name] for name in references if name in results})
        return results

    def finish(self, results: dict[str, Any]) -> ReferenceResults:
        """Keep the reference results this epoch evaluated, and store them when this run holds their lock."""
        self.held = ReferenceResults(self.key, results)
        if self._lock is not None:
            assert self.store is not None
            self.store.save(self.held)
        self.release()
        return self.held

    def release(self) -> None:
        """Release the key's lock, if this run holds it."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        self.release()

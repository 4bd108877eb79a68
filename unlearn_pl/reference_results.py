"""The frozen reference models' per-example results, as values with a key and as files named by it.

The original and oracle never change during a run, so their per-example results (loss,
prediction… per evaluated example) depend only on their weights and on what is evaluated.
:class:`ReferenceResults` carries the results with that key; :class:`ReferenceResultsStore` keeps
them as one file per key in a folder, so the runs of a study (each a separate
``unlearn-pl fit``, possibly in another process) evaluate each reference once: the first run
holds the key's file lock while it evaluates and writes, the others wait, then load the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from filelock import FileLock

from unlearn_pl._io import atomic_write


def results_key(parts: Any) -> str:
    """A short content hash of ``parts`` (JSON-serializable): the name of a results file."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:24]


@dataclass(frozen=True)
class ReferenceResults:
    """Per-example results ``{model: {split: {field: tensor}}}`` of the reference models, with the
    key of what they depend on (:meth:`unlearn_pl.UnlearningModule.reference_key`). A value, not
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
        except Exception:  # noqa: BLE001 — an unreadable file is re-evaluated, never trusted
            return None
        if not isinstance(stored, dict) or stored.get("key") != key or not isinstance(stored.get("results"), dict):
            return None
        return ReferenceResults(key, stored["results"])

    def save(self, held: ReferenceResults) -> Path:
        """Write ``held`` atomically under its key."""
        return atomic_write(self.path(held.key), lambda tmp: torch.save({"key": held.key, "results": held.results}, tmp))

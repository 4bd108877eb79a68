"""Per-example outputs of an audit's models, and the folder that keeps them.

Every model of an audit records the same thing (:func:`model_outputs`): its logits on the plan's
examples (the forget set, the retain and validation samples), their training labels, and its
accuracy on each whole split. An unlearned model's record is one file per method and seed; the
original's and the oracle's are evaluated once per reference model and shared by every method of
that seed, as a study shares its reference results (:class:`~unlearn_pl.references.ReferenceResultsStore`):
the first trial that needs them evaluates and writes them under a file lock, the others load them.

Layout of an audit folder::

    audit.json                      the plan, methods and seed keys (AuditStore.settings)
    methods/<method>.yaml           each method's complete config (what a trial runs)
    outputs/<method>/seed_<s>.pt    the unlearned model's record and its reference key
    reference_outputs/results-<key>.pt   the original's and the oracle's records
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from unlearn_pl.audit.plan import ACCURACY_SPLITS, RECORDED_SPLITS, AuditPlan
from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.references.results import ReferenceResults, ReferenceResultsStore
from unlearn_pl.utils.describe import content_hash
from unlearn_pl.utils.io import atomic_write, write_json, write_text

#: The reference models whose outputs every seed records.
REFERENCES: tuple[str, ...] = ("original", "oracle")


@torch.no_grad()
def model_outputs(
    network: nn.Module, datamodule: UnlearningDataModule, plan: AuditPlan, device: torch.device | str = "cpu"
) -> dict[str, Any]:
    """``network``'s record: ``{"logits": {split: (E, C) float32}, "labels": {split: (E,)},
    "accuracy": {split: float}}``, logits and labels at the plan's indices of :data:`RECORDED_SPLITS`
    (in its order), accuracy over every example of :data:`ACCURACY_SPLITS`. One forward pass per
    example, in eval mode (the mode and device are restored).

    Raises:
        ValueError: a plan index is not in its split.
    """
    was_training = network.training
    before = next(network.parameters()).device
    network.eval().to(device)
    record: dict[str, Any] = {"logits": {}, "labels": {}, "accuracy": {}}
    try:
        for split in ACCURACY_SPLITS:
            index, logits, labels = [], [], []
            for i, x, y in datamodule.dataloader(split, batch_size=datamodule.eval_batch_size, device=device):
                index.append(i.cpu())
                logits.append(network(x.to(device)).float().cpu())
                labels.append(y.cpu())
            if not index:
                continue
            seen, z, y_all = torch.cat(index), torch.cat(logits), torch.cat(labels)
            record["accuracy"][split] = float((z.argmax(1) == y_all).float().mean())
            if split in RECORDED_SPLITS:
                at = _positions(seen.numpy(), plan.indices[split], split)
                record["logits"][split], record["labels"][split] = z[at].contiguous(), y_all[at].contiguous()
    finally:
        network.train(was_training).to(before)
    return record


def _positions(seen: np.ndarray, wanted: list[int], split: str) -> torch.Tensor:
    order = np.argsort(seen, kind="stable")
    at = np.searchsorted(seen[order], wanted)
    at = np.minimum(at, len(seen) - 1)
    if (seen[order][at] != np.asarray(wanted)).any():
        raise ValueError(f"the audit plan records {split} examples that are not in this run's {split} split")
    return torch.from_numpy(order[at])


def method_folder_name(name: str) -> str:
    """A method's name as a folder name (letters, digits and ``_.+@-`` kept)."""
    return re.sub(r"[^A-Za-z0-9_.+@-]", "_", name)


class AuditStore:
    """An audit's folder (layout in the module notes)."""

    def __init__(self, folder: str | os.PathLike) -> None:
        self.folder = Path(folder)
        self.references = ReferenceResultsStore(self.folder / "reference_outputs")

    @property
    def settings_file(self) -> Path:
        return self.folder / "audit.json"

    def settings(self) -> dict[str, Any]:
        """The audit's settings (``audit.json``).

        Raises:
            FileNotFoundError: the folder holds no audit.
        """
        if not self.settings_file.is_file():
            raise FileNotFoundError(
                f"no audit in {str(self.folder)!r} (missing audit.json); start one with `unlearn-pl audit`"
            )
        return json.loads(self.settings_file.read_text())

    def plan(self) -> AuditPlan:
        return AuditPlan.from_dict(self.settings()["plan"])

    def create(self, settings: dict[str, Any], configs: dict[str, str]) -> None:
        """Write the settings and each method's config, or check that the folder holds the same.

        Raises:
            ValueError: the folder holds an audit of other settings.
        """
        if self.settings_file.is_file():
            theirs = self.settings()
            differ = sorted(k for k in set(theirs) | set(settings) if theirs.get(k) != settings.get(k))
            if differ:
                raise ValueError(
                    f"the audit folder {str(self.folder)!r} holds an audit with other {', '.join(differ)}; use another "
                    "folder, or the configuration it was started with"
                )
        for name, text in configs.items():
            path = self.config_file(name)
            if not path.is_file() or path.read_text() != text:
                write_text(path, text)
        write_json(self.settings_file, settings)

    def config_file(self, method: str) -> Path:
        return self.folder / "methods" / f"{method_folder_name(method)}.yaml"

    def output_file(self, method: str, seed: int) -> Path:
        return self.folder / "outputs" / method_folder_name(method) / f"seed_{int(seed)}.pt"

    def has(self, method: str, seed: int) -> bool:
        return self.output_file(method, seed).is_file()

    def save(self, method: str, seed: int, entry: dict[str, Any]) -> Path:
        """Write an unlearned model's entry (its record, reference key and timings) atomically."""
        return atomic_write(self.output_file(method, seed), lambda tmp: torch.save(entry, tmp))

    def load(self, method: str, seed: int) -> dict[str, Any]:
        return torch.load(self.output_file(method, seed), map_location="cpu", weights_only=True)

    def reference_outputs(self, key: str, evaluate: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any], bool]:
        """The reference models' records of ``key``: loaded, or evaluated by ``evaluate()`` and
        written while holding the key's lock. Returns them and whether they were evaluated here."""
        with self.references.lock(key):
            held = self.references.load(key)
            if held is not None:
                return held.results, False
            held = ReferenceResults(key, evaluate())
            self.references.save(held)
            return held.results, True

    def load_references(self, key: str) -> dict[str, Any]:
        """The reference records of ``key``.

        Raises:
            FileNotFoundError: they are not in the folder.
        """
        held = self.references.load(key)
        if held is None:
            raise FileNotFoundError(
                f"the reference outputs {key} are missing from {str(self.references.folder)!r}; "
                "run the audit again to evaluate them"
            )
        return held.results


def reference_key(weights: list[tuple[str, str]], plan: AuditPlan) -> str:
    """What the reference models' records depend on: their weights (content hashes) and the plan."""
    return content_hash([weights, plan.key])


__all__ = ["REFERENCES", "AuditStore", "method_folder_name", "model_outputs", "reference_key"]

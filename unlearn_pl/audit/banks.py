"""An audit's records as banks of models, and every method's audit from them (in parallel).

A method's bank over the seeds is its unlearned models' records, paired row by row with the
oracles' of the same seeds; the row :data:`ORIGINAL` puts the originals (the models before
unlearning) in place of the unlearned ones, as the baseline of what there is to forget.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import numpy as np

from unlearn_pl.audit.outputs import AuditStore
from unlearn_pl.audit.plan import RECORDED_SPLITS
from unlearn_pl.audit.scores import Banks, MethodAudit, audit_method

#: The row of the models before unlearning (the originals against the oracles).
ORIGINAL = "original"


def load_banks(store: AuditStore, method: str, seeds: Sequence[int]) -> Banks:
    """``method``'s records over ``seeds`` from the audit folder (``method`` :data:`ORIGINAL`: the
    originals, from the reference records).

    Raises:
        ValueError: a record was made for another plan, or labels disagree between records.
    """
    plan = store.plan()
    rows: dict[str, list[dict[str, Any]]] = {"unlearned": [], "oracle": []}
    for seed in seeds:
        entry = store.load(store_method(store, method), seed)
        if entry["plan"] != plan.key:
            raise ValueError(
                f"the outputs of {method} seed {seed} were recorded for another plan; delete "
                f"{store.output_file(store_method(store, method), seed)} and run the audit again"
            )
        references = store.load_references(entry["references"])
        rows["unlearned"].append(references["original"] if method == ORIGINAL else entry["outputs"])
        rows["oracle"].append(references["oracle"])
    labels: dict[str, np.ndarray] = {s: rows["oracle"][0]["labels"][s].numpy() for s in RECORDED_SPLITS}
    for record in rows["unlearned"] + rows["oracle"]:
        if any(not np.array_equal(record["labels"][s].numpy(), labels[s]) for s in RECORDED_SPLITS):
            raise ValueError(f"the records of {method} label the recorded examples differently")

    def stack(which: str, part: str) -> dict[str, np.ndarray]:
        splits = RECORDED_SPLITS if part == "logits" else rows[which][0][part]
        return {s: np.stack([np.asarray(r[part][s]) for r in rows[which]]) for s in splits}

    return Banks(
        stack("unlearned", "logits"),
        stack("oracle", "logits"),
        labels,
        stack("unlearned", "accuracy"),
        stack("oracle", "accuracy"),
    )


def store_method(store: AuditStore, method: str) -> str:
    """The method whose records hold ``method``'s: the originals' are in every method's (the first)."""
    return next(iter(store.settings()["methods"])) if method == ORIGINAL else method


def _audit_one(folder: str, method: str, seeds: list[int], n_resamples: int) -> MethodAudit:
    return audit_method(load_banks(AuditStore(folder), method, seeds), n_resamples=n_resamples)


def audit_methods(
    store: AuditStore, methods: Sequence[str], seeds: Sequence[int], n_resamples: int, workers: int = 1
) -> dict[str, MethodAudit]:
    """:func:`~unlearn_pl.audit.scores.audit_method` of :data:`ORIGINAL` and every method, in
    ``workers`` processes (the bootstraps of the challenge's ε are the costly part)."""
    names = [ORIGINAL, *methods]
    jobs = [(str(store.folder), name, [int(s) for s in seeds], int(n_resamples)) for name in names]
    if workers <= 1:
        return {name: _audit_one(*job) for name, job in zip(names, jobs, strict=True)}
    with ProcessPoolExecutor(min(workers, len(jobs)), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_audit_one, *job) for job in jobs]
        return {name: future.result() for name, future in zip(names, futures, strict=True)}


__all__ = ["ORIGINAL", "audit_methods", "load_banks"]

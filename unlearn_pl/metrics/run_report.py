"""``RunReport``: the callback that writes a run's split manifest and prints and saves its results table."""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from unlearn_pl.data.split import SplitManifest
from unlearn_pl.metrics.base import EvaluationCallback
from unlearn_pl.names import MODEL_ORDER, Results
from unlearn_pl.protocols import attached_data
from unlearn_pl.report import format_table, jsonable, to_csv, unique_path
from unlearn_pl.utils.io import write_json, write_text


def run_dir(trainer: pl.Trainer) -> Path:
    """The run's output directory: the logger's versioned folder, else ``default_root_dir``."""
    return Path(trainer.log_dir or trainer.default_root_dir)


def merge_results(callbacks: list[Callback]) -> Results:
    """Union of the results of every :class:`EvaluationCallback`, rows ordered original/unlearned/oracle."""
    merged: Results = {}
    for cb in callbacks:
        if isinstance(cb, EvaluationCallback):
            for model, values in cb.results.items():
                merged.setdefault(model, {}).update(values)
    order = [m for m in MODEL_ORDER if m in merged] + sorted(set(merged) - set(MODEL_ORDER))
    return {m: merged[m] for m in order}


def _same_split(path: Path, split: SplitManifest) -> bool:
    """Whether the manifest at ``path`` records ``split`` (an unreadable file counts as different)."""
    try:
        return SplitManifest.load(path) == split
    except (ValueError, OSError):
        return False


class RunReport(Callback):
    """Writes the split manifest at the start of a run and, after each ``validate``/``test``
    stage, prints the results table and saves it as ``results.csv``/``results.json`` in the run
    directory (never overwriting an existing file: a suffix ``-1``, ``-2``… is added; a folder
    that already holds another split's ``split.json`` gets this run's as ``split-1.json``).

    Args:
        print_table: print the table to the console (rank 0).
    """

    def __init__(self, print_table: bool = True) -> None:
        self.print_table = print_table
        self.last_results: Results = {}
        self.written: list[Path] = []

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        split = getattr(attached_data(trainer), "split", None)
        folder = run_dir(trainer)  # every rank: trainer.log_dir is a collective call under DDP
        if split is not None and trainer.is_global_zero:
            # A folder that holds another run's manifest keeps it; this run's goes next to it
            # (split-1.json…), unless one of them already records this split (validate after fit).
            path, k = folder / "split.json", 0
            while path.exists():
                if _same_split(path, split):
                    return
                k += 1
                path = folder / f"split-{k}.json"
            split.save(path)

    def _report(self, trainer: pl.Trainer) -> None:
        self.last_results = merge_results(trainer.callbacks)  # type: ignore[attr-defined]  # Lightning's Trainer sets callbacks in its callback connector, undeclared
        folder = run_dir(trainer)  # every rank: trainer.log_dir is a collective call under DDP
        if not trainer.is_global_zero or not self.last_results:
            return
        self.written = [
            write_text(unique_path(folder / "results.csv"), to_csv(self.last_results)),
            write_json(unique_path(folder / "results.json"), jsonable(self.last_results)),
        ]
        if self.print_table:
            print(f"\n{format_table(self.last_results)}\n\nresults: {folder}\n", flush=True)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING and not trainer.sanity_checking:
            self._report(trainer)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer)

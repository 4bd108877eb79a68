"""Every table, CSV and JSON file the package writes.

- the run report (:class:`RunReport`): the split manifest and the results table of a
  ``fit``/``validate``/``test`` run, written into the run directory;
- row tables (:func:`format_rows`, :func:`rows_to_csv`, :func:`jsonable`): the study tables
  (``trials.csv``, ``selection.csv``, ``differences.csv``).

In every printed table a NaN value is shown as ``nan``, and ``-`` means "not applicable" (the
model or row has no such column).
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from unlearn_pl._io import write_json, write_text
from unlearn_pl.data.split import Split
from unlearn_pl.metrics.base import EvaluationCallback, Results

#: Row order of the results table.
MODEL_ORDER = ("original", "unlearned", "oracle")


def run_dir(trainer: pl.Trainer) -> Path:
    """The run's output directory: the logger's versioned folder, else ``default_root_dir``."""
    return Path(trainer.log_dir or trainer.default_root_dir)


def unique_path(path: Path) -> Path:
    """``path`` if free, else ``stem-1.suffix``, ``stem-2.suffix``…: results are never overwritten."""
    candidate, k = path, 0
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
    return candidate


def merge_results(callbacks: list[Callback]) -> Results:
    """Union of the results of every :class:`EvaluationCallback`, rows ordered original/unlearned/oracle."""
    merged: Results = {}
    for cb in callbacks:
        if isinstance(cb, EvaluationCallback):
            for model, values in cb.results.items():
                merged.setdefault(model, {}).update(values)
    order = [m for m in MODEL_ORDER if m in merged] + sorted(set(merged) - set(MODEL_ORDER))
    return {m: merged[m] for m in order}


def format_table(results: Results, width: int = 100) -> str:
    """A fixed-width text table: one row per model, one column per metric.

    Accuracies come first, then the attack/ToW/region scores, losses and gaps; columns are
    wrapped into blocks of at most ``width`` characters so the table fits a terminal.
    """
    columns = sorted({c for values in results.values() for c in values}, key=_column_order)
    names = ["model", *results]
    name_w = max(map(len, names))
    blocks: list[list[str]] = [[]]
    used = name_w
    for c in columns:
        w = max(len(c), 6) + 2
        if blocks[-1] and used + w > width:
            blocks.append([])
            used = name_w
        blocks[-1].append(c)
        used += w
    out = []
    for block in blocks:
        rows = [["model", *block]] + [[m, *(_fmt(v.get(c)) for c in block)] for m, v in results.items()]
        widths = [max(len(r[i]) for r in rows) for i in range(len(block) + 1)]
        lines = ["  ".join(x.rjust(w) if i else x.ljust(w) for i, (x, w) in enumerate(zip(r, widths))) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        out.append("\n".join(lines))
    return "\n\n".join(out)


def to_csv(results: Results) -> str:
    columns = sorted({c for values in results.values() for c in values}, key=_column_order)
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(["model", *columns])
    for model, values in results.items():
        writer.writerow([model, *(_csv_cell(values.get(c)) for c in columns)])
    return buf.getvalue()


def _fmt(value: Any) -> str:
    """A table cell: ``-`` for a missing value (not applicable), ``nan`` for NaN, floats to 4 decimals."""
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def format_rows(rows: Sequence[Mapping[str, Any]], columns: Sequence[str]) -> str:
    """A fixed-width text table of ``columns`` of dict rows (see :func:`_fmt` for the cells).

    >>> print(format_rows([{"a": 1.0, "b": float("nan")}, {"a": 2}], ["a", "b"]))
         a    b
    -----------
    1.0000  nan
         2    -
    """
    table = [list(columns)] + [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(columns))]
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths)) for r in table]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(lines)


def rows_to_csv(rows: Sequence[Mapping[str, Any]], empty_columns: Sequence[str] = ()) -> str:
    """CSV text of dict rows; the columns are the union of the rows' keys in first-seen order, a
    missing value is an empty cell, NaN is written ``nan``, containers as JSON. Without rows the
    header is ``empty_columns``, so that a reader still finds the table's columns."""
    columns: dict[str, None] = {} if rows else dict.fromkeys(empty_columns)
    for r in rows:
        columns.update(dict.fromkeys(r))
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(columns), restval="")
    writer.writeheader()
    for r in rows:
        writer.writerow({k: _csv_cell(v) for k, v in r.items()})
    return buf.getvalue()


def _csv_cell(value: Any) -> Any:
    if value is None:
        return ""
    if isinstance(value, float) and math.isnan(value):
        return "nan"
    if isinstance(value, (Mapping, list, tuple)):
        return json.dumps(jsonable(value))
    return value if isinstance(value, (bool, int, float, str)) else repr(value)


def jsonable(obj: Any) -> Any:
    """``obj`` with NaN as ``None`` (JSON has no NaN), tuples as lists and other objects as ``repr``."""
    if isinstance(obj, Mapping):
        return {str(k): jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    return repr(obj)


def _column_order(column: str) -> tuple[int, int, str]:
    """Accuracies, then split-free scores (attacks, ToW, regions), losses, accuracy gaps, loss gaps."""
    splits = ("retain", "forget", "val", "test")
    prefix, _, kind = column.partition("_")
    if prefix not in splits:
        return (1, 0, column)
    rank = {"acc": 0, "loss": 2, "acc_gap": 3, "loss_gap": 4}.get(kind, 5)
    return (rank, splits.index(prefix), column)


def _same_split(path: Path, split: Split) -> bool:
    """Whether the manifest at ``path`` records ``split`` (an unreadable file counts as different)."""
    try:
        return Split.load(path) == split
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
        split = getattr(trainer.datamodule, "split", None)
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
        self.last_results = merge_results(trainer.callbacks)  # type: ignore[arg-type]
        folder = run_dir(trainer)  # every rank: trainer.log_dir is a collective call under DDP
        if not trainer.is_global_zero or not self.last_results:
            return
        if self.print_table:
            print("\n" + format_table(self.last_results) + "\n", flush=True)
        self.written = [
            write_text(unique_path(folder / "results.csv"), to_csv(self.last_results)),
            write_json(unique_path(folder / "results.json"), jsonable(self.last_results)),
        ]

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.state.fn == TrainerFn.VALIDATING and not trainer.sanity_checking:
            self._report(trainer)

    def on_test_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._report(trainer)

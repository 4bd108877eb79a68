"""Every table, CSV and JSON file the package writes: the run's results table and the study tables.

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

from unlearn_pl.names import Results


def unique_path(path: Path) -> Path:
    """``path`` if free, else ``stem-1.suffix``, ``stem-2.suffix``…: results are never overwritten."""
    candidate, k = path, 0
    while candidate.exists():
        k += 1
        candidate = path.with_name(f"{path.stem}-{k}{path.suffix}")
    return candidate


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
        lines = [
            "  ".join(x.rjust(w) if i else x.ljust(w) for i, (x, w) in enumerate(zip(r, widths, strict=True)))
            for r in rows
        ]
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
    lines = ["  ".join(c.rjust(w) for c, w in zip(r, widths, strict=True)) for r in table]
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

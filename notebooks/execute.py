"""Execute notebooks in place with nbclient and save them with nbformat (no Jupyter server).

    python notebooks/execute.py notebooks/01_tour.ipynb [more.ipynb ...] [--data digits] [--timeout 3600]

The data a notebook runs on comes from ``UNLEARN_PL_NOTEBOOK_DATA`` (``fashion-mnist`` by default:
the committed copies; ``digits`` for a quick check). A cell error stops the run, reports the
cell, and leaves the file unchanged.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient


def execute(path: str | os.PathLike, data: str | None = None, timeout: int = 3600, save: bool = True,
            after_first_cell: str | None = None) -> nbformat.NotebookNode:
    """Run every cell of the notebook at ``path`` (working directory: its folder) and return it.

    Args:
        path: the ``.ipynb`` file.
        data: ``digits`` or ``fashion-mnist`` (sets ``UNLEARN_PL_NOTEBOOK_DATA`` for the kernel);
            ``None`` keeps the environment's value.
        timeout: seconds allowed per cell.
        save: write the executed notebook back to ``path``.
        after_first_cell: code run in a cell of its own right after the first code cell (the one
            that picks the data), as papermill injects parameters: settings of a run that are not
            the notebook's own. The cell is left out of the notebook returned and saved.

    Raises:
        nbclient.exceptions.CellExecutionError: if a cell raises.
    """
    path = Path(path)
    if data is not None:
        os.environ["UNLEARN_PL_NOTEBOOK_DATA"] = data
    nb = nbformat.read(path, as_version=4)
    injected = None
    if after_first_cell is not None:
        first = next(k for k, cell in enumerate(nb.cells) if cell.cell_type == "code")
        injected = nbformat.v4.new_code_cell(after_first_cell)
        nb.cells.insert(first + 1, injected)
    client = NotebookClient(nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    if injected is not None:
        nb.cells.remove(injected)
    if save:
        nbformat.write(nb, path)
    return nb


def main() -> None:
    """Command-line entry point: execute each notebook given, report its wall time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+")
    parser.add_argument("--data", choices=("digits", "fashion-mnist"), default=None)
    parser.add_argument("--timeout", type=int, default=3600)
    parser.add_argument("--no-save", action="store_true")
    args = parser.parse_args()
    for nb in args.notebooks:
        start = time.perf_counter()
        execute(nb, args.data, args.timeout, save=not args.no_save)
        print(f"{nb}: executed in {time.perf_counter() - start:.0f}s", flush=True)


if __name__ == "__main__":
    main()

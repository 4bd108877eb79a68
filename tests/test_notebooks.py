"""Every notebook in notebooks/ executes without error on the small data (digits).

The committed copies hold outputs from Fashion-MNIST runs, or none at all (a notebook whose code
changed has its outputs cleared until it is re-executed on Fashion-MNIST: the outputs must come
from the code beside them); here each notebook runs from scratch
(outputs discarded) with ``UNLEARN_PL_NOTEBOOK_DATA=digits`` and this session's isolated model
cache, so a notebook that no longer matches the code fails the suite.
"""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import REPO
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _execute(path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    nb = nbformat.read(path, as_version=4)
    # The kernel inherits os.environ: the data switch, and the isolated cache set by conftest.
    monkeypatch.setenv("UNLEARN_PL_NOTEBOOK_DATA", "digits")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    client = NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}})
    client.execute()
    return nb


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == ["01_tour.ipynb", "02_del_experiments.ipynb", "03_width_study.ipynb", "04_ulira.ipynb",
                                          "05_del_defaults.ipynb"]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_on_digits(path, monkeypatch):
    nb = _execute(path, monkeypatch)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "data: digits" in text  # the first cell really picked the small data
    images = sum("image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert images >= 1


def test_a_failing_cell_fails_the_run(tmp_path, monkeypatch):
    """The executor surfaces cell errors (so the notebook test above can fail)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('broken cell')")])
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(CellExecutionError, match="broken cell"):
        _execute(path, monkeypatch)


def test_committed_notebooks_show_fashion_mnist_outputs_or_none():
    """The committed copies are their full-scale runs (Fashion-MNIST; U-LiRA's K = 32 banks), without
    errors, and stay small; or they were cleared whole (no cell executed, no output), never a mix."""
    for path in NOTEBOOKS:
        assert path.stat().st_size < 2_000_000, f"{path.name} is {path.stat().st_size} bytes"
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        outputs = [o for c in code for o in c.get("outputs", [])]
        if not outputs and not any(c.get("execution_count") for c in code):
            continue  # cleared: awaiting its Fashion-MNIST run
        assert all(c.get("execution_count") for c in code), f"{path.name} has unexecuted cells"
        assert not [o for o in outputs if o.output_type == "error"], path.name
        # Their full-scale run: Fashion-MNIST, or the U-LiRA study's K = 32 banks on digits.
        text = "".join(o.get("text", "") for o in outputs)
        assert "data: fashion-mnist" in text or "data: digits (full study)" in text, path.name

"""Every notebook in notebooks/ executes without error on the small data (digits).

The committed copies hold outputs from Fashion-MNIST runs, or none at all (a notebook whose code
changed has its outputs cleared until it is re-executed on Fashion-MNIST: the outputs must come
from the code beside them); here each notebook runs from scratch
(outputs discarded) with ``UNLEARN_PL_NOTEBOOK_DATA=digits``, the smaller training pool of
``notebook_digits_pool.yaml`` and this session's isolated model cache, so a notebook that no
longer matches the code fails the suite.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import ModuleType

import nbformat
import pytest
from conftest import REPO
from nbclient.exceptions import CellExecutionError

NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))


def _notebooks_module(name: str, file: str) -> ModuleType:
    """A helper module of notebooks/ (not a package), loaded from its file."""
    spec = importlib.util.spec_from_file_location(name, REPO / "notebooks" / file)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


executor = _notebooks_module("notebook_executor", "execute.py")
committed_studies = _notebooks_module("committed_studies", "committed_studies.py")

#: Run right after the first cell of the notebooks that compose config files (the cell that picks
#: the data): a smaller training pool after the digits overlay. Notebook 04 sets its own quick scale.
SMALLER_POOL = f"DATA_FILES = [*DATA_FILES, Path({str(REPO / 'tests' / 'notebook_digits_pool.yaml')!r})]"
AFTER_FIRST_CELL = {
    "01_tour": SMALLER_POOL,
    "02_del_experiments": SMALLER_POOL,
    "03_width_study": SMALLER_POOL,
    "05_del_defaults": SMALLER_POOL,
    "06_del_vs_random": SMALLER_POOL,
}


def _execute(path: Path, monkeypatch: pytest.MonkeyPatch) -> nbformat.NotebookNode:
    # The kernel inherits os.environ: the data switch, and the isolated cache set by conftest.
    monkeypatch.setenv("UNLEARN_PL_NOTEBOOK_DATA", "digits")
    return executor.execute(path, timeout=600, save=False, after_first_cell=AFTER_FIRST_CELL.get(path.stem))


def test_there_are_notebooks():
    assert [p.name for p in NOTEBOOKS] == [
        "01_tour.ipynb",
        "02_del_experiments.ipynb",
        "03_width_study.ipynb",
        "04_ulira.ipynb",
        "05_del_defaults.ipynb",
        "06_del_vs_random.ipynb",
    ]


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_on_digits(path, monkeypatch):
    nb = _execute(path, monkeypatch)
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.output_type == "error"]
    assert not errors
    text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "data: digits" in text  # the first cell really picked the small data
    images = sum(
        "image/png" in o.get("data", {}) for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert images >= 1


def test_a_failing_cell_fails_the_run(tmp_path, monkeypatch):
    """The executor surfaces cell errors (so the notebook test above can fail)."""
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("raise ValueError('broken cell')")])
    path = tmp_path / "broken.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(CellExecutionError, match="broken cell"):
        _execute(path, monkeypatch)


def test_code_after_the_first_cell_runs_there_and_stays_out_of_the_notebook(tmp_path):
    """The test's own settings (the smaller training pool) run between the first cell and the rest."""
    cells = [nbformat.v4.new_code_cell("POOL = ['data_digits.yaml']"), nbformat.v4.new_code_cell("print(POOL)")]
    path = tmp_path / "settings.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=cells), path)
    nb = executor.execute(path, save=False, after_first_cell="POOL = [*POOL, 'smaller.yaml']")
    assert [c.source for c in nb.cells] == [c.source for c in cells]
    assert nb.cells[1].outputs[0].text == "['data_digits.yaml', 'smaller.yaml']\n"


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


def test_every_study_a_committed_notebook_ran_has_its_journal_committed():
    """Each study whose outputs a committed notebook shows (created or resumed) has its journal committed
    beside its tables (docs/results/<study>/study.log): the notebook copies it and re-runs on a new
    machine by reading the trials instead of computing them."""
    # Optuna's log lines; a study's noise floor is a sub-study ("<study>.noise_floor") in the same journal.
    named = re.compile(
        r"(?:Using an existing study with `study_name='|A new study created in Journal with name: )([\w-]+)"
    )
    studies = set()
    for path in NOTEBOOKS:
        nb = nbformat.read(path, as_version=4)
        text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
        studies |= set(named.findall(text))
    assert len(studies) >= 16, sorted(studies)  # notebooks 02, 03, 05 and 06 read their studies
    missing = sorted(s for s in studies if not (REPO / "docs" / "results" / s / "study.log").is_file())
    assert not missing, f"studies without a committed journal: {missing}"


def test_a_study_folder_resumes_the_committed_journal_and_keeps_its_own(tmp_path):
    """On Fashion-MNIST a study's folder gets the committed journal where it has none and keeps the one
    a run of this machine wrote; on digits (the smoke run) it is emptied; a study with no committed
    journal is left to the engine to create."""
    runs, committed = tmp_path / "runs", tmp_path / "committed"
    (committed / "s").mkdir(parents=True)
    (committed / "s" / "study.log").write_text("committed")
    folder = committed_studies.study_folder(runs, "s", "fashion-mnist", committed)
    assert folder == runs / "s" and (folder / "study.log").read_text() == "committed"
    (folder / "study.log").write_text("this machine's run")
    committed_studies.study_folder(runs, "s", "fashion-mnist", committed)
    assert (folder / "study.log").read_text() == "this machine's run"
    (folder / "trials.csv").write_text("")
    assert committed_studies.study_folder(runs, "s", "digits", committed) == folder and not folder.exists()
    assert not committed_studies.study_folder(runs, "new", "fashion-mnist", committed).exists()
    assert committed_studies.COMMITTED == REPO / "docs" / "results"

"""The run folder of a notebook's study, resumed from its committed journal where this machine lacks one.

Each study that docs/results.md reports has its Optuna journal committed beside its tables
(``docs/results/<study>/study.log``). The notebooks run ``unlearn-pl tune`` with ``--output_dir
runs/notebooks``; copying the committed journal into the study's folder first makes the engine read the
finished trials instead of running them again (Optuna resumes a study from its journal storage), so a
notebook re-runs on a new machine in minutes.
"""

from __future__ import annotations

import shutil
from pathlib import Path

#: Where the committed studies live: the results page's tables and journals.
COMMITTED = Path(__file__).resolve().parents[1] / "docs" / "results"


def study_folder(runs: Path, name: str, data: str, committed: Path = COMMITTED) -> Path:
    """The folder of study ``name`` under ``runs``, ready for ``unlearn-pl tune --study_name <name>``.

    Args:
        runs: the notebooks' ``--output_dir``.
        name: the study's name (its folder's name in ``runs`` and in ``committed``).
        data: ``digits`` (the test's smoke run: the folder is emptied so the study starts afresh; the
            model cache keeps the reference models) or ``fashion-mnist`` (the committed studies' data).
        committed: the folder of committed studies.

    Returns:
        ``runs / name``. On Fashion-MNIST it holds the committed journal when it had none and one is
        committed; a journal already there (this machine's own run) is left as it is.
    """
    folder = runs / name
    journal = committed / name / "study.log"
    if data == "digits":
        shutil.rmtree(folder, ignore_errors=True)
    elif journal.is_file() and not (folder / "study.log").exists():
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(journal, folder / "study.log")
    return folder

"""The study engine (:mod:`unlearn_pl.tuning.engine`) on toy objectives: workers, resuming, failures."""

from __future__ import annotations

import multiprocessing
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

from unlearn_pl.tuning.engine import journal_storage, run_trials

sys.path.insert(0, str(Path(__file__).parent))  # spawned workers unpickle the toys by module name
from _study_toys import GRID, CountingObjective  # noqa: E402

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _cells(study: optuna.Study, states=(optuna.trial.TrialState.COMPLETE,)) -> Counter:
    return Counter((t.params["x"], t.params["seed"]) for t in study.trials if t.state in states)


def _run(tmp_path: Path, workers: int, **kwargs) -> optuna.Study:
    calls = tmp_path / "calls"
    calls.mkdir(exist_ok=True)
    return run_trials(CountingObjective(str(calls), **kwargs), study_name="toy", storage=journal_storage(tmp_path / "s.log"),
                      sampler=optuna.samplers.GridSampler(GRID), workers=workers)


@pytest.mark.slow  # spawned workers import torch: ~30 s
@pytest.mark.parametrize("workers", [1, 2])
def test_grid_runs_every_cell_once_and_records_the_failure(tmp_path, workers):
    study = _run(tmp_path, workers)
    done = _cells(study)
    assert len(done) == 7 and set(done.values()) == {1}
    failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
    assert [(t.params["x"], t.params["seed"]) for t in failed] == [(3, 1)]
    assert failed[0].user_attrs["error"] == "ValueError: boom"
    ran = Counter(p.name.rsplit("-", 1)[0] for p in (tmp_path / "calls").iterdir())
    assert set(ran.values()) == {1} and len(ran) == 8  # nothing ran twice, the failure was not retried
    # Running again adds nothing: the grid is exhausted.
    again = _run(tmp_path, workers)
    assert len(again.trials) == len(study.trials)


@pytest.mark.slow  # a spawned process that dies, then the resumed run: ~30 s
def test_a_killed_run_resumes_without_repeating_completed_trials(tmp_path):
    # A worker process dies inside cell (2, 0), leaving its trial RUNNING in the storage.
    ctx = multiprocessing.get_context("spawn")
    p = ctx.Process(target=_run, args=(tmp_path, 1), kwargs={"die_on": (2, 0)})
    p.start()
    p.join()
    assert p.exitcode == 3
    storage = journal_storage(tmp_path / "s.log")
    before = optuna.load_study(study_name="toy", storage=storage)
    done_before = {t.number for t in before.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert [t.state for t in before.trials].count(optuna.trial.TrialState.RUNNING) == 1

    study = _run(tmp_path, 1)
    assert len(_cells(study)) == 7 and set(_cells(study).values()) == {1}
    stale = [t for t in study.trials if t.user_attrs.get("error", "").startswith("interrupted")]
    assert len(stale) == 1 and stale[0].state == optuna.trial.TrialState.FAIL
    retry = [t for t in study.trials if t.user_attrs.get("retry_of") == stale[0].number]
    assert len(retry) == 1 and retry[0].state == optuna.trial.TrialState.COMPLETE
    assert done_before <= {t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    ran = Counter(p.name.rsplit("-", 1)[0] for p in (tmp_path / "calls").iterdir())
    assert set(ran.values()) == {1}  # no completed cell ran again


def test_bad_arguments_are_rejected(tmp_path):
    objective = CountingObjective(str(tmp_path))
    with pytest.raises(ValueError, match="workers"):
        run_trials(objective, study_name="t", storage=tmp_path / "s.log", sampler=optuna.samplers.GridSampler(GRID), workers=0)
    with pytest.raises(ValueError, match="GridSampler"):
        run_trials(objective, study_name="t", storage=tmp_path / "s.log")
    run_trials(objective, study_name="t", storage=tmp_path / "s.log", n_trials=1)
    with pytest.raises(ValueError, match="directions"):
        run_trials(objective, study_name="t", storage=tmp_path / "s.log", n_trials=1, directions=("minimize",))

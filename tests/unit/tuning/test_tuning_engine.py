"""The study engine (:mod:`unlearn_pl.tuning.engine`) on toy objectives: workers, resuming, failures."""

from __future__ import annotations

import multiprocessing
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest

from unlearn_pl.tuning.engine import journal_storage, run_trials, trial_cell

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # spawned workers unpickle the toys by module name
from _study_toys import GRID, CountingObjective

optuna.logging.set_verbosity(optuna.logging.ERROR)


def _cells(study: optuna.Study, states=(optuna.trial.TrialState.COMPLETE,)) -> Counter:
    return Counter((t.params["x"], t.params["seed"]) for t in study.trials if t.state in states)


def _run(tmp_path: Path, workers: int, **kwargs) -> optuna.Study:
    calls = tmp_path / "calls"
    calls.mkdir(exist_ok=True)
    return run_trials(
        CountingObjective(str(calls), **kwargs),
        study_name="toy",
        storage=journal_storage(tmp_path / "s.log"),
        sampler=optuna.samplers.GridSampler(GRID),
        workers=workers,
    )


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
    stale = [t for t in study.trials if (t.user_attrs.get("error") or "").startswith("interrupted")]
    assert len(stale) == 1 and stale[0].state == optuna.trial.TrialState.FAIL
    # Retried once by Optuna's RetryFailedTrialCallback, which names the failed trial.
    retry = [t for t in study.trials if t.system_attrs.get("failed_trial") == stale[0].number]
    assert len(retry) == 1 and retry[0].state == optuna.trial.TrialState.COMPLETE
    assert done_before <= {t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}
    ran = Counter(p.name.rsplit("-", 1)[0] for p in (tmp_path / "calls").iterdir())
    assert set(ran.values()) == {1}  # no completed cell ran again


def test_bad_arguments_are_rejected(tmp_path):
    objective = CountingObjective(str(tmp_path))
    with pytest.raises(ValueError, match="workers"):
        run_trials(
            objective, study_name="t", storage=tmp_path / "s.log", sampler=optuna.samplers.GridSampler(GRID), workers=0
        )
    with pytest.raises(ValueError, match="GridSampler"):
        run_trials(objective, study_name="t", storage=tmp_path / "s.log")
    run_trials(objective, study_name="t", storage=tmp_path / "s.log", n_trials=1)
    with pytest.raises(ValueError, match="directions"):
        run_trials(objective, study_name="t", storage=tmp_path / "s.log", n_trials=1, directions=("minimize",))


# ----------------------------------------------------------------------------- failures, interrupts, damage
def test_a_torn_last_journal_record_is_skipped_and_the_study_resumes(tmp_path):
    # A full disk or a kill mid-write leaves the last record incomplete: the journal lost its last 40 bytes.
    _run(tmp_path, 1, sleep=0.0)
    log = tmp_path / "s.log"
    log.write_bytes(log.read_bytes()[:-40])
    with pytest.warns(UserWarning, match=f"{log}: its last record was incomplete"):
        study = _run(tmp_path, 1, sleep=0.0)
    assert len(_cells(study)) == 7 and set(_cells(study).values()) == {1}
    assert not log.read_bytes() or log.read_bytes().endswith(b"\n")
    assert optuna.load_study(study_name="toy", storage=journal_storage(log)).trials  # readable again


def test_a_journal_damaged_inside_is_named_with_its_recovery(tmp_path):
    _run(tmp_path, 1, sleep=0.0)
    log = tmp_path / "s.log"
    lines = log.read_bytes().splitlines(keepends=True)
    log.write_bytes(b"".join([*lines[:3], b'{"op_code": 4, "worker_id": \n', *lines[3:]]))
    with pytest.raises(ValueError, match=f"the study journal {log} is damaged inside .*move it aside"):
        _run(tmp_path, 1, sleep=0.0)


def test_a_phantom_trial_without_parameters_is_failed_and_never_queued_again(tmp_path):
    # A journal of the earlier engine: a trial created by the sampler, left RUNNING without
    # parameters by a worker that is gone, and its retry queued without parameters.
    storage = journal_storage(tmp_path / "s.log")
    study = optuna.create_study(study_name="toy", storage=storage, direction="maximize")
    gone = multiprocessing.get_context("spawn").Process(target=int)
    gone.start()
    gone.join()
    phantom = study.ask()
    phantom.set_user_attr("host", __import__("socket").gethostname())
    phantom.set_user_attr("pid", gone.pid)
    study = _run(tmp_path, 1, sleep=0.0)
    assert len(_cells(study)) == 7
    assert all(t.params for t in study.trials if t.number != phantom.number)  # nothing queued without parameters
    assert study.trials[phantom.number].state == optuna.trial.TrialState.FAIL
    assert not study.get_trials(states=(optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING))


def test_more_workers_than_cells_create_no_trial_without_parameters(tmp_path):
    calls = tmp_path / "calls"
    calls.mkdir()
    study = run_trials(
        CountingObjective(str(calls), sleep=0.5),
        study_name="toy",
        storage=journal_storage(tmp_path / "s.log"),
        sampler=optuna.samplers.GridSampler({"x": [0], "seed": [0]}),
        workers=2,
    )
    assert [(t.state, t.params) for t in study.trials] == [(optuna.trial.TrialState.COMPLETE, {"x": 0, "seed": 0})]


def test_a_cell_queued_twice_runs_once(tmp_path):
    # Two processes that start a study at the same moment both queue its cells.
    from unlearn_pl.tuning.engine import Grid, queue_cells

    storage = journal_storage(tmp_path / "s.log")
    study = optuna.create_study(study_name="toy", storage=storage, direction="maximize")
    grid = Grid.product(GRID)
    assert queue_cells(study, grid) == 8 and queue_cells(study, grid) == 0
    study.enqueue_trial({"x": 0, "seed": 0})  # the other process's copy, queued before it saw ours
    study = _run(tmp_path, 1, sleep=0.0)
    assert len(_cells(study)) == 7 and set(_cells(study).values()) == {1}
    (copy,) = [t for t in study.trials if "duplicate_of" in t.user_attrs]
    assert copy.state == optuna.trial.TrialState.PRUNED and trial_cell(copy) == {"x": 0, "seed": 0}


def test_a_failed_cell_is_not_run_again_unless_asked(tmp_path):
    first = len(_run(tmp_path, 1, sleep=0.0).trials)
    assert len(_run(tmp_path, 1, sleep=0.0).trials) == first == 8  # a second run changes nothing
    retried = run_trials(
        CountingObjective(str(tmp_path / "calls"), sleep=0.0),
        study_name="toy",
        storage=journal_storage(tmp_path / "s.log"),
        sampler=optuna.samplers.GridSampler(GRID),
        retry_failed=True,
    )
    assert len(retried.trials) == first + 1
    assert [(t.params, t.state) for t in retried.trials[-1:]] == [({"x": 3, "seed": 1}, optuna.trial.TrialState.FAIL)]


def test_a_full_disk_keeps_the_completed_trials(tmp_path, monkeypatch):
    import errno

    from optuna.storages.journal import JournalFileBackend

    append, writes = JournalFileBackend.append_logs, []

    def fills_up(self, logs):
        writes.append(logs)
        if len(writes) > 40:
            raise OSError(errno.ENOSPC, "No space left on device", self._file_path)
        append(self, logs)

    monkeypatch.setattr(JournalFileBackend, "append_logs", fills_up)
    with pytest.raises(OSError, match="No space left on device"):
        _run(tmp_path, 1, sleep=0.0)
    monkeypatch.setattr(JournalFileBackend, "append_logs", append)
    kept = optuna.load_study(study_name="toy", storage=journal_storage(tmp_path / "s.log"))
    done = {t.number for t in kept.trials if t.state == optuna.trial.TrialState.COMPLETE}
    assert done
    study = _run(tmp_path, 1, sleep=0.0)  # the same command, after freeing space, completes the grid
    assert len(_cells(study)) == 7 and set(_cells(study).values()) == {1}
    assert done <= {t.number for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE}


def test_a_dead_worker_is_named_and_its_trial_retried_once_by_the_next_run(tmp_path):
    from unlearn_pl.tuning.engine import WorkerDied

    with pytest.raises(
        WorkerDied, match=r"worker \d \(pid \d+\) exited with status 3; run the same command again to resume"
    ):
        _run(tmp_path, 2, die_on=(2, 0), sleep=0.0)
    study = _run(tmp_path, 2, sleep=0.0)
    assert len(_cells(study)) == 7 and set(_cells(study).values()) == {1}
    (dead,) = [
        t for t in study.trials if (t.user_attrs.get("error") or "").startswith("interrupted: the run of process")
    ]
    assert [t.state for t in study.trials if t.system_attrs.get("failed_trial") == dead.number] == [
        optuna.trial.TrialState.COMPLETE
    ]


def test_a_retry_whose_worker_dies_too_ends_the_chain(tmp_path):
    from unlearn_pl.tuning.engine import WorkerDied

    for _ in range(2):  # the trial, then its retry
        with pytest.raises(WorkerDied):
            _run(tmp_path, 2, die_on=(2, 0), sleep=0.0)
    study = _run(tmp_path, 2, die_on=(2, 0), sleep=0.0)  # nothing of that cell is left to run
    cell = [t for t in study.trials if t.params == {"x": 2, "seed": 0}]
    assert len(cell) == 2 and all(t.state == optuna.trial.TrialState.FAIL for t in cell)
    assert cell[1].system_attrs["failed_trial"] == cell[0].number


def _journal_pids(log: Path, state=optuna.trial.TrialState.RUNNING) -> set[int]:
    if not log.is_file():
        return set()
    try:
        study = optuna.load_study(study_name="toy", storage=journal_storage(log))
    except KeyError:  # not created yet
        return set()
    return {t.user_attrs["pid"] for t in study.get_trials(states=(state,)) if "pid" in t.user_attrs}


def _start_toy(tmp_path: Path, workers: int, sleep: float):
    import subprocess

    toys = Path(__file__).resolve().parents[2] / "_study_toys.py"
    return subprocess.Popen(
        [sys.executable, str(toys), str(tmp_path), str(workers), str(sleep)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(condition, what: str, timeout: float = 300.0) -> None:
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


def _alive(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


@pytest.mark.slow  # a study in a subprocess, stopped and resumed: ~20 s
def test_ctrl_c_stops_every_worker_and_the_next_run_resumes(tmp_path):
    import signal

    log = tmp_path / "s.log"
    parent = _start_toy(tmp_path, 2, 600.0)
    _wait_for(lambda: len(_journal_pids(log)) == 2, "two running trials")
    workers = _journal_pids(log)
    parent.send_signal(signal.SIGINT)
    _, err = parent.communicate(timeout=120)
    assert parent.returncode == 130 and "Traceback" not in err, err
    assert not any(_alive(pid) for pid in workers)
    study = optuna.load_study(study_name="toy", storage=journal_storage(log))
    stopped = [t for t in study.trials if t.user_attrs.get("interrupted")]
    assert len(stopped) == 2 and all(t.state == optuna.trial.TrialState.FAIL for t in stopped)
    # The interrupted cells are queued again: the next run completes the grid.
    study = _run(tmp_path, 1, sleep=0.0)
    assert len(_cells(study)) == 7 and set(_cells(study).values()) == {1}


@pytest.mark.slow  # a study in a subprocess whose parent is killed: ~15 s
def test_killing_the_parent_stops_its_workers(tmp_path):
    log = tmp_path / "s.log"
    parent = _start_toy(tmp_path, 2, 600.0)
    _wait_for(lambda: len(_journal_pids(log)) == 2, "two running trials")
    workers = _journal_pids(log)
    parent.kill()
    parent.communicate(timeout=60)
    _wait_for(lambda: not any(_alive(pid) for pid in workers), "the workers to stop", timeout=120)
    study = optuna.load_study(study_name="toy", storage=journal_storage(log))
    assert [t.state for t in study.trials if t.user_attrs.get("pid") in workers] == [optuna.trial.TrialState.FAIL] * 2


def test_ctrl_c_while_the_workers_start_stops_those_started(tmp_path, monkeypatch):
    """A Ctrl-C between two workers' starts (forkserver starts take seconds) stops the started one
    and ends in StudyInterrupted, not a traceback with a worker left running."""
    import signal

    from unlearn_pl.tuning.engine import StudyInterrupted, processes
    from unlearn_pl.tuning.engine.signals import STOP

    real = processes._context
    started = []

    class CtrlCOnSecondStart:
        def __init__(self, context):
            self.context = context

        def Process(self, **kwargs):
            process = self.context.Process(**kwargs)
            start = process.start

            def start_or_interrupt():
                if started:
                    STOP.handler(signal.SIGINT, None)  # what the terminal's Ctrl-C does here
                start()
                started.append(process)

            process.start = start_or_interrupt
            return process

    monkeypatch.setattr(processes, "_context", lambda gpus: CtrlCOnSecondStart(real(gpus)))
    with pytest.raises(StudyInterrupted):
        _run(tmp_path, 2, sleep=600.0)
    assert len(started) == 1 and not started[0].is_alive()


def test_a_grown_grid_starts_from_the_completed_trials_of_the_smaller_one(tmp_path):
    from optuna.distributions import CategoricalDistribution, IntDistribution

    from unlearn_pl.tuning.engine import REUSED_FROM, Grid, copy_completed, queue_cells

    def grid(xs: list[int]) -> Grid:
        d = {"x": CategoricalDistribution(xs), "seed": IntDistribution(0, 9)}
        return Grid([{"x": x, "seed": s} for x in xs for s in (0, 1)], d)

    small = optuna.create_study(study_name="small", storage=journal_storage(tmp_path / "small.log"))
    queue_cells(small, grid([0, 1, 3]))
    for _ in range(6):
        trial = small.ask()  # the queued trials, in order
        trial.set_user_attr("run_dir", f"trials/{trial.number}")
        if (trial.params["x"], trial.params["seed"]) == (1, 1):
            small.tell(trial, state=optuna.trial.TrialState.FAIL)
        else:
            small.tell(trial, 10.0 * trial.params["x"] + trial.params["seed"])
    done = {(t.params["x"], t.params["seed"]): t for t in small.trials if t.state.name == "COMPLETE"}
    assert len(done) == 5

    # A categorical parameter cannot gain choices in one study, on any storage: hence a new one.
    big = optuna.create_study(study_name="big", storage=f"sqlite:///{tmp_path / 'big.db'}")
    copied = copy_completed(big, small, grid([0, 1, 2]), values=lambda t: [t.values[0] + 0.5])
    # Completed and in the new grid: not the failed cell (1, 1), not x=3.
    assert sorted((t.params["x"], t.params["seed"]) for t in copied) == [(0, 0), (0, 1), (1, 0)]
    for t in big.trials:
        origin = done[(t.params["x"], t.params["seed"])]
        assert t.state.name == "COMPLETE" and t.values == [origin.values[0] + 0.5]
        assert t.user_attrs[REUSED_FROM] == f"small#{origin.number}"
        assert t.user_attrs["run_dir"] == f"../small/trials/{origin.number}"
        assert (t.datetime_start, t.datetime_complete) == (origin.datetime_start, origin.datetime_complete)
        assert t.distributions["x"] == CategoricalDistribution([0, 1, 2])
    # Only the cells without a completed trial are queued; copying again adds nothing.
    assert queue_cells(big, grid([0, 1, 2])) == 3
    assert {(t.params["x"], t.params["seed"]) for t in big.trials if t.state.name == "WAITING"} == {
        (1, 1),
        (2, 0),
        (2, 1),
    }
    assert copy_completed(big, small, grid([0, 1, 2])) == []
    # A cell whose trials all failed in the target takes the lender's completed trial as its retry:
    # the failure no longer stands, and the cell is not queued again.
    mended = optuna.create_study(study_name="mended", storage=journal_storage(tmp_path / "mended.log"))
    queue_cells(mended, grid([0, 1, 2]))
    mended.tell(mended.ask(), state=optuna.trial.TrialState.FAIL)  # the first queued cell: (0, 0)
    # The cells still waiting in its queue keep their place: only the failed one is copied.
    assert [(t.params["x"], t.params["seed"]) for t in copy_completed(mended, small, grid([0, 1, 2]))] == [(0, 0)]
    (retry,) = [t for t in mended.trials if REUSED_FROM in t.user_attrs]
    assert retry.user_attrs[REUSED_FROM] == f"small#{done[(0, 0)].number}" and retry.system_attrs["failed_trial"] == 0
    assert queue_cells(mended, grid([0, 1, 2]), retry_failed=True) == 0
    with pytest.raises(ValueError, match="needs the grid's distributions"):
        copy_completed(big, small, Grid([{"x": 0, "seed": 0}]))
    # Why a new study: Optuna refuses new choices for a categorical parameter a study has recorded.
    with pytest.raises(ValueError, match="dynamic value space"):
        small.ask({"x": CategoricalDistribution([0, 1, 2])})


def test_a_trial_copied_by_two_processes_at_once_counts_once(tmp_path, monkeypatch):
    """Two processes growing one study from the same lender at once each copy its completed trials
    (both read the study before either wrote): the study holds two copies of each, and every reader
    counts the first only: the cells standing, the queue, the trials table and the runs it chooses from."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    from unlearn_pl.tuning.choice import completed_runs
    from unlearn_pl.tuning.engine import Grid, copy_completed, queue_cells, repeated_copies
    from unlearn_pl.tuning.engine import reuse as reuse_module
    from unlearn_pl.tuning.engine.queue import live_count, standing_cells
    from unlearn_pl.tuning.space import expand_space
    from unlearn_pl.tuning.trial_table import trial_rows

    candidates = {c.name: c for c in expand_space({"m": [{"name": "x"}]}, {"model.lr": [0.1, 0.2]})}
    names = list(candidates)
    dist = {"candidate": CategoricalDistribution(names), "seed": IntDistribution(0, 9)}
    grid = Grid([{"candidate": n, "seed": s} for n in names for s in (0, 1)], dist)
    lender = optuna.create_study(study_name="lender", storage=journal_storage(tmp_path / "lender.log"))
    queue_cells(lender, Grid([{"candidate": names[0], "seed": s} for s in (0, 1)], dist))
    for _ in range(2):
        trial = lender.ask()
        trial.set_user_attr("metrics", {"val_acc": 0.9, "forget_acc": 0.5})
        trial.set_user_attr("goals", {"privacy": 0.8})
        lender.tell(trial, 1.0)
    grown = optuna.create_study(study_name="grown", storage=journal_storage(tmp_path / "grown.log"))
    copy_completed(grown, lender, grid)
    # The second process read the study before the first process's copies were written.
    monkeypatch.setattr(reuse_module, "standing_cells", lambda study: {})
    assert len(copy_completed(grown, lender, grid)) == 2
    monkeypatch.undo()

    assert len(grown.trials) == 4 and repeated_copies(grown.trials) == {2, 3}
    assert sorted(len(held) for held in standing_cells(grown).values()) == [1, 1] and live_count(grown) == 2
    assert queue_cells(grown, grid) == 2  # the two cells of lr 0.2, each once
    rows = trial_rows(grown, candidates, "privacy", [0.5])
    assert [(r["trial"], r["state"]) for r in rows] == [
        (0, "COMPLETE"),
        (1, "COMPLETE"),
        (4, "WAITING"),
        (5, "WAITING"),
    ]
    runs = completed_runs(grown, candidates)
    assert {seed: len(done) for per_seed in runs.values() for seed, done in per_seed.items()} == {0: 1, 1: 1}


def test_a_diverged_trial_is_marked_and_a_grown_grid_keeps_it_instead_of_running_it_again(tmp_path):
    """A trial whose network diverged fails with ``diverged`` set, also when the run exited on it
    (the CLI's one-line exit, raised while handling the error); a grid grown from its study copies
    that outcome (FAIL, ``diverged``) and does not queue the cell again. A plain failure is not copied."""
    from optuna.distributions import CategoricalDistribution, IntDistribution

    from unlearn_pl.cli.errors import CLIExit
    from unlearn_pl.tuning.engine import DIVERGED, REUSED_FROM, Grid, copy_completed, queue_cells
    from unlearn_pl.tuning.engine.signals import interruptible
    from unlearn_pl.tuning.engine.worker import RecordedObjective, TrialFailed
    from unlearn_pl.utils.errors import DivergenceError

    def exit_with_error(message: str) -> None:  # the CLI's exit after printing a one-line error
        raise CLIExit(message)

    def objective(trial: optuna.Trial) -> float:
        x = trial.suggest_categorical("x", [0, 1, 2])
        trial.suggest_int("seed", 0, 9)
        if x == 1:  # as the CLI does: the error becomes a one-line exit raised while handling it
            try:
                raise DivergenceError("the network after unlearning has NaN or infinite weights")
            except ValueError as e:
                exit_with_error(f"DivergenceError: {e}")
        if x == 2:
            raise ValueError("a bad value")
        return 1.0

    d = {"x": CategoricalDistribution([0, 1, 2]), "seed": IntDistribution(0, 9)}
    lender = optuna.create_study(study_name="lender", storage=journal_storage(tmp_path / "lender.log"))
    queue_cells(lender, Grid([{"x": x, "seed": 0} for x in (0, 1, 2)], d))
    recorded = RecordedObjective(objective)
    with interruptible():  # as a worker runs trials: no stop requested (an earlier test's Ctrl-C cleared)
        for _ in range(3):
            trial = lender.ask()
            try:
                lender.tell(trial, recorded(trial))
            except TrialFailed:
                lender.tell(trial, state=optuna.trial.TrialState.FAIL)
    states = {t.params["x"]: (t.state.name, t.user_attrs.get(DIVERGED)) for t in lender.trials}
    assert states == {0: ("COMPLETE", None), 1: ("FAIL", True), 2: ("FAIL", None)}

    grown_grid = Grid([{"x": x, "seed": s} for x in (0, 1, 2) for s in (0, 1)], d)
    grown = optuna.create_study(study_name="grown", storage=journal_storage(tmp_path / "grown.log"))
    assert sorted(t.params["x"] for t in copy_completed(grown, lender, grown_grid)) == [0, 1]
    (copy,) = [t for t in grown.trials if t.params["x"] == 1]
    assert copy.state.name == "FAIL" and copy.values is None and copy.user_attrs[DIVERGED]
    assert copy.user_attrs[REUSED_FROM] == "lender#1" and "NaN or infinite" in copy.user_attrs["error"]
    # Queued: every seed-1 cell, and the plain failure's cell (2, 0); not the diverged one.
    assert queue_cells(grown, grown_grid) == 4
    waiting = {(t.params["x"], t.params["seed"]) for t in grown.trials if t.state.name == "WAITING"}
    assert waiting == {(0, 1), (1, 1), (2, 0), (2, 1)}

"""Studies on digits that meet failures: failing cells recorded while the study goes on, exit codes,
bad values refused before the first trial, seeds added on resume, trial folders of an older
study, interrupts and a full disk from the command line."""

from __future__ import annotations

import copy
import errno
import sys
from pathlib import Path

import optuna
import pytest
import yaml

from unlearn_pl.cli import UnlearningCLI, run_cli
from unlearn_pl.tuning import check_seed_choices, run_study
from unlearn_pl.tuning.engine import journal_storage
from unlearn_pl.tuning.study import claim_run_dir

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from _study_toys import STUDY

LR = "model.init_args.unlearner.init_args.lr"


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """LightningCLI(args=...) warns when sys.argv also holds arguments (here: pytest's)."""
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])


def _study_file(tmp_path: Path, **settings) -> Path:
    config = {**copy.deepcopy(STUDY), "noise_floor": False, "output_dir": str(tmp_path / "out"), **settings}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _tune(path: Path, *args: str) -> int:
    """``unlearn-pl tune --config PATH ARGS`` in this process; its exit status."""
    try:
        UnlearningCLI(args=["tune", "--config", str(path), "--study_name", "s", *args])
    except SystemExit as e:
        return int(e.code)
    return 0


def _base(tmp_path: Path) -> list[str]:
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    return ["--config", str(path)]


# ----------------------------------------------------------------------------- failing cells
@pytest.mark.slow  # 5 trials of a tiny MLP, run twice, and 2 more: ~35 s
def test_failing_cells_are_recorded_and_the_study_goes_on(tmp_path, capsys):
    # A point whose one cell diverges (the NaN check raises), a point with a diverging and a good
    # learning rate, a cell the CLI refuses at setup (it exits: a forget set larger than the data)
    # and a good cell.
    space = {
        "cell": [
            {"name": "diverging", "set": {LR: 1.0e6}},
            {"name": "mixed", "grid": {LR: [1.0e6, 0.01]}},
            {"name": "good", "set": {LR: 0.01}},
            {"name": "too_big", "set": {"data.init_args.forget.init_args.size": 100000}},
        ]
    }
    path = _study_file(tmp_path, space=space, seeds=[0])
    assert _tune(path) == 1
    err = capsys.readouterr().err.strip().splitlines()
    # A diverged cell ran to its outcome: named in a note, an error only where nothing else can be chosen.
    note, error = err[-2], err[-1]
    assert note.startswith("note: 2 cell(s) of study 's' diverged (NaN or infinite weights) and are not choosable: ")
    assert "cell=diverging seed 0" in note and "cell=mixed/lr=1000000.0 seed 0" in note
    assert (
        error.startswith("error: 2 cell(s) of study 's' have no completed trial: ") and "--retry_failed true" in error
    )
    assert "cell=too_big seed 0: FAIL (" in error and "cell=diverging seed 0: every cell diverged" in error
    assert "mixed" not in error
    folder = tmp_path / "out" / "s"
    trials = {r["candidate"]: r for r in _rows(folder / "trials.csv")}
    assert {k: r["state"] for k, r in trials.items()} == {
        "cell=diverging": "FAIL",
        "cell=mixed/lr=1000000.0": "FAIL",
        "cell=mixed/lr=0.01": "COMPLETE",
        "cell=good": "COMPLETE",
        "cell=too_big": "FAIL",
    }
    assert (
        trials["cell=diverging"]["error"].startswith("DivergenceError: ")
        and "NaN or infinite" in trials["cell=diverging"]["error"]
    )
    assert {k for k, r in trials.items() if r["diverged"] == "True"} == {"cell=diverging", "cell=mixed/lr=1000000.0"}
    assert "100000" in trials["cell=too_big"]["error"]
    selection = {r["cell"]: r for r in _rows(folder / "selection.csv")}
    assert selection["good"]["n"] == "1" and selection["good"]["missing"] == selection["good"]["diverged"] == ""
    assert selection["mixed"]["n"] == "1" and selection["mixed"]["missing"] == ""
    assert selection["mixed"]["diverged"] == "lr=1000000.0 seed 0" and selection["mixed"]["chosen"].endswith("lr=0.01")
    assert selection["diverging"]["n"] == "0" and selection["diverging"]["diverged"] == "cell=diverging seed 0"
    assert selection["too_big"]["missing"].startswith("cell=too_big seed 0: FAIL")
    # A second run changes nothing: the failures stand until asked to run again.
    before = {name: (folder / name).read_text() for name in ("trials.csv", "selection.csv")}
    assert _tune(path) == 1
    assert {name: (folder / name).read_text() for name in before} == before
    # A study whose every point has a choice succeeds, and names the cell that diverged.
    capsys.readouterr()
    mixed = _study_file(tmp_path, space={"cell": [space["cell"][1]]}, seeds=[0], output_dir=str(tmp_path / "mixed"))
    assert _tune(mixed) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("note: 1 cell(s) of study 's' diverged"), err
    assert not [e for e in err if "have no completed trial" in e], err


def _rows(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


# ----------------------------------------------------------------------------- bad values refused up front
@pytest.mark.parametrize(
    "settings, message",
    [
        ({"grid": {LR: ["abc", 0.01]}}, f"{LR}: 'abc' (candidate 'base/lr=abc') is refused: model > unlearner > lr"),
        ({"seeds": [-1]}, "seeds must be integers in [0, 2**32)"),
        ({"seeds": [2**32]}, "seeds must be integers in [0, 2**32)"),
        ({"grid": {"seed_everything": [5, 6]}}, "the study's space or grid sets seed_everything"),
        ({"space": {"s": {"key": "data.init_args.seed", "values": [5, 6]}}}, "sets data.init_args.seed"),
        ({"goal": "privacy_mia"}, "goal privacy_mia needs the loss attack against validation data"),
        ({"goal": "privacy_mia", "score_on": "test"}, "so it cannot be scored on test data too: give score_on val"),
        (
            {"margin": {"test_acc": 0}},
            "margin['test_acc'] must be a positive finite number in the metric's units; got 0",
        ),
    ],
    ids=[
        "grid-value",
        "negative-seed",
        "seed-too-large",
        "grid-seed-key",
        "axis-seed-key",
        "goal-without-metric",
        "goal-not-on-test",
        "zero-margin",
    ],
)
def test_bad_study_values_are_refused_before_the_first_trial(tmp_path, capsys, settings, message):
    path = _study_file(tmp_path, **settings)
    assert _tune(path) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out" / "s" / "trials").exists()
    if (tmp_path / "out" / "s" / "study.log").exists():  # nothing recorded that a corrected study would trip on
        assert not optuna.load_study(
            study_name="s", storage=journal_storage(tmp_path / "out" / "s" / "study.log")
        ).trials


def test_an_output_dir_that_is_a_file_is_one_line(tmp_path, capsys):
    (tmp_path / "taken").write_text("")
    assert _tune(_study_file(tmp_path, output_dir=str(tmp_path / "taken"))) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "output_dir" in err[0] and "a file is in its way" in err[0]


# ----------------------------------------------------------------------------- seeds on resume
@pytest.mark.slow  # 1 + 1 trials of a tiny MLP: ~15 s
def test_adding_seeds_on_resume_runs_the_new_seeds(tmp_path):
    kwargs = dict(noise_floor=False, quiet=True, output_dir=tmp_path)
    one = run_study(_base(tmp_path), runner=run_cli, seeds=[0], **kwargs)
    two = run_study(_base(tmp_path), runner=run_cli, seeds=[0, 1], **kwargs)
    assert [(r["seed"], r["state"]) for r in two.trials] == [(0, "COMPLETE"), (1, "COMPLETE")]
    assert two.trials[0]["val_acc"] == one.trials[0]["val_acc"]  # seed 0 did not run again
    assert all(r["n"] == 2 and r["n_per_cell"] == "base: 2" and r["missing"] == "" for r in two.selection)
    assert not two.incomplete


def test_a_study_with_fixed_seed_choices_refuses_new_seeds_naming_them(tmp_path):
    # An open search (or a study begun before seeds could be added) drew seeds from a categorical.
    study = optuna.create_study(directions=["maximize"] * 2)
    study.add_trial(
        optuna.trial.create_trial(
            params={"seed": 0},
            distributions={"seed": optuna.distributions.CategoricalDistribution([0, 1])},
            values=[0.5, 0.5],
        )
    )
    assert check_seed_choices(study, [1, 0], "grid") == [0, 1]
    with pytest.raises(ValueError, match=r"seeds \[0, 1, 2\] cannot be run .* fixed list \[0, 1\]"):
        check_seed_choices(study, [0, 1, 2], "grid")


# ----------------------------------------------------------------------------- trial folders
def test_trial_folders_never_reuse_an_older_studys_folder(tmp_path):
    # An emptied or replaced journal numbers its trials from 0 again.
    (tmp_path / "trials" / "0").mkdir(parents=True)
    (tmp_path / "trials" / "0" / "config.yaml").write_text("an older study's trial")
    assert claim_run_dir(tmp_path / "trials", 0) == "0.1"
    assert claim_run_dir(tmp_path / "trials", 0) == "0.2"
    assert claim_run_dir(tmp_path / "trials", 1) == "1"
    assert (tmp_path / "trials" / "0" / "config.yaml").read_text() == "an older study's trial"


# ----------------------------------------------------------------------------- stops from the command line
@pytest.mark.slow  # one trial of a tiny MLP: ~10 s
def test_a_full_disk_is_one_line_and_keeps_the_completed_trials(tmp_path, capsys, monkeypatch):
    path = _study_file(tmp_path, grid={LR: [0.01, 0.05]}, seeds=[0])
    tell = optuna.Study.tell
    told = []

    def disk_fills(self, trial, *args, **kwargs):
        if told:
            raise OSError(errno.ENOSPC, "No space left on device", str(tmp_path / "out" / "s" / "study.log"))
        told.append(trial)
        return tell(self, trial, *args, **kwargs)

    monkeypatch.setattr(optuna.Study, "tell", disk_fills)
    assert _tune(path) == 1
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert (
        err.startswith("error: the study could not be saved (No space left on device: ")
        and "run the same command" in err
    )
    assert [r["state"] for r in _rows(tmp_path / "out" / "s" / "trials.csv")][:1] == ["COMPLETE"]


def _tune_with_two_running_trials(tmp_path: Path):
    """``unlearn-pl tune --workers 2`` in a subprocess, once both workers run a trial (200 epochs:
    long enough to be stopped in it); the process and the workers' pids."""
    import os
    import subprocess
    import time

    from conftest import REPO

    path = _study_file(tmp_path, grid={LR: [0.01, 0.05]}, seeds=[0], trainer={**STUDY["trainer"], "max_epochs": 200})
    proc = subprocess.Popen(
        [sys.executable, "-m", "unlearn_pl", "tune", "--config", str(path), "--study_name", "s", "--workers", "2"],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = tmp_path / "out" / "s" / "study.log"

    def running() -> list[int]:
        try:
            study = optuna.load_study(study_name="s", storage=journal_storage(log))
        except (KeyError, ValueError):
            return []
        return [
            t.user_attrs["pid"]
            for t in study.get_trials(states=(optuna.trial.TrialState.RUNNING,))
            if "pid" in t.user_attrs
        ]

    deadline = time.monotonic() + 300
    while (not log.is_file() or len(running()) < 2) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, proc.communicate()[1][-3000:]
    return proc, running()


@pytest.mark.slow  # `unlearn-pl tune` with 2 workers in a subprocess, stopped mid-trial: ~25 s
def test_ctrl_c_on_the_command_stops_it_in_one_line_and_writes_the_tables(tmp_path):
    import signal

    proc, _ = _tune_with_two_running_trials(tmp_path)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130 and "Traceback" not in err, err[-3000:]
    assert err.strip().splitlines()[-1] == "interrupted; run the same command again to resume"
    rows = _rows(tmp_path / "out" / "s" / "trials.csv")
    assert [r["state"] for r in rows] == ["FAIL", "FAIL"] and all(r["error"].startswith("interrupted") for r in rows)


@pytest.mark.slow  # `unlearn-pl tune` with 2 workers in a subprocess, one killed: ~30 s
def test_a_killed_worker_is_named_and_the_finished_trials_tables_are_written(tmp_path):
    import os
    import signal

    proc, workers = _tune_with_two_running_trials(tmp_path)
    os.kill(workers[0], signal.SIGKILL)
    _, err = proc.communicate(timeout=600)
    assert proc.returncode == 1 and "Traceback" not in err, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("error: worker ") and f"(pid {workers[0]}) was killed by SIGKILL" in last
    assert last.endswith("run the same command again to resume")
    rows = {r["state"]: r for r in _rows(tmp_path / "out" / "s" / "trials.csv")}
    # The killed trial is failed, and queued once more for the next run.
    assert set(rows) == {"COMPLETE", "FAIL", "WAITING"} and rows["FAIL"]["error"].startswith("interrupted")
    assert rows["WAITING"]["retry_of"] == rows["FAIL"]["trial"]

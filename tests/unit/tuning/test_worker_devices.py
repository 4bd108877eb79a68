"""Each study worker's GPUs and threads (:mod:`unlearn_pl.tuning.engine.devices`): the assignment
table, the refusal, ``--workers auto``, and real worker processes on a CPU with GPUs faked."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import optuna
import pytest
from jsonargparse import ArgumentParser

from unlearn_pl.tuning.engine import devices, journal_storage, run_trials
from unlearn_pl.tuning.engine.devices import (
    gpus_asked,
    plan_workers,
    resolve_workers,
    split_devices,
    thread_count,
    trial_gpus,
    visible_gpus,
)
from unlearn_pl.utils.arguments import WorkerCount

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # spawned workers unpickle the toys by module name
from _study_toys import DeviceRecorder

optuna.logging.set_verbosity(optuna.logging.ERROR)


@pytest.fixture
def fake_gpus(monkeypatch):
    """``fake_gpus(G, mask=None, cores=4)``: this process sees G GPUs (under ``CUDA_VISIBLE_DEVICES=mask``) and ``cores`` cores."""

    def fake(count: int, mask: str | None = None, cores: int = 4) -> None:
        monkeypatch.setattr(devices, "gpu_count", lambda: count)
        monkeypatch.setattr(devices, "available_cores", lambda: cores)
        if mask is None:
            monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
        else:
            monkeypatch.setenv("CUDA_VISIBLE_DEVICES", mask)
        monkeypatch.delenv("OMP_NUM_THREADS", raising=False)

    return fake


@pytest.mark.parametrize(
    "workers,gpus,expected",
    [
        (4, ["0", "1"], [("0",), ("1",), ("0",), ("1",)]),  # round-robin: more workers than GPUs
        (3, ["0", "1"], [("0",), ("1",), ("0",)]),
        (2, ["0", "1"], [("0",), ("1",)]),
        (2, ["0", "1", "2", "3"], [("0", "1"), ("2", "3")]),  # disjoint sets
        (2, ["0", "1", "2"], [("0", "1"), ("2",)]),  # as even as they go
        (3, list("01234567"), [("0", "1", "2"), ("3", "4", "5"), ("6", "7")]),
        (1, ["0", "1"], [("0", "1")]),
        (2, [], [(), ()]),  # no GPUs: nothing assigned
    ],
)
def test_split_devices(workers, gpus, expected):
    assert split_devices(workers, gpus) == expected


def test_the_parents_mask_is_what_the_workers_share(fake_gpus):
    fake_gpus(2, mask="4, 6")
    assert visible_gpus() == ["4", "6"]
    assert [r.gpus for r in plan_workers(4, gpus_per_trial=1)] == [("4",), ("6",), ("4",), ("6",)]
    assert plan_workers(2, gpus_per_trial=1)[1].environment() == {"CUDA_VISIBLE_DEVICES": "6", "OMP_NUM_THREADS": "2"}
    fake_gpus(1, mask="GPU-aaa,GPU-bbb")  # only one of the listed ids exists: the first, as CUDA counts them
    assert visible_gpus() == ["GPU-aaa"]
    fake_gpus(3)
    assert visible_gpus() == ["0", "1", "2"]


def test_cpu_trials_get_threads_and_no_gpus(fake_gpus):
    fake_gpus(2, cores=5)
    plan = plan_workers(2, gpus_per_trial=0)
    assert [r.gpus for r in plan] == [(), ()] and {r.threads for r in plan} == {2}
    assert plan[0].environment() == {"OMP_NUM_THREADS": "2"}


def test_threads_share_the_cores_unless_omp_num_threads_is_set(fake_gpus, monkeypatch):
    fake_gpus(0, cores=16)
    assert thread_count(4) == 4 and thread_count(3) == 5 and thread_count(32) == 1
    monkeypatch.setenv("OMP_NUM_THREADS", "3")
    assert thread_count(4) == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "many")
    with pytest.raises(ValueError, match="OMP_NUM_THREADS must be a positive integer .*got 'many'"):
        thread_count(2)


def test_a_trial_asking_for_more_gpus_than_a_worker_owns_is_refused(fake_gpus, tmp_path):
    fake_gpus(4)
    assert [len(r.gpus) for r in plan_workers(2, gpus_per_trial=2)] == [2, 2]
    with pytest.raises(
        ValueError,
        match=r"a trial asks for 2 GPUs .* each of 4 workers on the 4 visible GPUs \(0,1,2,3\) "
        r"owns 1; allowed: at most 1 per trial, or at most 2 workers",
    ):
        plan_workers(4, gpus_per_trial=2)
    with pytest.raises(ValueError, match="asks for 3 GPUs .* each of 2 workers .* owns 2"):
        plan_workers(2, gpus_per_trial=3)
    with pytest.raises(ValueError, match="asks for 5 GPUs .* owns 4; allowed: at most 4 per trial, or more GPUs"):
        plan_workers(1, gpus_per_trial=5)
    # Refused before the study is touched.
    storage = tmp_path / "s.log"
    with pytest.raises(ValueError, match="asks for 2 GPUs"):
        run_trials(
            DeviceRecorder(str(tmp_path)),
            study_name="t",
            storage=storage,
            sampler=optuna.samplers.GridSampler({"x": [0, 1]}),
            workers=4,
            gpus_per_trial=2,
        )
    assert not storage.exists() or not optuna.get_all_study_names(journal_storage(storage))


@pytest.mark.parametrize(
    "accelerator,requested,gpus",
    [
        ("gpu", 1, 1),
        ("cuda", 2, 2),
        ("gpu", [1], 2),
        ("gpu", "0,1", 2),
        ("gpu", "3", 3),
        ("gpu", "auto", 1),
        ("gpu", -1, 1),
        ("cpu", 4, 0),
        ("mps", 1, 0),
    ],
)
def test_gpus_asked(accelerator, requested, gpus):
    assert gpus_asked(accelerator, requested) == gpus


def test_auto_accelerator_trains_on_gpus_when_some_are_visible(fake_gpus):
    fake_gpus(0)
    assert gpus_asked("auto", "auto") == 0
    fake_gpus(2)
    assert gpus_asked("auto", "auto") == 1
    assert trial_gpus(("cpu", 1), ("auto", 2)) == 2 and trial_gpus() == 0


def test_auto_workers_is_one_per_gpu_else_one_per_core(fake_gpus):
    fake_gpus(4, cores=16)
    assert resolve_workers("auto", gpus_per_trial=1) == 4
    assert resolve_workers("auto", gpus_per_trial=2) == 2
    assert resolve_workers("auto", gpus_per_trial=0) == 16  # CPU trials
    fake_gpus(0, cores=3)
    assert resolve_workers("auto", gpus_per_trial=1) == 3
    assert resolve_workers(5) == 5
    for bad in (0, "x", True, 1.5):
        with pytest.raises(ValueError, match="workers must be an integer >= 1 or 'auto'"):
            resolve_workers(bad)


def test_the_worker_count_type_takes_a_positive_int_or_auto():
    parser = ArgumentParser(exit_on_error=False)
    parser.add_argument("--workers", type=WorkerCount, default=1)
    assert parser.parse_args(["--workers", "auto"]).workers == "auto"
    assert parser.parse_args(["--workers", "3"]).workers == 3
    for bad in ("0", "-2", "two", "1.5"):
        with pytest.raises(Exception, match=f"workers must be a positive int or 'auto'; got '{bad}'"):
            parser.parse_args(["--workers", bad])


@pytest.mark.slow  # two worker processes from the forkserver: ~20 s on a busy machine
def test_each_worker_process_runs_on_its_own_gpu_with_its_share_of_threads(fake_gpus, tmp_path):
    fake_gpus(2, mask="3,5", cores=4)
    folder = tmp_path / "pids"
    folder.mkdir()
    study = run_trials(
        DeviceRecorder(str(folder)),
        study_name="t",
        storage=journal_storage(tmp_path / "s.log"),
        sampler=optuna.samplers.GridSampler({"x": [0, 1]}),
        workers=2,
        gpus_per_trial=1,
    )
    trials = study.trials
    assert [t.state for t in trials] == [optuna.trial.TrialState.COMPLETE] * 2
    seen = {t.user_attrs["pid"]: t.user_attrs["cuda_visible_devices"] for t in trials}
    assert len(seen) == 2 and sorted(seen.values()) == ["3", "5"]  # two processes, one GPU each, from the mask
    assert {(t.user_attrs["torch_threads"], t.user_attrs["omp_num_threads"]) for t in trials} == {(2, "2")}


@pytest.mark.parametrize("subcommand", ["tune", "ulira", "audit"])
def test_the_subcommands_take_workers_auto_and_refuse_other_words(tmp_path, capsys, subcommand):
    from conftest import write_config

    from unlearn_pl.cli import UnlearningCLI

    config = str(write_config(tmp_path))
    with pytest.raises(SystemExit) as printed:
        UnlearningCLI(args=[subcommand, "--config", config, "--workers", "auto", "--print_config"])
    assert printed.value.code in (0, None) and "\nworkers: auto\n" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        UnlearningCLI(args=[subcommand, "--config", config, "--workers", "two"])
    assert "workers must be a positive int or 'auto'; got 'two'" in capsys.readouterr().err


def test_a_worker_without_gpus_sees_the_starting_processs_mask(monkeypatch):
    """A forkserver keeps the environment of the study that started it; a later CPU study's worker
    must not inherit that study's GPU mask."""
    from unlearn_pl.tuning.engine.devices import WorkerResources
    from unlearn_pl.tuning.engine.processes import worker_environment

    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3")  # left by an earlier GPU study's worker start
    monkeypatch.setenv("OMP_NUM_THREADS", os.environ.get("OMP_NUM_THREADS", "1"))  # restored afterwards
    worker_environment(WorkerResources(gpus=(), threads=2), parent_gpu_mask=None)
    assert "CUDA_VISIBLE_DEVICES" not in os.environ
    worker_environment(WorkerResources(gpus=(), threads=2), parent_gpu_mask="0,1")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "0,1"
    worker_environment(WorkerResources(gpus=("5",), threads=1), parent_gpu_mask="0,1")
    assert os.environ["CUDA_VISIBLE_DEVICES"] == "5"
    assert os.environ["OMP_NUM_THREADS"] == "1"


def test_a_trainer_asking_for_no_devices_is_not_read_as_auto():
    from unlearn_pl.cli.workers import config_gpus

    assert config_gpus({"trainer": {"accelerator": "gpu", "devices": 0}}, model=None) == 0
    assert config_gpus({"trainer": {"accelerator": "cpu"}}, model=None) == 0

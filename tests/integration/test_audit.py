"""``unlearn-pl audit`` end to end on tiny digits settings: the report, resuming, more seeds,
failed trials, refusals, and how a method file composes.

The setting is the shipped ``configs/audit/digits.yaml`` shrunk: a small MLP, 200 training
examples (30 forget), a 5-epoch reference recipe and 1 epoch of unlearning.
"""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import REPO

from unlearn_pl.audit import AuditStore
from unlearn_pl.cli import UnlearningCLI
from unlearn_pl.cli.audit import build_run, class_resets

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the toy selector's module, by name


CONFIG = REPO / "configs" / "audit" / "digits.yaml"
TINY = [
    "--model.init_args.network",
    "unlearn_pl.models.MLP",
    "--model.init_args.network.hidden",
    "[32]",
    "--data.init_args.train_size",
    "200",
    "--data.init_args.forget.init_args.size",
    "30",
    "--model.init_args.references.init_args.recipe.epochs",
    "5",
    "--trainer.max_epochs",
    "1",
    "--n_resamples",
    "20",
    "--retain_sample",
    "50",
]
RETRAIN = REPO / "configs" / "methods" / "retrain.yaml"


def audit(folder: Path, *extra: str) -> None:
    UnlearningCLI(args=["audit", "--config", str(CONFIG), *TINY, "--folder", str(folder), *extra])


def read_csv(path: Path) -> list[dict[str, str]]:
    with open(path) as f:
        return list(csv.DictReader(f))


@pytest.fixture(autouse=True)
def _no_foreign_argv(monkeypatch):
    monkeypatch.setattr("sys.argv", ["unlearn-pl"])


def test_audit_reports_every_method_and_resumes(tmp_path, capsys):
    folder = tmp_path / "audit"
    audit(folder, "--seeds", "3", "--methods", f"[{RETRAIN}]")
    printed = capsys.readouterr().out
    assert f"results: {folder}" in printed
    assert all(name in printed for name in ("original", "Full-Finetune", "Full-Retrain"))

    rows = {r["method"]: r for r in read_csv(folder / "audit.csv")}
    assert list(rows) == ["original", "Full-Finetune", "Full-Retrain"]
    for row in rows.values():
        assert row["n"] == "3"
        for name in [
            "forget_quality",
            "score",
            "retain_ratio",
            "test_ratio",
            *(f"klom_{s}_{q}" for s in ("forget", "retain", "val") for q in ("median", "q1", "q3", "p95")),
        ]:
            value, low, high = (float(row[c]) for c in (name, f"{name}_ci_low", f"{name}_ci_high"))
            assert np.isfinite([value, low, high]).all() and low <= high
        assert 0.0 <= float(row["forget_quality"]) <= 1.0
        # The final score is F times both accuracy ratios (unlearned over oracle).
        ratio = float(row["retain_ratio"]) * float(row["test_ratio"])
        assert float(row["score"]) == pytest.approx(float(row["forget_quality"]) * ratio)
        assert float(row["retain_ratio"]) == pytest.approx(
            float(row["unlearned_retain_acc"]) / float(row["oracle_retain_acc"])
        )
    histogram = read_csv(folder / "epsilon_histogram.csv")
    for method in rows:
        counts = [int(r["count"]) for r in histogram if r["method"] == method]
        assert sum(counts) == 30 - int(rows[method]["epsilon_undefined"])
    per_example = read_csv(folder / "per_example.csv")
    assert {(r["method"], r["split"]) for r in per_example} == {
        (m, s) for m in rows for s in ("forget", "retain", "val")
    }
    assert sum(r["split"] == "retain" for r in per_example) == 3 * 50  # the retain sample
    results = json.loads((folder / "audit_results.json").read_text(), parse_constant=pytest.fail)  # strict JSON
    assert "bootstrap" in results["interval"] and results["seeds"] == [0, 1, 2]
    assert (folder / "klom.png").stat().st_size > 0 and (folder / "epsilon_histogram.png").stat().st_size > 0

    # One unlearned record per method and seed; the references' once per seed, shared by the methods.
    outputs = sorted((folder / "outputs").rglob("*.pt"))
    assert len(outputs) == 6 and len(list((folder / "reference_outputs").glob("results-*.pt"))) == 3
    entry = AuditStore(folder).load("Full-Retrain", 1)
    assert entry["outputs"]["logits"]["forget"].shape == (30, 10)
    assert set(entry["seconds"]) == {"references", "unlearning", "recording"}

    # The same command again: nothing runs again, the report is the same.
    stamps = {p: p.stat().st_mtime_ns for p in outputs}
    audit(folder, "--seeds", "3", "--methods", f"[{RETRAIN}]")
    assert {p: p.stat().st_mtime_ns for p in outputs} == stamps
    assert {r["method"]: r for r in read_csv(folder / "audit.csv")} == rows

    # More seeds: only the new seed's trials run, in the same folder.
    audit(folder, "--seeds", "4", "--methods", f"[{RETRAIN}]")
    assert {p: p.stat().st_mtime_ns for p in outputs} == stamps
    assert len(list((folder / "outputs").rglob("*.pt"))) == 8
    assert {r["n"] for r in read_csv(folder / "audit.csv")} == {"4"}


def test_failed_trials_exit_with_one_line_and_are_retried(tmp_path, capsys, monkeypatch):
    import unlearn_pl.audit.trial as trial_module

    record_run = trial_module.record_run

    def fail_on_seed_1(run, plan, store, root):
        if run.module.references.recipe.seed == 1:
            raise RuntimeError("the disk is full")
        return record_run(run, plan, store, root)

    monkeypatch.setattr(trial_module, "record_run", fail_on_seed_1)
    folder = tmp_path / "audit"
    with pytest.raises(SystemExit) as exit_info:
        audit(folder, "--seeds", "2", "--methods", "[]")
    assert exit_info.value.code == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(
        "error: 1 of 2 audit trials failed (e.g. Full-Finetune seed 1: RuntimeError: the disk is full)"
    )
    assert not (folder / "audit.csv").exists()  # no report from some of the models

    monkeypatch.setattr(trial_module, "record_run", record_run)
    audit(folder, "--seeds", "2", "--methods", "[]")  # the failed trial is run again
    assert [r["n"] for r in read_csv(folder / "audit.csv")] == ["2", "2"]


def test_a_seed_that_changes_the_forget_set_is_refused_by_name(tmp_path, capsys):
    for extra, key in [
        (["--seed_keys", "[seed_everything, data.init_args.seed]"], "data.init_args.seed"),
        (["--data.init_args.forget", "_audit_toys.GlobalRandomForget"], "seed_everything"),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            audit(tmp_path / "audit", "--seeds", "2", "--methods", "[]", *extra)
        assert exit_info.value.code == 2
        line = capsys.readouterr().err.strip().splitlines()[-1]
        assert f"the forget set changes with the seed: {key} = 0 and = 1" in line
        assert not (tmp_path / "audit").exists()  # refused before anything ran


def test_a_method_file_naming_another_class_starts_that_part_afresh(tmp_path):
    base = build_run(UnlearningCLI, ["--config", str(REPO / "configs" / "ulira" / "digits.yaml")])
    assert class_resets(str(RETRAIN), base.config) == ["--model.init_args.unlearner=null"]
    tweak = tmp_path / "slower.yaml"
    tweak.write_text("model:\n  init_args:\n    unlearner:\n      init_args:\n        lr: 0.001\n")
    assert class_resets(str(tweak), base.config) == []  # the same class: its settings compose
    base_file = tmp_path / "base.yaml"
    base_file.write_text(base.config)
    retrain = build_run(
        UnlearningCLI, ["--config", str(base_file), *class_resets(str(RETRAIN), base.config), "--config", str(RETRAIN)]
    ).module.unlearner
    assert retrain.lr is None and retrain.momentum is None  # the recipe's, not Finetune's 0.01
    assert build_run(UnlearningCLI, ["--config", str(base_file), "--config", str(tweak)]).module.unlearner.lr == 0.001


def test_the_shipped_config_parses(capsys):
    with pytest.raises(SystemExit) as exit_info:
        UnlearningCLI(args=["audit", "--config", str(CONFIG), "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "seeds: 32" in printed and "../methods/del.yaml" in printed

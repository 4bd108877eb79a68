"""The shipped experiment studies (configs/experiments) and a small study with two axes on digits."""

from __future__ import annotations

import csv
import sys
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from unlearn_pl.cli import UnlearningCLI
from unlearn_pl.tuning import expand_space, run_study
from unlearn_pl.tuning.study import StudyObjective

EXPERIMENTS = REPO / "configs" / "experiments"
STUDIES = {"width_sweep": "privacy_base", "del_budget": "del_base", "del_localizers": "del_base", "del_ablation": "del_base"}


def _resolved(args: list[str], capsys: pytest.CaptureFixture) -> dict:
    with pytest.raises(SystemExit) as exit_:
        UnlearningCLI(args=[*args, "--print_config"])
    assert exit_.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


def _study_args(name: str) -> list[str]:
    files = [EXPERIMENTS / f"{STUDIES[name]}.yaml", EXPERIMENTS / "data_digits.yaml", EXPERIMENTS / f"{name}.yaml"]
    return [a for f in files for a in ("--config", str(f))]


# ----------------------------------------------------------------------------- shipped studies
@pytest.mark.parametrize("name", STUDIES)
def test_every_point_of_the_shipped_studies_resolves(name, capsys, monkeypatch, tmp_path):
    """Every candidate's trial config parses with the fit parser (digits overlay; nothing is trained)."""
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    study = _resolved(["tune", *_study_args(name)], capsys)
    candidates = expand_space(study["space"], study["grid"])
    base = [a for f in (EXPERIMENTS / f"{STUDIES[name]}.yaml", EXPERIMENTS / "data_digits.yaml") for a in ("--config", str(f))]
    objective = StudyObjective(base, candidates, study["seeds"], study["goal"], str(tmp_path))
    for c in candidates[:: max(1, len(candidates) // 8)]:  # a spread of points: each parse takes ~0.3 s
        config = _resolved(objective.fit_args(c, seed=0, number=0), capsys)
        model = config["model"]["init_args"]
        labels = dict(c.labels)
        if name == "width_sweep":
            assert model["network"]["init_args"]["width"] == float(labels["width"])
            expected = {"scrub": "SCRUB", "neggrad": "NegGrad", "neggrad_plus": "NegGradPlus", "l1_sparse": "L1Sparse"}
            assert model["unlearner"]["class_path"].endswith(expected[labels["method"]])
        if name == "del_localizers":
            assert model["localizer"]["class_path"].rsplit(".", 1)[-1] == labels["localizer"].split("(")[0]


def test_shipped_studies_cover_the_issue(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    width = _resolved(["tune", *_study_args("width_sweep")], capsys)
    assert width["space"]["width"]["values"] == [0.125, 0.25, 0.5, 1.0]
    assert {m["name"] for m in width["space"]["method"]} >= {"scrub", "neggrad_plus", "l1_sparse"}
    assert len(width["seeds"]) >= 3
    budgets = _resolved(["tune", *_study_args("del_budget")], capsys)["space"]["budget"]["values"]
    assert min(budgets) == 0.05 and max(budgets) == 0.5
    localizers = _resolved(["tune", *_study_args("del_localizers")], capsys)
    assert {m["name"].split("(")[0] for m in localizers["space"]["localizer"]} == {
        "DEL", "Random", "Magnitude", "Gradient", "SalUnSaliency", "Layers", "Full"}
    assert localizers["space"]["localizer"][0]["name"] == "DEL"  # differences are taken against the first value
    base = yaml.safe_load((EXPERIMENTS / "del_base.yaml").read_text())
    assert base["data"]["init_args"]["forget"]["class_path"] == "unlearn_pl.data.ClassForget"  # class non-IID


# ----------------------------------------------------------------------------- a study with two axes
def _tiny_base(tmp_path: Path) -> list[str]:
    """Digits, a tiny MLP with DEL + Finetune."""
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump({
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 1, "logger": False, "enable_model_summary": False,
                    "enable_progress_bar": False, "enable_checkpointing": False, "num_sanity_val_steps": 0},
        "data": {"class_path": "unlearn_pl.UnlearningDataModule",
                 "init_args": {"dataset": {"class_path": "unlearn_pl.data.Digits"},
                               "forget": {"class_path": "unlearn_pl.data.RandomForget", "init_args": {"size": 0.1}},
                               "batch_size": 64, "seed": 0}},
        "model": {"class_path": "unlearn_pl.UnlearningModule", "init_args": {
            "network": {"class_path": "unlearn_pl.models.MLP", "init_args": {"in_features": 64, "num_classes": 10, "hidden": [32]}},
            "references": {"class_path": "unlearn_pl.ReferenceModels",
                           "init_args": {"recipe": {"epochs": 5, "lr": 0.1, "batch_size": 64, "accelerator": "cpu"}}},
            "metrics": [{"class_path": "unlearn_pl.metrics.SplitAccuracy"}],
            "localizer": {"class_path": "unlearn_pl.localizers.DEL", "init_args": {"budget": 0.3}},
            "unlearner": {"class_path": "unlearn_pl.unlearners.Finetune", "init_args": {"lr": 0.05}},
            "report": False}},
    }))
    return ["--config", str(path)]


@pytest.mark.slow  # 8 trials and 4 noise-floor runs of a tiny MLP: ~60 s on a shared CPU
def test_a_study_with_two_axes_writes_every_table(tmp_path, monkeypatch):
    cache = tmp_path / "cache"  # this test's own cache: the session's is shared with other tests
    monkeypatch.setenv("UNLEARN_PL_CACHE", str(cache))
    space = {"hidden": {"key": "model.init_args.network.init_args.hidden", "values": [[16], [32]]},
             "budget": [{"name": "0.1", "set": {"model.init_args.localizer.init_args.budget": 0.1}},
                        {"name": "0.5", "set": {"model.init_args.localizer.init_args.budget": 0.5},
                         "grid": {"model.init_args.unlearner.init_args.lr": [0.01, 0.1]}}]}
    result = run_study(_tiny_base(tmp_path), space=space, grid={"trainer.max_epochs": [1]}, seeds=[0, 1],
                       lambdas=[0.2, 0.6], output_dir=tmp_path / "out", quiet=True)
    assert [r["state"] for r in result.trials] == ["COMPLETE"] * 12
    # One original/oracle pair per network and seed, reused across budgets; plus the noise floor's
    # independent retrains (another pair per network and seed).
    assert sorted(p.name.split("-")[0] for p in cache.glob("*.pt")) == ["oracle"] * 8 + ["original"] * 8
    folder = tmp_path / "out" / "study"
    trials = list(csv.DictReader((folder / "trials.csv").open()))
    assert len(trials) == 12 and {"hidden", "budget", "lr", "seed", "state", "duration_s", "val_acc", "test_acc",
                                  "goal_privacy", "J(0.2)", "error"} <= set(trials[0])
    sel = list(csv.DictReader((folder / "selection.csv").open()))
    assert len(sel) == 8 and {r["lambda"] for r in sel} == {"0.2", "0.6"} and {r["n"] for r in sel} == {"2"}
    assert {"test_acc_ci_low", "forget_acc_gap", "forget_acc_gap_noise_floor"} <= set(sel[0])
    # The choice per λ and seed is the highest validation J, checked by hand for one point.
    point = [t for t in trials if t["hidden"] == "[32]" and t["budget"] == "0.5" and t["seed"] == "1"]
    row = next(r for r in sel if r["hidden"] == "[32]" and r["budget"] == "0.5" and r["lambda"] == "0.6")
    chosen_lr = row["chosen"].split("seed 1: max_epochs=1,lr=")[1]
    chosen = next(t for t in point if t["lr"] == chosen_lr)
    assert float(chosen["J(0.6)"]) == max(float(t["J(0.6)"]) for t in point)
    diffs = list(csv.DictReader((folder / "differences.csv").open()))
    assert {d["comparison"] for d in diffs} == {"[32] - [16]", "0.5 - 0.1"}
    assert (folder / "pareto.png").is_file() and (folder / "differences.png").is_file() and (folder / "study.log").is_file()

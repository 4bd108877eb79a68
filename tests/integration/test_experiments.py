"""The shipped experiment studies (configs/experiments) and a small study with two axes on digits."""

from __future__ import annotations

import csv
import itertools
import json
import re
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from conftest import REPO

from unlearn_pl.cli import UnlearningCLI, run_cli
from unlearn_pl.cli.tune import TUNE_ARGS
from unlearn_pl.tuning import expand_space, parse_chosen, run_study
from unlearn_pl.tuning.selection import edge_counts, open_ends
from unlearn_pl.tuning.study import StudyObjective

EXPERIMENTS = REPO / "configs" / "experiments"
#: Each shipped study: the config files composed before the digits overlay, and after it.
STUDIES = {
    "width_sweep": (["privacy_base"], ["width_sweep"]),
    "width_bias": (["privacy_base"], ["width_sweep", "width_bias", "width_bias_sweep"]),
    "del_budget": (["del_base"], ["del_budget"]),
    "del_localizers": (["del_base"], ["del_localizers"]),
    "del_ablation": (["del_base"], ["del_ablation"]),
    "del_unlearners": (["del_base"], ["del_unlearners"]),
    "del_tuned": (["del_base"], ["del_tuned"]),
    "del_vs_random": (["del_base"], ["del_vs_random"]),
    "del_unlearners_tuned": (["del_base"], ["del_unlearners_tuned"]),
    "del_localizers_random_forget": (["del_base"], ["del_localizers", "del_random_forget"]),
}


def _resolved(args: list[str], capsys: pytest.CaptureFixture) -> dict:
    with pytest.raises(SystemExit) as exit_:
        UnlearningCLI(args=[*args, "--print_config"])
    assert exit_.value.code == 0
    return yaml.safe_load(capsys.readouterr().out)


def _config_args(names: list[str]) -> list[str]:
    return [a for name in names for a in ("--config", str(EXPERIMENTS / f"{name}.yaml"))]


def _study_args(name: str) -> list[str]:
    before, after = STUDIES[name]
    return _config_args([*before, "data_digits", *after])


# ----------------------------------------------------------------------------- shipped studies
@pytest.mark.parametrize("name", STUDIES)
def test_every_point_of_the_shipped_studies_resolves(name, capsys, monkeypatch, tmp_path):
    """Every candidate's trial config parses with the fit parser (digits overlay; nothing is trained)."""
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    study = _resolved(["tune", *_study_args(name)], capsys)
    candidates = expand_space(study["space"], study["grid"])
    # The trials' base config, as `tune` saves it: the composed config without the study's arguments.
    base_file = tmp_path / "base.yaml"
    base_file.write_text(yaml.safe_dump({k: v for k, v in study.items() if k not in TUNE_ARGS and k != "subcommand"}))
    base = ["--config", str(base_file)]
    objective = StudyObjective(base, candidates, study["seeds"], study["goal"], str(tmp_path), runner=run_cli)
    for c in candidates[:: max(1, len(candidates) // 8)]:  # a spread of points: each parse takes ~0.3 s
        config = _resolved(objective.fit_args(c, seed=0, number=0), capsys)
        model = config["model"]["init_args"]
        labels = dict(c.labels)
        if name.startswith("width"):
            assert model["network"]["init_args"]["width"] == float(labels["width"])
            expected = {"scrub": "SCRUB", "neggrad": "NegGrad", "neggrad_plus": "NegGradPlus", "l1_sparse": "L1Sparse"}
            assert model["unlearner"]["class_path"].endswith(expected[labels["method"]])
        if name.startswith(("del_localizers", "del_tuned")):
            assert (
                model["localizer"]["class_path"].rsplit(".", 1)[-1] == labels["localizer"].split("(")[0].split("@")[0]
            )
            if "@" in labels["localizer"]:
                assert model["localizer"]["init_args"]["budget"] == float(labels["localizer"].split("@")[1])
        if name == "del_vs_random":
            assert model["localizer"]["class_path"].rsplit(".", 1)[-1] == labels["localizer"]
            assert model["localizer"]["init_args"]["budget"] == float(labels["budget"])
            assert model["unlearner"]["init_args"]["recalibrate_bn"] is (labels["bn_recalibration"] == "true")
            # del_base.yaml's fine-tuning (the budget sweep's choice): the study file pins none of its own.
            shipped = yaml.safe_load((EXPERIMENTS / "del_base.yaml").read_text())
            assert config["trainer"]["max_epochs"] == shipped["trainer"]["max_epochs"]
            shipped_unlearner = shipped["model"]["init_args"]["unlearner"]["init_args"]
            assert model["unlearner"]["init_args"]["lr"] == shipped_unlearner["lr"]
        if name == "del_unlearners_tuned":
            assert model["localizer"]["class_path"].endswith(labels["localizer"])
            assert model["localizer"]["init_args"]["budget"] == 0.2
            assert model["unlearner"]["class_path"].endswith(labels["unlearner"])
            assert model["unlearner"]["init_args"]["lr"] == dict(c.params)["model.init_args.unlearner.init_args.lr"]
            # Each unlearner's own epoch grid reaches the trainer.
            assert config["trainer"]["max_epochs"] == dict(c.params)["trainer.max_epochs"]
        if name == "width_bias":
            assert config["data"]["init_args"]["forget"]["class_path"] == "unlearn_pl.data.Mislabeled"
        if name == "del_localizers_random_forget":
            assert config["data"]["init_args"]["forget"]["class_path"] == "unlearn_pl.data.RandomForget"


def _log_spaced(values: list[float]) -> bool:
    """At least 4 values, each about the same factor (within 25%) above the previous one."""
    ratios = [b / a for a, b in itertools.pairwise(values)]
    return len(values) >= 4 and all(r > 1 for r in ratios) and max(ratios) / min(ratios) < 1.25


def test_the_width_study_covers_the_claim(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    width = _resolved(["tune", *_config_args(["privacy_base", "width_sweep"])], capsys)
    # Widths from 1/64 to at least 1/4, each with its references' epochs (to convergence, stated in the file).
    sets = [w["set"] for w in width["space"]["width"]]
    widths = [s["model.init_args.network.init_args.width"] for s in sets]
    assert [w["name"] for w in width["space"]["width"]] == [str(w) for w in widths]
    assert widths == sorted(widths) and widths[0] <= 1 / 64 and widths[-1] >= 1 / 4
    assert all(s["model.init_args.references.init_args.recipe.epochs"] >= 15 for s in sets)
    assert width["data"]["init_args"]["forget"]["init_args"]["size"] == 200
    assert width["no_op"] is True and len(width["seeds"]) >= 5
    assert {m["name"] for m in width["space"]["method"]} == {"scrub", "neggrad", "neggrad_plus", "l1_sparse"}
    for m in width["space"]["method"]:
        lrs = m["grid"]["model.init_args.unlearner.init_args.lr"]
        assert _log_spaced(lrs) and len(lrs) >= 5, m["name"]
    assert width["goal"] == "privacy" and width["lambdas"] == [0.2, 0.4, 0.6]
    bias = _resolved(["tune", *_config_args(["privacy_base", "width_sweep", "width_bias", "width_bias_sweep"])], capsys)
    assert bias["goal"] == "bias" and bias["lambdas"] == [0.15, 0.3, 0.5]
    assert bias["data"]["init_args"]["forget"]["class_path"] == "unlearn_pl.data.Mislabeled"
    assert bias["data"]["init_args"]["forget"]["init_args"]["size"] == 200  # the paper's, as the privacy goal's
    assert bias["output_dir"] != width["output_dir"]
    # Bias removal restates the privacy goal's space (same widths with their epochs, same methods and
    # grids) and adds a width between 1/64 and 1/8.
    bias_widths = {w["name"]: w for w in bias["space"]["width"]}
    assert all(bias_widths.get(w["name"]) == w for w in width["space"]["width"])
    added = [
        w["set"]["model.init_args.network.init_args.width"]
        for w in bias_widths.values()
        if w not in width["space"]["width"]
    ]
    assert len(added) == 1 and 1 / 64 < added[0] < 1 / 8
    assert bias["space"]["method"] == width["space"]["method"]
    l1 = next(m for m in width["space"]["method"] if m["name"] == "l1_sparse")
    assert l1["set"]["model.init_args.unlearner"]["class_path"] == "unlearn_pl.unlearners.L1Sparse"
    assert _log_spaced(l1["grid"]["model.init_args.unlearner.init_args.lr"])


def test_the_del_studies_cover_the_paper(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    budget = _resolved(["tune", *_config_args(["del_base", "del_budget"])], capsys)
    budgets = budget["space"]["budget"]["values"]
    assert min(budgets) == 0.05 and max(budgets) == 0.5 and len(budget["seeds"]) >= 5
    assert budget["grid"]["trainer.max_epochs"] == [2, 5, 10, 20]
    assert len(budget["grid"]["model.init_args.unlearner.init_args.lr"]) >= 3
    localizers = _resolved(["tune", *_config_args(["del_base", "del_localizers"])], capsys)
    names = [m["name"] for m in localizers["space"]["localizer"]]
    for method in ("DEL", "Random", "Magnitude", "Gradient", "SalUnSaliency"):
        assert {f"{method}@0.1", f"{method}@0.3"} <= set(names)
    assert {"Layers(last=2)", "Full"} <= set(names) and names[0] == "DEL@0.1"
    assert localizers["space"]["epochs"]["values"] == [2, 5, 10] and len(localizers["seeds"]) >= 5
    ablation = _resolved(["tune", *_config_args(["del_base", "del_ablation"])], capsys)
    assert {"data=train", "top_h_of=channels", "top_h_of=authors", "max_share_per_tensor=0.5"} <= {
        v["name"] for v in ablation["space"]["variant"]
    }
    assert ablation["space"]["budget"]["values"] == [0.1, 0.3]
    third = _resolved(["tune", *_config_args(["del_base", "del_unlearners"])], capsys)
    assert {u["name"] for u in third["space"]["unlearner"]} == {"ResetFinetune", "RandomLabel", "NegGradPlus"}
    assert {loc["set"]["model.init_args.localizer"]["init_args"]["budget"] for loc in third["space"]["localizer"]} == {
        0.2
    }
    base = yaml.safe_load((EXPERIMENTS / "del_base.yaml").read_text())
    assert base["data"]["init_args"]["forget"]["class_path"] == "unlearn_pl.data.ClassForget"  # class non-IID
    random_forget = _resolved(["fit", *_config_args(["del_base", "del_random_forget"])], capsys)
    assert random_forget["data"]["init_args"]["forget"] == {
        "class_path": "unlearn_pl.data.RandomForget",
        "init_args": {"size": 0.1},
    }


@pytest.mark.parametrize(
    "base, study",
    [
        ("privacy_base", ["gpu/width_sweep"]),
        ("privacy_base", ["gpu/width_sweep", "width_bias"]),
        ("del_base", ["del_localizers"]),
        ("del_base", ["del_budget"]),
    ],
)
def test_gpu_configs_resolve_to_cifar10_at_full_width(base, study, capsys, monkeypatch):
    """The GPU-scale studies parse (nothing is loaded or trained): CIFAR-10, 3 channels, widths to 1."""
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    config = _resolved(
        ["tune", *_config_args([base, *study, "gpu/cifar10"]), "--data.init_args.dataset.init_args.root", "/data"],
        capsys,
    )
    assert config["data"]["init_args"]["dataset"]["class_path"] == "unlearn_pl.data.CIFAR10"
    assert config["data"]["init_args"]["train_size"] is None and config["data"]["init_args"]["test_size"] is None
    assert config["data"]["init_args"]["device_data"] is True
    assert config["model"]["init_args"]["network"]["init_args"]["in_channels"] == 3
    assert (
        config["trainer"]["accelerator"] == "gpu"
        and config["model"]["init_args"]["references"]["init_args"]["recipe"]["accelerator"] == "gpu"
    )
    widths = (
        config["space"]["width"]["values"]
        if "width" in config["space"]
        else [config["model"]["init_args"]["network"]["init_args"]["width"]]
    )
    assert max(widths) == 1.0
    if "width" in config["space"]:
        assert min(widths) <= 0.125 and len(config["seeds"]) >= 5
        # 200 forget examples, the paper's size, for either goal (bias removal: mislabeled ones).
        forget = config["data"]["init_args"]["forget"]
        assert forget["init_args"]["size"] == 200
        assert forget["class_path"].endswith("Mislabeled" if "width_bias" in study else "RandomForget")


# ----------------------------------------------------------------------------- a study with two axes
def _tiny_base(tmp_path: Path) -> list[str]:
    """Digits, a tiny MLP with DEL + Finetune."""
    path = tmp_path / "base.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "seed_everything": 0,
                "trainer": {
                    "accelerator": "cpu",
                    "devices": 1,
                    "max_epochs": 1,
                    "logger": False,
                    "enable_model_summary": False,
                    "enable_progress_bar": False,
                    "enable_checkpointing": False,
                    "num_sanity_val_steps": 0,
                },
                "data": {
                    "class_path": "unlearn_pl.UnlearningDataModule",
                    "init_args": {
                        "dataset": {"class_path": "unlearn_pl.data.Digits"},
                        "forget": {"class_path": "unlearn_pl.data.RandomForget", "init_args": {"size": 0.1}},
                        "batch_size": 64,
                        "seed": 0,
                    },
                },
                "model": {
                    "class_path": "unlearn_pl.UnlearningModule",
                    "init_args": {
                        "network": {
                            "class_path": "unlearn_pl.models.MLP",
                            "init_args": {"in_features": 64, "num_classes": 10, "hidden": [32]},
                        },
                        "references": {
                            "class_path": "unlearn_pl.ReferenceModels",
                            "init_args": {"recipe": {"epochs": 5, "lr": 0.1, "batch_size": 64, "accelerator": "cpu"}},
                        },
                        "metrics": [{"class_path": "unlearn_pl.metrics.SplitAccuracy"}],
                        "localizer": {"class_path": "unlearn_pl.localizers.DEL", "init_args": {"budget": 0.3}},
                        "unlearner": {"class_path": "unlearn_pl.unlearners.Finetune", "init_args": {"lr": 0.05}},
                        "report": False,
                    },
                },
            }
        )
    )
    return ["--config", str(path)]


@pytest.mark.slow  # 8 trials and 4 noise-floor runs of a tiny MLP: ~60 s on a shared CPU
def test_a_study_with_two_axes_writes_every_table(tmp_path, monkeypatch):
    cache = tmp_path / "cache"  # this test's own cache: the session's is shared with other tests
    monkeypatch.setenv("UNLEARN_PL_CACHE", str(cache))
    space = {
        "hidden": {"key": "model.init_args.network.init_args.hidden", "values": [[16], [32]]},
        "budget": [
            {"name": "0.1", "set": {"model.init_args.localizer.init_args.budget": 0.1}},
            {
                "name": "0.5",
                "set": {"model.init_args.localizer.init_args.budget": 0.5},
                "grid": {"model.init_args.unlearner.init_args.lr": [0.01, 0.1]},
            },
        ],
    }
    result = run_study(
        _tiny_base(tmp_path),
        runner=run_cli,
        space=space,
        grid={"trainer.max_epochs": [1]},
        seeds=[0, 1],
        lambdas=[0.2, 0.6],
        output_dir=tmp_path / "out",
        quiet=True,
    )
    assert [r["state"] for r in result.trials] == ["COMPLETE"] * 12
    # One original/oracle pair per network and seed, reused across budgets; plus the noise floor's
    # independent retrains (another pair per network and seed).
    assert sorted(p.name.split("-")[0] for p in cache.glob("*.pt")) == ["oracle"] * 8 + ["original"] * 8
    folder = tmp_path / "out" / "study"
    trials = list(csv.DictReader((folder / "trials.csv").open()))
    assert len(trials) == 12 and {
        "hidden",
        "budget",
        "lr",
        "seed",
        "state",
        "duration_s",
        "val_acc",
        "test_acc",
        "goal_privacy",
        "J(0.2)",
        "error",
    } <= set(trials[0])
    sel = list(csv.DictReader((folder / "selection.csv").open()))
    assert len(sel) == 8 and {r["lambda"] for r in sel} == {"0.2", "0.6"} and {r["n"] for r in sel} == {"2"}
    assert {"test_acc_ci_low", "forget_acc_gap", "forget_acc_gap_noise_floor"} <= set(sel[0])
    # The choice per λ and seed is the highest validation J, checked by hand for one point.
    point = [t for t in trials if t["hidden"] == "[32]" and t["budget"] == "0.5" and t["seed"] == "1"]
    row = next(r for r in sel if r["hidden"] == "[32]" and r["budget"] == "0.5" and r["lambda"] == "0.6")
    cell = parse_chosen(row["chosen"])[1]
    chosen = next(t for t in point if t["max_epochs"] == cell["max_epochs"] and t["lr"] == cell["lr"])
    assert float(chosen["J(0.6)"]) == max(float(t["J(0.6)"]) for t in point)
    floor = list(csv.DictReader((folder / "noise_floor.csv").open()))
    assert len(floor) == 8 and {
        "hidden",
        "budget",
        "seed",
        "forget_acc_gap_noise_floor",
        "test_acc_gap_noise_floor",
    } <= set(floor[0])
    # The one setting per point and λ, scored on test beside validation; gaps to the mean of the two retrains.
    assert {
        "setting",
        "setting_J",
        "setting_J_per_seed",
        "J_test",
        "goal_test",
        "abs_forget_acc_target_gap",
        "forget_acc_target_gap",
    } <= set(sel[0]) and {r["target_retrains"] for r in sel} == {"2"}
    # Per seed the target lies halfway between the oracle and the independent retrain, half the floor from the
    # oracle: over seeds, the gaps to the target and to the oracle differ by at most half the mean floor.
    for r in sel:
        shift = abs(float(r["forget_acc_target_gap"]) - float(r["forget_acc_gap"]))
        assert shift <= float(r["forget_acc_gap_noise_floor"]) / 2 + 1e-9
    diffs = list(csv.DictReader((folder / "differences.csv").open()))
    assert {d["comparison"] for d in diffs} == {"[32] - [16]", "0.5 - 0.1"}
    assert {"n", "mde", "margin", "tost_p", "verdict", "verdict_holm", "claim", "split"} <= set(diffs[0])
    verdict = re.compile(r"^(higher|lower|inconclusive \(could detect ≥ [0-9.e-]+\))$")  # no margin: no equivalence
    assert all(verdict.match(d["verdict"]) and verdict.match(d["verdict_holm"]) for d in diffs)
    for d in diffs:  # accuracies' differences stay within [-1, 1]
        if d["metric"].endswith("_acc"):
            assert -1 <= float(d["ci_low"]) and float(d["ci_high"]) <= 1
    summary = json.loads((folder / "study.json").read_text())
    assert len(summary["answer"]) == 8 and summary["score_on"] == "test" and summary["claims"]
    assert (
        (folder / "pareto.png").is_file()
        and (folder / "differences.png").is_file()
        and (folder / "study.log").is_file()
    )


@pytest.mark.parametrize(
    "goal, study, space_file",
    [("privacy", "width_privacy_full", "width_sweep"), ("bias", "width_bias_full", "width_bias_sweep")],
    ids=["privacy", "bias"],
)
def test_the_committed_width_study_spans_both_regimes(goal, study, space_file):
    """The committed width study of each goal ran the shipped config, and its converged originals span
    under- to over-parameterized: one width below 0.95 training accuracy (on the training labels).
    Privacy: two widths at 0.999 or more on every seed. Bias removal, whose forget set carries wrong
    labels: two widths fit the retain set (0.999) and learn the wrong labels (0.9) on every seed,
    so there is a bias to remove, and a width between the smallest and those learns part of them
    (0.1 to 0.9) on every seed. No seed's choice sits at an open end of a learning-rate grid."""
    folder = REPO / "docs" / "results" / f"{study}-fashion-mnist"
    with open(folder / "trials.csv") as f:
        trials = [t for t in csv.DictReader(f) if t["state"] == "COMPLETE"]
    config = yaml.safe_load((EXPERIMENTS / "width_sweep.yaml").read_text())
    config["space"] = yaml.safe_load((EXPERIMENTS / f"{space_file}.yaml").read_text())["space"]  # each goal's own
    widths = [w["set"]["model.init_args.network.init_args.width"] for w in config["space"]["width"]]
    assert sorted({float(t["width"]) for t in trials}) == widths
    assert {int(t["seed"]) for t in trials} == set(config["seeds"])
    study = json.loads((folder / "study.json").read_text())
    assert study["goal"] == goal
    ran = yaml.safe_load((folder / "base.yaml").read_text())["data"]["init_args"]["forget"]
    assert ran["class_path"] == f"unlearn_pl.data.{'Mislabeled' if goal == 'bias' else 'RandomForget'}"
    assert ran["init_args"]["size"] == 200
    cells = len(expand_space(config["space"], config.get("grid"), config["no_op"])) // len(widths)
    per_cell = Counter((t["width"], t["seed"]) for t in trials)
    assert set(per_cell.values()) == {cells}, "every width and seed has all its cells completed"
    base = yaml.safe_load((EXPERIMENTS / "privacy_base.yaml").read_text())["data"]["init_args"]
    forget = config["data"]["init_args"]["forget"]["init_args"]["size"]
    pool = config["data"]["init_args"]["train_size"] * (1 - base["val_fraction"])
    originals = {(t["width"], t["seed"]): t for t in trials}.values()  # one per width and seed
    train_acc: dict[float, list[float]] = {}
    for t in originals:
        acc = ((pool - forget) * float(t["original/retain_acc"]) + forget * float(t["original/forget_acc"])) / pool
        train_acc.setdefault(float(t["width"]), []).append(acc)
    below = [w for w, a in train_acc.items() if sum(a) / len(a) < 0.95]
    assert len(below) >= 1, train_acc
    if goal == "privacy":
        fits = [w for w, a in train_acc.items() if min(a) >= 0.999]
    else:
        learnt = [
            t for t in originals if float(t["original/retain_acc"]) >= 0.999 and float(t["original/forget_acc"]) >= 0.9
        ]
        fits = [w for w, n in Counter(float(t["width"]) for t in learnt).items() if n == len(config["seeds"])]
        # and one width between them learns part of the wrong labels on every seed: both ends have a bias to remove
        part = Counter(float(t["width"]) for t in originals if 0.1 <= float(t["original/forget_acc"]) <= 0.9)
        assert [w for w, n in part.items() if n == len(config["seeds"]) and min(below) < w < min(fits)] != []
    assert len(fits) >= 2, train_acc
    with open(folder / "selection.csv") as f:
        edges = edge_counts(row["grid_edge"] for row in csv.DictReader(f))
    assert open_ends(edges) == 0, edges


@pytest.mark.parametrize("forget", ["class", "random"])
def test_the_committed_third_experiment_ran_the_shipped_grids(forget):
    """The committed tuned third experiment of each forget set ran every cell of
    del_unlearners_tuned.yaml's grids on every seed, on that forget set: each completed, or its
    network diverged (a learning rate that brackets the grid from above), and chose each arm's
    cells on all its seeds from those grids."""
    folder = REPO / "docs" / "results" / f"del_unlearners_tuned_epochs-{forget}-fashion-mnist"
    config = yaml.safe_load((EXPERIMENTS / "del_unlearners_tuned.yaml").read_text())
    names = {c.name for c in expand_space(config["space"], config.get("grid"), config.get("no_op", False))}
    with open(folder / "trials.csv") as f:
        trials = list(csv.DictReader(f))
    diverged = [t for t in trials if t["state"] == "FAIL" and t["diverged"] == "True"]
    cells_run = Counter(t["candidate"] for t in trials if t["state"] == "COMPLETE" or t in diverged)
    assert set(cells_run) == names and set(cells_run.values()) == {len(config["seeds"])}
    top_lr = {u["name"]: max(u["grid"]["model.init_args.unlearner.init_args.lr"]) for u in config["space"]["unlearner"]}
    assert diverged and all(float(t["lr"]) == top_lr[t["unlearner"]] for t in diverged)
    ran = yaml.safe_load((folder / "base.yaml").read_text())["data"]["init_args"]["forget"]["class_path"]
    assert ran == f"unlearn_pl.data.{'ClassForget' if forget == 'class' else 'RandomForget'}"
    with open(folder / "selection.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == len(config["space"]["localizer"]) * len(config["space"]["unlearner"])
    for row in rows:
        assert row["missing"] == ""
        chosen = parse_chosen(row["chosen"])
        assert sorted(chosen) == config["seeds"]
        prefix = f"localizer={row['localizer']}/unlearner={row['unlearner']}/"
        assert all(prefix + ",".join(f"{k}={v}" for k, v in cell.items()) in names for cell in chosen.values())


def test_del_base_holds_the_budget_sweeps_choice_on_validation():
    """del_base.yaml's DEL settings are what the committed budget sweep (its whole grid, notebook 05)
    chose: the budget of the highest mean validation J(0.4), and the (epochs, lr) cell chosen there
    on most seeds."""
    with open(REPO / "docs" / "results" / "del_budget_wide-class-fashion-mnist" / "selection.csv") as f:
        rows = list(csv.DictReader(f))
    best = max(rows, key=lambda r: float(r["J"]))
    cells = list(parse_chosen(best["chosen"]).values())
    # The cell chosen on most seeds; a tie goes to the cheaper cell (fewer epochs, then lower lr).
    cell = min(cells, key=lambda c: (-cells.count(c), int(c["max_epochs"]), float(c["lr"])))
    base = yaml.safe_load((EXPERIMENTS / "del_base.yaml").read_text())
    assert base["model"]["init_args"]["localizer"]["init_args"]["budget"] == float(best["budget"])
    assert base["model"]["init_args"]["unlearner"]["init_args"]["lr"] == float(cell["lr"])
    assert base["trainer"]["max_epochs"] == int(cell["max_epochs"])
    # The studies of the paper's settings keep its fine-tuning lr, whatever del_base holds.
    for name in ("del_localizers", "del_ablation", "del_unlearners"):
        study = yaml.safe_load((EXPERIMENTS / f"{name}.yaml").read_text())
        assert study["model"]["init_args"]["unlearner"]["init_args"]["lr"] == 0.015
    # The tuned comparison runs del_base's fine-tuning: it pins neither lr nor epochs, nor varies them.
    tuned = yaml.safe_load((EXPERIMENTS / "del_tuned.yaml").read_text())
    assert "model" not in tuned and "max_epochs" not in tuned["trainer"] and "grid" not in tuned


def test_the_tuned_study_pairs_del_with_random_at_each_budget(capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    tuned = _resolved(["tune", *_config_args(["del_base", "del_tuned"])], capsys)
    names = [arm["name"] for arm in tuned["space"]["localizer"]]
    assert names[0] == "DEL@0.1" and "Full" in names and len(tuned["seeds"]) >= 5
    for budget in (0.1, 0.3, 0.5):
        assert {f"DEL@{budget}", f"Random@{budget}"} <= set(names)
    assert tuned["trainer"]["max_epochs"] == 20 and tuned["model"]["init_args"]["unlearner"]["init_args"]["lr"] == 0.05

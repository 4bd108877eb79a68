"""Sweeps over experiment configs (unlearn_pl.tuning.sweep) and the shipped configs/experiments files."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch
import yaml
from conftest import REPO

from unlearn_pl.tuning.sweep import (
    build_point,
    compose,
    load_sweep,
    main,
    merge_config,
    rows_to_csv,
    run_sweep,
    set_dotted,
)

EXPERIMENTS = REPO / "configs" / "experiments"
SWEEPS = ["width_sweep", "del_budget", "del_localizers", "del_ablation"]


pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ----------------------------------------------------------------------------- composition
def test_merge_replaces_a_block_of_another_class_and_merges_the_same_class():
    base = {"l": {"class_path": "A", "init_args": {"budget": 0.3, "top_h": 0.1}}, "k": 1}
    assert merge_config(base, {"l": {"class_path": "B", "init_args": {"budget": 0.2}}}) == {
        "l": {"class_path": "B", "init_args": {"budget": 0.2}}, "k": 1}
    assert merge_config(base, {"l": {"class_path": "A", "init_args": {"budget": 0.2}}}) == {
        "l": {"class_path": "A", "init_args": {"budget": 0.2, "top_h": 0.1}}, "k": 1}
    assert merge_config(base, {"l": {"init_args": {"top_h": 1.0}}})["l"]["init_args"] == {"budget": 0.3, "top_h": 1.0}
    assert base["l"]["init_args"]["budget"] == 0.3  # inputs are not modified


def test_set_dotted_and_bad_keys():
    assert set_dotted({"a": {"b": {"c": 1}}}, "a.b.c", 2) == {"a": {"b": {"c": 2}}}
    assert set_dotted({}, "a.b", [1]) == {"a": {"b": [1]}}
    for bad in ("", "a..b", ".a"):
        with pytest.raises(ValueError, match="dotted path"):
            set_dotted({}, bad, 1)


def _write(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def test_points_are_the_product_of_the_axes_with_grids_merged(tmp_path):
    base = _write(tmp_path / "base.yaml", {"seed_everything": 0})
    sweep_file = _write(tmp_path / "s.yaml", {
        "base": [base.name], "grid": {"max_epochs": [2]}, "set": {"trainer.max_epochs": 9},
        "axes": {
            "width": {"key": "model.init_args.network.init_args.width", "values": [0.5, 1.0]},
            "method": [{"name": "a", "set": {"x.y": 1}, "grid": {"lr": [0.1, 0.2]}},
                       {"name": "b", "grid": {"max_epochs": [1]}}],
        },
    })
    sweep = load_sweep(sweep_file)
    points = sweep.points()
    assert [p.name for p in points] == ["width=0.5/method=a", "width=0.5/method=b", "width=1.0/method=a", "width=1.0/method=b"]
    assert points[0].grid == {"max_epochs": [2], "lr": [0.1, 0.2]}
    assert points[1].grid == {"max_epochs": [1]}
    assert points[0].overrides == {"trainer.max_epochs": 9, "model.init_args.network.init_args.width": 0.5, "x.y": 1}
    assert sweep.config(points[2]) == {"seed_everything": 0, "trainer": {"max_epochs": 9},
                                       "model": {"init_args": {"network": {"init_args": {"width": 1.0}}}}, "x": {"y": 1}}
    assert sweep.base == [tmp_path / "base.yaml"]  # relative to the sweep file
    # Shrinking a sweep without a second file.
    small = load_sweep(sweep_file, {"axes.width.values": [1.0], "set.trainer.max_epochs": 3}, only={"method": ["b"]})
    assert [p.name for p in small.points()] == ["width=1.0/method=b"]
    assert small.points()[0].overrides["trainer.max_epochs"] == 3


@pytest.mark.parametrize("sweep, message", [
    ({"base": ["b.yaml"], "bogus": 1}, "unknown sweep keys"),
    ({"base": []}, "at least one base"),
    ({"base": ["b.yaml"], "goal": "fame"}, "unknown goal"),
    ({"base": ["b.yaml"], "axes": {"w": {"key": "a.b"}}}, "short form"),
    ({"base": ["b.yaml"], "axes": {"w": [{"set": {}}]}}, "'name'"),
    ({"base": ["b.yaml"], "axes": {"w": [{"name": "x"}, {"name": "x"}]}}, "more than once"),
    ({"base": ["b.yaml"], "axes": {"w": []}}, "non-empty"),
])
def test_bad_sweep_files_are_rejected_with_the_allowed_form(tmp_path, sweep, message):
    with pytest.raises(ValueError, match=message):
        load_sweep(_write(tmp_path / "s.yaml", sweep))


def test_only_and_empty_grid_errors(tmp_path):
    f = _write(tmp_path / "s.yaml", {"base": ["b.yaml"], "axes": {"m": [{"name": "a"}]}})
    with pytest.raises(ValueError, match="axis values are"):
        load_sweep(f, only={"m": ["z"]})
    with pytest.raises(ValueError, match="sweep's axes are"):
        load_sweep(f, only={"q": ["a"]})
    with pytest.raises(ValueError, match="empty grid"):
        load_sweep(f).points()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_sweep(tmp_path / "missing.yaml")


def test_rows_to_csv_takes_the_union_of_columns():
    text = rows_to_csv([{"a": 1, "b": 0.5}, {"a": 2, "c": "x"}])
    assert list(csv.reader(text.splitlines())) == [["a", "b", "c"], ["1", "0.5", ""], ["2", "", "x"]]


# ----------------------------------------------------------------------------- shipped configs
@pytest.mark.parametrize("name", SWEEPS)
def test_shipped_sweeps_build_every_point(name):
    """Every point of every shipped sweep instantiates (digits overlay; nothing is trained)."""
    sweep = load_sweep(EXPERIMENTS / f"{name}.yaml", extra_base=[EXPERIMENTS / "data_digits.yaml"])
    points = sweep.points()
    assert points
    for p in points:
        module, dm, settings, seed = build_point(sweep.config(p))
        assert seed == 0 and module.unlearner is not None
        if name == "width_sweep":
            assert module.network.width == float(p.labels["width"])
            expected = {"scrub": "SCRUB", "neggrad": "NegGrad", "neggrad_plus": "NegGradPlus", "l1_sparse": "L1Sparse"}
            assert type(module.unlearner).__name__ == expected[p.labels["method"]]
        if name == "del_localizers":
            assert type(module.localizer).__name__ == p.labels["localizer"].split("(")[0]


def test_shipped_sweeps_cover_the_issue():
    width = load_sweep(EXPERIMENTS / "width_sweep.yaml")
    assert width.axes["width"][0][0] == "0.125" and [v for v, _, _ in width.axes["width"]] == ["0.125", "0.25", "0.5", "1.0"]
    assert {v for v, _, _ in width.axes["method"]} >= {"scrub", "neggrad_plus", "l1_sparse"}
    budgets = [float(v) for v, _, _ in load_sweep(EXPERIMENTS / "del_budget.yaml").axes["budget"]]
    assert min(budgets) == 0.05 and max(budgets) == 0.5
    localizers = {v.split("(")[0] for v, _, _ in load_sweep(EXPERIMENTS / "del_localizers.yaml").axes["localizer"]}
    assert localizers == {"DEL", "Random", "Magnitude", "Gradient", "SalUnSaliency", "Layers", "Full"}
    base = compose([EXPERIMENTS / "del_base.yaml"])
    assert base["data"]["init_args"]["forget"]["class_path"] == "unlearn_pl.data.ClassForget"  # class non-IID


# ----------------------------------------------------------------------------- running a sweep
def _tiny_sweep(tmp_path: Path) -> Path:
    """Digits, a tiny MLP, 2 widths of hidden layer x 2 budgets, one 1-epoch candidate each."""
    base = _write(tmp_path / "base.yaml", {
        "seed_everything": 0,
        "trainer": {"accelerator": "cpu", "devices": 1, "max_epochs": 1, "logger": False, "enable_model_summary": False},
        "data": {"class_path": "unlearn_pl.UnlearningDataModule",
                 "init_args": {"dataset": {"class_path": "unlearn_pl.data.Digits"},
                               "forget": {"class_path": "unlearn_pl.data.RandomForget", "init_args": {"size": 0.1}},
                               "batch_size": 64, "seed": 0}},
        "model": {"class_path": "unlearn_pl.UnlearningModule", "init_args": {
            "network": {"class_path": "unlearn_pl.models.MLP", "init_args": {"in_features": 64, "num_classes": 10, "hidden": [32]}},
            "references": {"class_path": "unlearn_pl.ReferenceModels",
                           "init_args": {"recipe": {"epochs": 5, "lr": 0.1, "batch_size": 64, "accelerator": "cpu"}}},
            "localizer": {"class_path": "unlearn_pl.localizers.DEL", "init_args": {"budget": 0.3}},
            "unlearner": {"class_path": "unlearn_pl.unlearners.Finetune", "init_args": {"lr": 0.05}},
            "report": False}},
    })
    return _write(tmp_path / "sweep.yaml", {
        "base": [base.name], "goal": "privacy", "lambdas": [0.2, 0.6], "grid": {"max_epochs": [1]},
        "output_dir": str(tmp_path / "out"),
        "axes": {
            "hidden": {"key": "model.init_args.network.init_args.hidden", "values": [[16], [32]]},
            "budget": {"key": "model.init_args.localizer.init_args.budget", "values": [0.1, 0.5],
                       "grid": {"lr": [0.01, 0.1]}},
        },
    })


@pytest.mark.slow
def test_run_sweep_tunes_every_point_and_writes_the_tables(tmp_path, monkeypatch):
    cache = tmp_path / "cache"  # this test's own cache: the session's is shared with other tests
    monkeypatch.setenv("UNLEARN_PL_CACHE", str(cache))
    sweep = load_sweep(_tiny_sweep(tmp_path))
    result = run_sweep(sweep, keep_models=True, progress=False, log=None)
    assert len(result.points) == 4
    # One original/oracle pair per network (hidden width), reused across budgets.
    assert sorted(p.name.split("-")[0] for p in cache.glob("*.pt")) == ["oracle", "oracle", "original", "original"]
    for pr in result.points:
        t = pr.tuning
        assert [c.params for c in t.candidates] == [{"max_epochs": 1, "lr": 0.01}, {"max_epochs": 1, "lr": 0.1}]
        # The choice per lambda is the highest validation J, computed here by hand.
        for lam in (0.2, 0.6):
            js = [(1 - lam) * c.metrics["val_acc"] + lam * (1 - abs((1 - c.metrics["forget_acc"]) - (1 - c.metrics["val_acc"])))
                  for c in t.candidates]
            assert t.selection[lam] == max(range(len(js)), key=lambda i: (js[i], -i))
        # Kept networks are the trained candidates, not the original.
        net = pr.chosen_network(0.2)
        original = pr.module.reference("original")
        assert any(not torch.equal(a, b) for a, b in zip(net.state_dict().values(), original.state_dict().values()))
    assert result.points[0].tuning.candidates[0].metrics != result.points[1].tuning.candidates[0].metrics
    out = result.output_dir
    assert out == tmp_path / "out" / "version_0"
    rows = list(csv.DictReader((out / "candidates.csv").open()))
    assert len(rows) == 8 and {"hidden", "budget", "param_lr", "val_acc", "test_acc", "goal_privacy", "J(0.2)"} <= set(rows[0])
    sel = list(csv.DictReader((out / "selection.csv").open()))
    assert len(sel) == 8 and {r["lambda"] for r in sel} == {"0.2", "0.6"}
    refs = list(csv.DictReader((out / "references.csv").open()))
    assert {r["model"] for r in refs} == {"original", "oracle"}
    data = json.loads((out / "sweep.json").read_text())
    assert [p["name"] for p in data["points"]] == [p.point.name for p in result.points]
    assert sorted(d.name for d in (out / "points").iterdir()) == sorted(p.point.slug for p in result.points)
    assert (out / "points" / result.points[0].point.slug / "version_0" / "grid.csv").is_file()


@pytest.mark.slow
def test_sweep_command_line(tmp_path, capsys):
    f = _tiny_sweep(tmp_path)
    result = main([str(f), "--sweep-set", "axes.hidden.values=[[16]]", "--sweep-set", "axes.budget.values=[0.5]",
                   "--set", "model.init_args.unlearner.init_args.lr=0.02", "--output-dir", str(tmp_path / "cli"),
                   "--no-progress"])
    assert [p.point.name for p in result.points] == ["hidden=[16]/budget=0.5"]
    assert result.points[0].point.overrides["model.init_args.unlearner.init_args.lr"] == 0.02
    printed = capsys.readouterr().out
    assert "chosen per point and lambda" in printed and str(tmp_path / "cli" / "version_0") in printed

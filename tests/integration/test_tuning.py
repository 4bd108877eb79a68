"""Studies on Optuna: scoring on hand-made numbers, search spaces, statistics against scipy,
studies on digits (1 vs 2 workers, the resolved config of a trial, reference results evaluated
once per key), the reference-model lock and the ``tune`` subcommand."""

from __future__ import annotations

import multiprocessing
import re
import sys
from pathlib import Path

import numpy as np
import optuna
import pytest
import torch
import yaml
from conftest import REPO
from filelock import FileLock
from optuna.trial import TrialState
from scipy import stats

from unlearn_pl import UnlearningModule
from unlearn_pl.cli import UnlearningCLI, run_cli
from unlearn_pl.references import ReferenceResults, ReferenceResultsStore
from unlearn_pl.stats import Estimate
from unlearn_pl.stats.tables import DURATIONS
from unlearn_pl.tuning import (
    DIFFERENCE_COLUMNS,
    StudyObjective,
    best_index,
    bias_goal,
    check_lambdas,
    check_same_base,
    expand_space,
    format_chosen,
    mean_ci,
    objective,
    paired_difference,
    parse_chosen,
    privacy_goal,
    privacy_mia_goal,
    run_study,
    select,
)
from unlearn_pl.tuning.engine.storage import journal_storage
from unlearn_pl.tuning.space import Candidate
from unlearn_pl.tuning.study import NoiseFloorObjective

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # spawned processes unpickle the helpers by module name
import _study_toys
from _study_toys import STUDY


# ----------------------------------------------------------------------------- pure scoring
def test_goals_and_objective_on_hand_numbers():
    assert privacy_goal(0.10, 0.25) == pytest.approx(0.85)
    assert privacy_goal(0.30, 0.30) == 1.0
    assert privacy_mia_goal(0.5) == 1.0
    assert privacy_mia_goal(0.75) == pytest.approx(0.5)
    assert privacy_mia_goal(0.25) == pytest.approx(0.5)  # an inverted attack leaks as much
    assert privacy_mia_goal(1.0) == 0.0
    assert bias_goal(0.8) == 0.8
    assert objective(0.9, 0.5, 0.2) == pytest.approx(0.8 * 0.9 + 0.2 * 0.5)
    assert objective(0.9, 0.5, 0.0) == pytest.approx(0.9)
    assert objective(0.9, 0.5, 1.0) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="lambda must be in \\[0, 1\\]; got 1.5"):
        objective(0.9, 0.5, 1.5)
    with pytest.raises(ValueError, match="forget_error must be in \\[0, 1\\]; got -0.1"):
        privacy_goal(-0.1, 0.2)


def test_select_picks_the_highest_J_per_lambda():
    val_acc = [0.95, 0.90, 0.80]
    goal = [0.20, 0.60, 0.95]
    # By hand: J(0)   = 0.95, 0.90, 0.80            -> 0
    #          J(0.2) = 0.800, 0.840, 0.830         -> 1
    #          J(0.6) = 0.500, 0.720, 0.890         -> 2
    assert select(val_acc, goal, [0.0, 0.2, 0.6]) == {0.0: 0, 0.2: 1, 0.6: 2}


def test_ties_go_to_the_earliest_candidate_and_nan_never_wins():
    assert best_index([0.7, 0.9, 0.9, 0.1]) == 1
    assert best_index([float("nan"), 0.2, 0.2]) == 1
    assert select([0.8, 0.8], [0.5, 0.5], [0.3]) == {0.3: 0}
    with pytest.raises(ValueError, match="no candidate has a finite score"):
        best_index([float("nan")])
    with pytest.raises(ValueError, match="one value per candidate"):
        select([0.8], [0.5, 0.5], [0.3])


def test_lambda_defaults_and_validation():
    assert check_lambdas(None, "privacy") == (0.2, 0.4, 0.6)
    assert check_lambdas(None, "privacy_mia") == (0.2, 0.4, 0.6)
    assert check_lambdas(None, "bias") == (0.15, 0.3, 0.5)
    assert check_lambdas([0.9, 0.1], "bias") == (0.9, 0.1)
    with pytest.raises(ValueError, match="unknown goal 'fairness'; expected one of privacy, privacy_mia, bias"):
        check_lambdas(None, "fairness")
    with pytest.raises(ValueError, match="duplicates \\[0.2\\]"):
        check_lambdas([0.2, 0.2], "privacy")
    with pytest.raises(ValueError, match="empty list"):
        check_lambdas([], "privacy")
    with pytest.raises(ValueError, match="each lambda must be in \\[0, 1\\]; got 2.0"):
        check_lambdas([2], "privacy")


# ----------------------------------------------------------------------------- search spaces
def test_points_are_the_product_of_the_axes_and_each_value_updates_the_grid():
    space = {
        "width": {"key": "model.init_args.network.init_args.width", "values": [0.5, 1.0]},
        "method": [
            {"name": "a", "set": {"model.init_args.unlearner": {"class_path": "A"}}},
            {
                "name": "b",
                "set": {"model.init_args.unlearner": {"class_path": "B"}},
                "grid": {"model.init_args.unlearner.init_args.lr": [0.1, 0.2], "trainer.max_epochs": [1]},
            },
        ],
    }
    candidates = expand_space(space, {"trainer.max_epochs": [2, 3]})
    assert [c.name for c in candidates] == [
        "width=0.5/method=a/max_epochs=2",
        "width=0.5/method=a/max_epochs=3",
        "width=0.5/method=b/max_epochs=1,lr=0.1",
        "width=0.5/method=b/max_epochs=1,lr=0.2",
        "width=1.0/method=a/max_epochs=2",
        "width=1.0/method=a/max_epochs=3",
        "width=1.0/method=b/max_epochs=1,lr=0.1",
        "width=1.0/method=b/max_epochs=1,lr=0.2",
    ]
    b = candidates[2]
    assert b.point == "width=0.5/method=b"
    # Axis overrides first, in axis order, then the grid cell: as they are given to the parser.
    assert [k for k, _ in b.overrides] == [
        "model.init_args.network.init_args.width",
        "model.init_args.unlearner",
        "trainer.max_epochs",
        "model.init_args.unlearner.init_args.lr",
    ]


@pytest.mark.parametrize(
    "space, grid, message",
    [
        ({"w": {"key": "a.b", "values": []}}, None, "space.w.values must be a non-empty list"),
        ({"w": [{"name": "x"}, {"name": "x"}]}, None, "names a value twice"),
        ({"w": [{"name": "x", "sets": {}}]}, None, "entries are \\{name, set, grid\\} mappings"),
        ({"w": 3}, None, "must be \\{key: dotted.key, values"),
        (None, {"trainer..max_epochs": [1]}, "is not a dotted key"),
        (None, {"lr": 0.1}, "must be a non-empty list of values"),
        (None, {"lr": [0.1, 0.1]}, "lists a value twice"),
    ],
)
def test_bad_search_spaces_are_rejected_with_the_allowed_form(space, grid, message):
    with pytest.raises(ValueError, match=message):
        expand_space(space, grid)


# ----------------------------------------------------------------------------- statistics
def test_t_interval_matches_scipy_on_known_data():
    x = [0.81, 0.79, 0.86, 0.83, 0.77]
    e = mean_ci(x)
    low, high = stats.t.interval(0.95, len(x) - 1, loc=np.mean(x), scale=stats.sem(x))
    assert (e.mean, e.n) == (pytest.approx(np.mean(x)), 5)
    assert (e.low, e.high) == (pytest.approx(low), pytest.approx(high))
    # scipy's one-sample t-test at the interval's bounds gives p = 0.05 exactly.
    assert stats.ttest_1samp(x, e.high).pvalue == pytest.approx(0.05)
    one = mean_ci([0.5, float("nan")])
    assert one.n == 1 and one.mean == 0.5 and np.isnan(one.low)
    assert mean_ci([]).n == 0


def test_paired_difference_is_the_interval_of_per_seed_differences():
    a = {0: 0.90, 1: 0.85, 2: 0.88, 3: 0.95}
    b = {0: 0.80, 1: 0.80, 2: 0.81, 5: 0.1}  # seed 3 and 5 are not shared
    e = paired_difference(a, b)
    d = [0.10, 0.05, 0.07]
    ref = stats.ttest_rel([0.90, 0.85, 0.88], [0.80, 0.80, 0.81]).confidence_interval(0.95)
    assert e.n == 3 and e.mean == pytest.approx(np.mean(d))
    assert (e.low, e.high) == (pytest.approx(ref.low), pytest.approx(ref.high))


def test_an_estimate_prints_as_mean_and_interval_and_states_its_direction():
    e = paired_difference({0: 0.9, 1: 0.8, 2: 0.85}, {0: 0.8, 1: 0.71, 2: 0.74})
    assert f"{e:+.2f}" == f"{e.mean:+.2f} [{e.low:+.2f}, {e.high:+.2f}]" and f"{e}".count(".") == 3
    assert f"{Estimate(0.5, 0.25, 0.75, 3)}" == "0.500 [0.250, 0.750]"
    assert e.low > 0 and e.direction == "higher"
    assert Estimate(-0.2, -0.3, -0.1, 5).direction == "lower"
    assert Estimate(0.1, -0.1, 0.3, 5).direction == "no significant difference"
    # One seed: no interval, so no verdict either way.
    assert mean_ci([0.4]).direction == "no significant difference"


def test_the_chosen_cells_read_back_from_selection_text():
    names = {
        2: "hidden=[32, 16]/max_epochs=10,lr=0.05",
        0: "hidden=[8]/max_epochs=2,lr=0.005,hidden=[32, 16]",
        1: "budget=0.1",
    }
    text = format_chosen(names)
    assert text.startswith("seed 0: max_epochs=2,lr=0.005,hidden=[32, 16]; seed 1: ")
    assert parse_chosen(text) == {
        0: {"max_epochs": "2", "lr": "0.005", "hidden": "[32, 16]"},
        1: {"budget": "0.1"},
        2: {"max_epochs": "10", "lr": "0.05"},
    }
    assert parse_chosen(format_chosen({3: "base"})) == {3: {}}
    for bad in ("", "max_epochs=2", "seed x: lr=0.1", "seed 0 lr=0.1"):
        with pytest.raises(ValueError, match="not a selection.csv 'chosen' entry"):
            parse_chosen(bad)


def test_a_study_keeps_its_base_config_and_refuses_another():
    import optuna

    study = optuna.create_study(directions=["maximize"] * 2)
    base = "trainer:\n  max_epochs: 1\n  devices: 1\ndata:\n  batch_size: 64\n"
    check_same_base(study, base)
    assert study.user_attrs["base_config"] == base
    check_same_base(study, base)
    check_same_base(
        study, "# same values, other layout\ndata: {batch_size: 64}\ntrainer: {devices: 1, max_epochs: 1}\n"
    )
    with pytest.raises(
        ValueError, match=r"another base config \(data.batch_size: 64 → 32; trainer.max_epochs: 1 → \(unset\)\)"
    ):
        check_same_base(study, "trainer:\n  devices: 1\ndata:\n  batch_size: 32\n")
    with pytest.raises(ValueError, match=r"data.a: \(unset\) → 1; .*; …\)"):
        check_same_base(study, base + "".join(f"  {k}: 1\n" for k in "abcdef"))
    assert study.user_attrs["base_config"] == base  # a refused config is not recorded
    # A base value every candidate overrides ran in no trial: changing it is not a change. A key
    # that only some candidates set still counts.
    every = [Candidate((), (("trainer.max_epochs", e),), (("trainer.max_epochs", e),)) for e in (2, 5)]
    longer = base.replace("max_epochs: 1", "max_epochs: 10")
    check_same_base(study, longer, candidates=every)
    some = [*every, Candidate((), (), ())]
    with pytest.raises(ValueError, match=r"trainer.max_epochs: 1 → 10"):
        check_same_base(study, longer, candidates=some)
    # A mapping a candidate sets covers the leaves it names, not the base's other keys under it.
    mappings = [Candidate((), (), (("data", {"batch_size": b}),)) for b in (16, 32)]
    check_same_base(study, base.replace("batch_size: 64", "batch_size: 128"), candidates=mappings)
    with pytest.raises(ValueError, match=r"data.shuffle: \(unset\) → False"):
        check_same_base(study, base.replace("batch_size: 64", "batch_size: 64\n  shuffle: false"), candidates=mappings)
    assert study.user_attrs["base_config"] == base  # the stored config stays the one the study began with


# ----------------------------------------------------------------------------- studies on digits
SPACE = {
    "method": [
        {"name": "ngp"},
        {
            "name": "ft",
            "set": {
                "model.init_args.unlearner": {"class_path": "unlearn_pl.unlearners.Finetune", "init_args": {"lr": 0.02}}
            },
        },
    ]
}
GRID = {"model.init_args.unlearner.init_args.lr": [0.01, 0.05]}


def _base(tmp_path: Path) -> list[str]:
    path = tmp_path / "base.yaml"
    path.write_text(yaml.safe_dump(STUDY))
    return ["--config", str(path)]


def _untimed(row: dict) -> dict:
    """A table row without what depends on timing: the trial number, the durations with their
    intervals, and the durations in the list of clipped intervals (a duration's stops at 0)."""
    out = {k: v for k, v in row.items() if k != "trial" and not k.startswith(DURATIONS)}
    if "ci_clipped" in out:
        out["ci_clipped"] = "; ".join(m for m in out["ci_clipped"].split("; ") if m not in DURATIONS)
    return out


def _comparable(rows):
    return sorted(
        (tuple(sorted((k, round(v, 6) if isinstance(v, float) else v) for k, v in _untimed(r).items())) for r in rows),
        key=repr,
    )


@pytest.mark.slow  # 2 × 8 trials of a tiny MLP: ~60 s on a shared CPU
def test_two_workers_give_the_trials_table_of_one_worker(tmp_path):
    base = _base(tmp_path)
    kwargs = dict(space=SPACE, grid=GRID, seeds=[0, 1], noise_floor=False, quiet=True)
    one = run_study(base, runner=run_cli, output_dir=tmp_path / "one", workers=1, **kwargs)
    two = run_study(base, runner=run_cli, output_dir=tmp_path / "two", workers=2, **kwargs)
    assert [r["state"] for r in one.trials] == ["COMPLETE"] * 8
    assert _comparable(one.trials) == _comparable(two.trials)
    assert (tmp_path / "two" / "study" / "trials.csv").is_file() and (
        tmp_path / "two" / "study" / "pareto.png"
    ).is_file()
    # The choice per λ per seed is argmax J over that seed's candidates of the point.
    for row in one.selection:
        assert row["n"] == 2 and row["chosen"].startswith("seed 0: ")
    diffs = {(r["comparison"], r["metric"]) for r in one.differences}
    assert ("ft - ngp", "val_acc") in diffs


@pytest.mark.slow  # 12 trials of a tiny MLP: ~30 s
def test_the_no_op_candidate_scores_the_original_and_the_reference_curves_are_kept(tmp_path):
    result = run_study(
        _base(tmp_path),
        runner=run_cli,
        space=SPACE,
        grid=GRID,
        seeds=[0, 1],
        noise_floor=False,
        quiet=True,
        no_op=True,
        output_dir=tmp_path / "s",
    )
    trials = [r for r in result.trials if r["state"] == "COMPLETE"]
    assert len(trials) == 12
    no_op = [r for r in trials if r.get("no_op") is True]
    assert {(r["method"], r["seed"]) for r in no_op} == {(m, s) for m in ("ngp", "ft") for s in (0, 1)}
    for r in no_op:  # nothing trained: every metric of the "unlearned" model is the original's
        for metric in ("val_acc", "forget_acc", "test_acc", "retain_acc", "forget_loss"):
            assert r[metric] == r[f"original/{metric}"], metric
    assert all(r["forget_loss"] != r["original/forget_loss"] for r in trials if r.get("no_op") is not True)
    for row in result.selection:  # a no-op choice is counted; lr has two values, never an edge
        chosen = row["chosen"].count("no_op=true")
        assert row["grid_edge"] == (f"no_op: {chosen} of 2" if chosen else "")

    curves = _csv_rows(result.folder / "reference_curves.csv")
    epochs = STUDY["model"]["init_args"]["references"]["init_args"]["recipe"]["epochs"]
    keys = {(r["method"], r["seed"], r["model"]) for r in curves}
    assert keys == {(m, s, k) for m in ("ngp", "ft") for s in ("0", "1") for k in ("original", "oracle")}
    for key in keys:
        rows = [r for r in curves if (r["method"], r["seed"], r["model"]) == key]
        assert [int(r["epoch"]) for r in rows] == list(range(1, epochs + 1))
        assert all(0 <= float(r["train_acc"]) <= 1 for r in rows)
        assert float(rows[-1]["train_loss"]) < float(rows[0]["train_loss"])


def _csv_rows(path: Path) -> list[dict[str, str]]:
    import csv

    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # one study point with its noise floor: ~20 s
def test_a_study_reports_the_noise_floor_next_to_the_gaps(tmp_path):
    result = run_study(
        _base(tmp_path),
        runner=run_cli,
        grid={"trainer.max_epochs": [1]},
        seeds=[0, 1],
        lambdas=[0.5],
        output_dir=tmp_path / "s",
        quiet=True,
    )
    (row,) = result.selection
    assert row["n"] == 2
    assert "forget_acc_gap" in row and "forget_acc_gap_noise_floor" in row
    assert 0 <= row["forget_acc_gap_noise_floor"] <= 1
    assert not (tmp_path / "s" / "study" / "differences.png").exists()  # no axis: nothing to compare
    # ... yet its differences table still has a header, so a CSV reader finds an empty table.
    assert (tmp_path / "s" / "study" / "differences.csv").read_text().splitlines() == [",".join(DIFFERENCE_COLUMNS)]


def _floor_trials(result) -> dict[tuple[str, int], dict]:
    storage = journal_storage(result.folder / "study.log")
    floor = optuna.load_study(study_name=f"{result.study.study_name}.noise_floor", storage=storage)
    return {
        (t.params["point"], t.params["seed"]): t.user_attrs["metrics"]
        for t in floor.get_trials(states=(TrialState.COMPLETE,))
    }


@pytest.mark.slow  # 4 trials and 2 + 4 noise-floor runs of a tiny MLP: ~20 s
def test_points_that_differ_in_what_is_unlearned_share_the_noise_floor(tmp_path, monkeypatch):
    """Two unlearners (the points ngp and ft) have the same retrains: one noise-floor run per seed
    serves both, with the metrics each point's own run gives; a study whose floor ran per point
    resumes without running it again and reports the same tables."""
    kwargs = dict(space=SPACE, grid={"trainer.max_epochs": [1]}, seeds=[0, 1], lambdas=[0.5], quiet=True)
    shared = run_study(_base(tmp_path), runner=run_cli, output_dir=tmp_path / "shared", **kwargs)
    assert sorted(_floor_trials(shared)) == [("method=ft", 0), ("method=ft", 1)]

    with monkeypatch.context() as m:  # every point its own floor run, as studies ran before sharing
        m.setattr(NoiseFloorObjective, "shared", lambda self: {p: p for p in self.points()})
        own = run_study(_base(tmp_path), runner=run_cli, output_dir=tmp_path / "own", **kwargs)
    per_point = _floor_trials(own)
    assert len(per_point) == 4
    for seed in (0, 1):  # what sharing assumes: the points' runs are the same run
        assert per_point["method=ngp", seed] == per_point["method=ft", seed] == _floor_trials(shared)["method=ft", seed]
    assert _comparable(own.selection) == _comparable(shared.selection)
    floor_csv = (tmp_path / "own" / "study" / "noise_floor.csv").read_text()
    assert floor_csv == (tmp_path / "shared" / "study" / "noise_floor.csv").read_text()

    resumed = run_study(_base(tmp_path), runner=run_cli, output_dir=tmp_path / "own", **kwargs)
    assert len(_floor_trials(resumed)) == 4 and len(resumed.study.trials) == 4  # nothing ran again
    assert (tmp_path / "own" / "study" / "noise_floor.csv").read_text() == floor_csv


@pytest.mark.slow  # two trials of a tiny MLP: ~20 s
def test_an_open_search_runs_n_trials_with_a_multi_objective_sampler(tmp_path):
    import json

    result = run_study(
        _base(tmp_path),
        runner=run_cli,
        space=SPACE,
        grid=GRID,
        seeds=[0, 1],
        search="open",
        n_trials=2,
        noise_floor=False,
        output_dir=tmp_path / "open",
        quiet=True,
    )
    assert len(result.trials) == 2 and result.study.directions[1].name == "MAXIMIZE"
    summary = json.loads((tmp_path / "open" / "study" / "study.json").read_text())
    assert summary["search"] == "open" and summary["pareto_front"]  # the front of validation accuracy vs goal
    with pytest.raises(ValueError, match="'open' with n_trials"):
        run_study(_base(tmp_path), runner=run_cli, grid=GRID, search="open", output_dir=tmp_path / "x")
    # One lender named bare is one name, not its letters.
    with pytest.raises(ValueError, match=re.escape("reuse: ['small'] cannot lend trials")):
        run_study(_base(tmp_path), runner=run_cli, grid=GRID, search="open", n_trials=2, reuse="small")


def test_a_trial_resolves_the_config_fit_prints(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    base = _base(tmp_path)
    objective = StudyObjective(base, expand_space(SPACE, GRID), [3], "privacy", str(tmp_path / "s"), runner=run_cli)
    candidate = objective.candidates[3]  # ft, lr=0.05
    args = objective.fit_args(candidate, seed=3, number=7)
    with pytest.raises(SystemExit):
        UnlearningCLI(args=[*args, "--print_config"])
    from_study = capsys.readouterr().out
    by_hand = [
        "fit",
        *base,
        "--model.init_args.unlearner",
        '{"class_path": "unlearn_pl.unlearners.Finetune", "init_args": {"lr": 0.02}}',
        "--model.init_args.unlearner.init_args.lr",
        "0.05",
        "--seed_everything",
        "3",
        "--data.init_args.seed",
        "3",
        "--model.init_args.references.init_args.recipe.seed",
        "3",
        "--trainer.default_root_dir",
        str(tmp_path / "s" / "trials" / "7"),
        "--model.init_args.reference_results_dir",
        str(tmp_path / "s" / "reference_results"),
        "--print_config",
    ]
    with pytest.raises(SystemExit):
        UnlearningCLI(args=by_hand)
    assert from_study == capsys.readouterr().out
    config = yaml.safe_load(from_study)
    assert config["model"]["init_args"]["unlearner"]["class_path"] == "unlearn_pl.unlearners.Finetune"
    assert config["model"]["init_args"]["unlearner"]["init_args"]["lr"] == 0.05
    assert config["data"]["init_args"]["seed"] == 3 and config["seed_everything"] == 3


def _count_reference_forwards(monkeypatch) -> list[str]:
    """Every reference model forward pass of the validation steps, by model name."""
    calls: list[str] = []
    original = UnlearningModule.reference

    def counted(self, name):
        calls.append(name)
        return original(self, name)

    monkeypatch.setattr(UnlearningModule, "reference", counted)
    return calls


@pytest.mark.slow  # 1 + 4 trials of a tiny MLP: ~25 s
def test_a_study_evaluates_each_reference_once_per_key(tmp_path, monkeypatch):
    calls = _count_reference_forwards(monkeypatch)
    kwargs = dict(noise_floor=False, quiet=True)
    one = run_study(_base(tmp_path), runner=run_cli, seeds=[0], output_dir=tmp_path / "one", **kwargs)
    per_key = len(calls)  # one trial: one validation of each reference model
    assert [r["state"] for r in one.trials] == ["COMPLETE"] and per_key > 0
    calls.clear()
    # 2 candidates × 2 seeds: the candidates of a seed share its references; the other seed's differ.
    four = run_study(_base(tmp_path), runner=run_cli, grid=GRID, seeds=[0, 1], output_dir=tmp_path / "four", **kwargs)
    assert [r["state"] for r in four.trials] == ["COMPLETE"] * 4
    assert len(calls) == 2 * per_key
    stored = sorted((tmp_path / "four" / "study" / "reference_results").glob("results-*.pt"))
    assert len(stored) == 2
    # The trials reuse the stored results: the same metrics as evaluating them in the trial.
    by_seed = {r["seed"]: r for r in four.trials if r["lr"] == 0.01}
    assert by_seed[0]["oracle/val_acc"] == pytest.approx(one.trials[0]["oracle/val_acc"])


def test_stored_reference_results_are_verified_by_key(tmp_path):
    store = ReferenceResultsStore(tmp_path)
    held = ReferenceResults("k1", {"oracle": {"val": {"loss": torch.tensor([0.5, 1.0])}}})
    store.save(held)
    loaded = store.load("k1")
    assert loaded is not None and torch.equal(loaded.results["oracle"]["val"]["loss"], torch.tensor([0.5, 1.0]))
    assert store.load("k2") is None
    store.path("k1").rename(store.path("k2"))  # a file whose content is another key's
    assert store.load("k2") is None
    store.path("k3").write_bytes(b"truncated")
    assert store.load("k3") is None


def test_a_run_that_fails_mid_evaluation_releases_the_results_lock(tmp_path):
    from conftest import FAST_RECIPE, fast_trainer, tiny_mlp
    from filelock import Timeout
    from lightning.pytorch.callbacks import Callback

    from unlearn_pl import ReferenceModels, UnlearningDataModule
    from unlearn_pl.data import Digits, RandomForget
    from unlearn_pl.metrics import SplitAccuracy

    class Fails(Callback):
        def on_validation_batch_end(self, *args, **kwargs):
            raise RuntimeError("fails mid-evaluation")

    dm = UnlearningDataModule(Digits(), RandomForget(0.1), train_size=300, val_fraction=0.1, batch_size=64, seed=0)
    module = UnlearningModule(
        tiny_mlp(),
        references=ReferenceModels(recipe=FAST_RECIPE, cache_dir=str(tmp_path / "c")),
        metrics=[SplitAccuracy()],
        report=False,
        reference_results_dir=str(tmp_path / "r"),
    )
    trainer = fast_trainer(tmp_path, callbacks=[Fails()])
    with pytest.raises(RuntimeError, match="fails mid-evaluation"):
        trainer.validate(module, datamodule=dm, verbose=False)
    (lock_file,) = (tmp_path / "r").glob("*.lock")
    lock = FileLock(str(lock_file))
    try:
        lock.acquire(timeout=1)  # another run of this process would wait here forever otherwise
    except Timeout:
        pytest.fail("the failed run still holds the reference-results lock")
    lock.release()


@pytest.mark.slow  # two processes that import torch: ~20 s
def test_two_workers_needing_the_same_reference_model_train_it_once(tmp_path):
    ctx = multiprocessing.get_context("spawn")
    log = tmp_path / "trained.log"
    procs = [
        ctx.Process(target=_study_toys.prepare_references, args=(str(tmp_path / "cache"), str(log))) for _ in range(2)
    ]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    assert [p.exitcode for p in procs] == [0, 0]
    sizes = log.read_text().split()
    assert len(sizes) == 2 and len(set(sizes)) == 2  # original and oracle, each trained once, by one process
    assert len(list((tmp_path / "cache").glob("*.pt"))) == 2


@pytest.mark.slow  # a 2-process trial spawns twice (fit, then validate): ~25 s
def test_a_trial_on_two_ddp_processes_gives_the_metrics_of_one(tmp_path):
    """``--trainer.devices 2 --trainer.strategy ddp_spawn`` (gloo on CPU) inside a trial. The
    premise of ``test_ddp_parity.py``: split sizes divisible by the batch, an MLP, and half the
    batch per process, so both runs take the same optimizer steps. Tolerance: frozen references
    1e-6; the unlearned model's losses 1e-5 and accuracies 0.01 (one boundary example)."""
    import copy

    config = copy.deepcopy(STUDY)
    config["data"]["init_args"].update(
        train_size=1280,
        batch_size=64,
        eval_batch_size=64,
        forget={"class_path": "unlearn_pl.data.RandomForget", "init_args": {"size": 128}},
    )
    config["model"]["init_args"]["unlearner"] = {
        "class_path": "unlearn_pl.unlearners.Finetune",
        "init_args": {"lr": 0.05},
    }
    config["trainer"]["max_epochs"] = 2
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(config))
    base, kwargs = ["--config", str(tmp_path / "base.yaml")], dict(seeds=[0], noise_floor=False, quiet=True)
    (one,) = run_study(base, runner=run_cli, output_dir=tmp_path / "one", **kwargs).trials
    ddp = ["--trainer.devices", "2", "--trainer.strategy", "ddp_spawn", "--data.init_args.batch_size", "32"]
    (two,) = run_study([*base, *ddp], runner=run_cli, output_dir=tmp_path / "two", **kwargs).trials
    assert (one["state"], two["state"]) == ("COMPLETE", "COMPLETE"), two["error"]
    metrics = [k for k, v in one.items() if "/" in k or k.endswith(("_acc", "_loss", "_gap")) and isinstance(v, float)]
    assert len(metrics) > 20 and one["forget_acc"] != one["original/forget_acc"]  # it did unlearn
    for name in metrics:
        tol = 1e-6 if name.startswith(("original/", "oracle/")) else 1e-5 if "loss" in name else 0.01
        assert abs(two[name] - one[name]) <= tol, f"{name}: 2 processes {two[name]} vs one {one[name]}"


# ----------------------------------------------------------------------------- the tune subcommand
@pytest.mark.slow  # the tune subcommand end to end on digits: ~20 s
def test_cli_tune_runs_a_study_and_resumes_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    config = {
        **STUDY,
        "grid": GRID,
        "seeds": [0],
        "goal": "privacy",
        "output_dir": str(tmp_path / "out"),
        "noise_floor": False,
    }
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))
    UnlearningCLI(args=["tune", "--config", str(path), "--lambdas", "[0.1, 0.9]", "--study_name", "s"])
    folder = tmp_path / "out" / "s"
    assert "chosen per point and lambda" in capsys.readouterr().out
    rows = (folder / "trials.csv").read_text().splitlines()
    assert len(rows) == 1 + 2 and rows[0].startswith("trial,state,candidate,lr,seed,duration_s,")
    assert (folder / "study.log").is_file() and (folder / "base.yaml").is_file()
    assert "grid" not in yaml.safe_load((folder / "base.yaml").read_text())  # the base is a plain fit config
    # Running it again resumes the finished study: no new trial. It also resumes when the stored
    # config predates an argument whose default the resolved config now shows.
    import optuna

    from unlearn_pl.tuning import journal_storage

    stored = optuna.load_study(study_name="s", storage=journal_storage(folder / "study.log"))
    older = yaml.safe_load(stored.user_attrs["base_config"])
    del older["model"]["init_args"]["references"]["init_args"]["recipe"]["precision"]
    stored.set_user_attr("base_config", yaml.safe_dump(older))
    capsys.readouterr()
    UnlearningCLI(args=["tune", "--config", str(path), "--lambdas", "[0.1, 0.9]", "--study_name", "s"])
    assert len((folder / "trials.csv").read_text().splitlines()) == 3
    printed = capsys.readouterr().out
    # The summary shows the chosen cells, the one setting and that one point has nothing to compare.
    assert "seed 0: lr=0.01" in printed or "seed 0: lr=0.05" in printed
    assert "setting" in printed and "no paired differences to report" in printed
    # Resuming with another base config is refused, naming the changed value, and loses nothing:
    # the trials and the base.yaml they ran stay as they were.
    base, trials = (folder / "base.yaml").read_text(), (folder / "trials.csv").read_text()
    capsys.readouterr()
    with pytest.raises(SystemExit):
        UnlearningCLI(args=["tune", "--config", str(path), "--trainer.max_epochs", "2", "--study_name", "s"])
    assert "ran another base config (trainer.max_epochs: 1 → 2)" in capsys.readouterr().err
    assert (folder / "base.yaml").read_text() == base and (folder / "trials.csv").read_text() == trials


@pytest.mark.slow  # 4 + 2 digits trials: ~20 s
def test_a_grown_grid_reuses_the_completed_trials_and_runs_only_its_new_cells(tmp_path, monkeypatch, capsys):
    import json

    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    out = tmp_path / "out"
    config = {**STUDY, "space": SPACE, "seeds": [0], "goal": "privacy", "output_dir": str(out), "noise_floor": False}
    path = tmp_path / "study.yaml"
    path.write_text(yaml.safe_dump(config))

    def tune(name: str, lrs: list[float], *extra: str) -> None:
        grid = json.dumps({"model.init_args.unlearner.init_args.lr": lrs})
        UnlearningCLI(args=["tune", "--config", str(path), "--grid", grid, "--study_name", name, *extra])

    tune("small", [0.01, 0.05])
    capsys.readouterr()
    tune("grown", [0.01, 0.05, 0.1], "--reuse", '["small"]')
    assert "reuse: 4 completed trials copied from study 'small'" in capsys.readouterr().out
    small = {r["candidate"]: r for r in _csv_rows(out / "small" / "trials.csv")}
    grown = _csv_rows(out / "grown" / "trials.csv")
    assert len(grown) == 6 and {r["state"] for r in grown} == {"COMPLETE"}
    reused = [r for r in grown if r["reused_from"]]
    assert sorted(r["candidate"] for r in reused) == sorted(small)
    for r in reused:  # the copy is the trial that ran, pointing at its run folder
        origin = small[r["candidate"]]
        assert r["reused_from"] == f"small#{origin['trial']}" and r["run_dir"] == f"../small/{origin['run_dir']}"
        assert (r["forget_acc"], r["J(0.2)"], r["duration_s"]) == (
            origin["forget_acc"],
            origin["J(0.2)"],
            origin["duration_s"],
        )
    assert sorted(r["candidate"] for r in grown if not r["reused_from"]) == ["method=ft/lr=0.1", "method=ngp/lr=0.1"]
    # Each seed's choice is made over all three learning rates, the copies included.
    for row in _csv_rows(out / "grown" / "selection.csv"):
        point = [r for r in grown if r["method"] == row["method"]]
        best = max(point, key=lambda r: (float(r[f"J({float(row['lambda']):g})"]), -float(r["lr"])))
        assert row["chosen"] == f"seed 0: lr={best['lr']}"
    # Resuming copies nothing again and runs nothing, also when the base config's learning rate
    # changed: every candidate sets its own (the grid), so neither study ran the base's value. One
    # lender may be named bare.
    tune("grown", [0.01, 0.05, 0.1], "--model.init_args.unlearner.init_args.lr", "0.5", "--reuse", "small")
    assert "reuse: 0 completed trials copied" in capsys.readouterr().out
    assert len(_csv_rows(out / "grown" / "trials.csv")) == 6

    # Refused, before anything is stored: a lender that ran another base config, or a candidate
    # whose settings changed under its name (also when resuming the study itself), or no such study.
    changed = {
        **SPACE,
        "method": [
            SPACE["method"][0],
            {
                **SPACE["method"][1],
                "set": {
                    "model.init_args.unlearner": {
                        "class_path": "unlearn_pl.unlearners.Finetune",
                        "init_args": {"lr": 0.02, "momentum": 0.5},
                    }
                },
            },
        ],
    }
    for extra, message in [
        (
            ["--trainer.max_epochs", "2", "--reuse", '["small"]'],
            "reuse: study 'small' ran another base config (trainer.max_epochs: 1 → 2)",
        ),
        (
            ["--space", json.dumps(changed), "--reuse", '["small"]'],
            "reuse: study 'small' ran candidate 'method=ft/lr=0.01' with other settings (2 candidates",
        ),
        (
            ["--reuse", '["nowhere"]'],
            f"reuse: no study 'nowhere' to copy trials from: {out / 'nowhere' / 'study.log'} does not exist",
        ),
    ]:
        with pytest.raises(SystemExit):
            tune("refused", [0.01, 0.05, 0.1], *extra)
        assert message in capsys.readouterr().err
        assert not (out / "refused" / "study.log").exists()
    with pytest.raises(SystemExit):
        tune("small", [0.01, 0.05], "--space", json.dumps(changed))
    assert (
        "study 'small' in this storage ran candidate 'method=ft/lr=0.01' with other settings" in capsys.readouterr().err
    )
    with pytest.raises(SystemExit):
        tune("small", [0.01, 0.05, 0.1])
    assert (
        "has another search space (4 candidates, now 6); give another study name (reuse: ['small']"
        in capsys.readouterr().err
    )
    # Only a grid copies cells, and a study cannot lend to itself.
    for kwargs in ({"search": "open", "n_trials": 2, "study_name": "open"}, {"study_name": "small"}):
        with pytest.raises(ValueError, match="only a grid search copies cells, from studies other than itself"):
            run_study([], runner=run_cli, reuse=["small"], output_dir=out, **kwargs)


@pytest.mark.parametrize(
    "configs",
    [
        ["tuning/privacy_digits.yaml"],
        ["tuning/bias_digits.yaml"],
        ["experiments/privacy_base.yaml", "experiments/width_sweep.yaml"],
        ["experiments/del_base.yaml", "experiments/del_budget.yaml"],
        ["experiments/del_base.yaml", "experiments/del_localizers.yaml"],
        ["experiments/del_base.yaml", "experiments/del_ablation.yaml"],
    ],
)
def test_shipped_study_configs_parse_and_expand(configs, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    args = [a for c in configs for a in ("--config", str(REPO / "configs" / c))]
    with pytest.raises(SystemExit) as exit_:
        UnlearningCLI(args=["tune", *args, "--print_config"])
    assert exit_.value.code == 0
    printed = yaml.safe_load(capsys.readouterr().out)
    candidates = expand_space(printed.get("space"), printed.get("grid"))
    assert candidates and printed["seeds"]


def test_a_run_waiting_on_a_lock_says_so_naming_the_lock_file(tmp_path, caplog):
    import threading

    from unlearn_pl.utils.io import acquire_saying_so

    held, waiting, got = FileLock(str(tmp_path / "model.pt.lock")), FileLock(str(tmp_path / "model.pt.lock")), []

    def wait_then_release() -> None:
        acquire_saying_so(waiting, 0.05)
        got.append(True)
        waiting.release()

    held.acquire()
    waiter = threading.Thread(target=wait_then_release)
    with caplog.at_level("WARNING", logger="unlearn_pl"):
        waiter.start()
        for _ in range(600):  # until it says so, whatever the machine's load
            if any("waiting for" in r.getMessage() for r in caplog.records):
                break
            waiter.join(0.1)
        held.release()
        waiter.join(60)
    assert not waiter.is_alive() and got == [True]
    (record,) = [r for r in caplog.records if "waiting for" in r.getMessage()]
    assert str(tmp_path / "model.pt.lock") in record.getMessage()

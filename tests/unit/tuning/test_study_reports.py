"""A study's reports on made-up trials (``_study_toys.toy_runner``: the trial runner a study is
given, here one that trains nothing): the one setting per point and λ and its tie-break, verdicts
with n, MDE, TOST and Holm in differences.csv, gaps to the mean of two retrains, held-out scores,
bounded intervals, the line for a study with nothing to compare; and a stored base config that
lacks today's defaults still resumes."""

from __future__ import annotations

import contextlib
import copy
import csv
import io
import json
import pickle
import re
import sys
from pathlib import Path

import optuna
import pytest
import yaml
from statsmodels.stats.multitest import multipletests

from unlearn_pl.stats import compare_differences
from unlearn_pl.tuning import TIE_BREAK, StudyObjective, check_same_base, expand_space, parse_chosen, run_study
from unlearn_pl.tuning.checks import check_margins, check_scoring
from unlearn_pl.tuning.differences import split_of

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from _study_toys import toy_metrics, toy_runner

ARMS = {"arm": {"key": "toy.arm", "values": ["a", "b"]}}
LRS = [0.1, 0.2, 0.3]
SEEDS = [0, 1, 2, 3, 4]
VERDICT = re.compile(r"^(higher|lower|equivalent within ±[0-9.e-]+|inconclusive \(could detect ≥ [0-9.e-]+\))$")


def _toy_study(folder: Path, grid: list[float] = LRS, space: dict | None = ARMS, **kwargs):
    kwargs = {"seeds": SEEDS, "lambdas": [0.2, 0.5], "margin": {"test_acc": 0.05}, **kwargs}
    return run_study([], runner=toy_runner, space=space, grid={"toy.lr": grid}, output_dir=folder, **kwargs)


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def _j(val: float, forget: float, lam: float) -> float:
    return (1 - lam) * val + lam * (1 - abs(val - forget))


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    """The toy study (2 arms × 3 lrs × 5 seeds, noise floor on), its printed summary and tables."""
    folder = tmp_path_factory.mktemp("toy")
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        result = _toy_study(folder)
    study = folder / "study"
    return (
        result,
        out.getvalue(),
        {name: _rows(study / f"{name}.csv") for name in ("trials", "selection", "differences")},
        json.loads((study / "study.json").read_text()),
    )


def test_the_one_setting_is_the_cell_of_the_highest_mean_J(toy):
    result, printed, tables, summary = toy
    trials = [t for t in tables["trials"] if t["state"] == "COMPLETE"]
    for row in tables["selection"]:
        lam, arm = float(row["lambda"]), row["arm"]
        per_cell = {
            lr: {
                int(t["seed"]): _j(float(t["val_acc"]), float(t["forget_acc"]), lam)
                for t in trials
                if t["arm"] == arm and float(t["lr"]) == lr
            }
            for lr in LRS
        }
        means = {lr: sum(v.values()) / len(v) for lr, v in per_cell.items()}
        assert means[0.1] == pytest.approx(means[0.2]) and means[0.1] > means[0.3]  # a tie, by construction
        assert row["setting"] == "lr=0.1" and row["setting_n"] == "5"  # the tie goes to the earlier cell
        assert float(row["setting_J"]) == pytest.approx(means[0.1])
        assert float(row["setting_J_ci_low"]) < float(row["setting_J"]) < float(row["setting_J_ci_high"])
        assert row["setting_J_per_seed"] == "; ".join(f"seed {s}: {per_cell[0.1][s]:.4f}" for s in SEEDS)
        # Per seed, seed 0's best cell is lr 0.3: that mean is the optimistic one.
        assert parse_chosen(row["chosen"]) == {0: {"lr": "0.3"}, **{s: {"lr": "0.1"} for s in SEEDS[1:]}}
        assert float(row["J"]) > float(row["setting_J"])
    assert "seed 0: lr=0.3; seed 1: lr=0.1" in printed and "J per-seed choice (optimistic)" in printed
    assert TIE_BREAK in printed and summary["tie_break"] == TIE_BREAK
    assert [(a["arm"], a["lambda"], a["setting"]) for a in summary["answer"]] == [
        ("a", 0.2, "lr=0.1"),
        ("a", 0.5, "lr=0.1"),
        ("b", 0.2, "lr=0.1"),
        ("b", 0.5, "lr=0.1"),
    ]


def test_the_tie_break_follows_the_grid_order(tmp_path):
    result = _toy_study(tmp_path, grid=[0.2, 0.1, 0.3], quiet=True, noise_floor=False)
    assert {r["setting"] for r in result.selection} == {"lr=0.2"}


def test_differences_carry_n_mde_tost_and_holm_verdicts(toy):
    _, printed, tables, summary = toy
    rows = tables["differences"]
    assert {r["comparison"] for r in rows} == {"b - a"} and all(VERDICT.match(r["verdict"]) for r in rows)
    assert all(VERDICT.match(r["verdict_holm"]) for r in rows)
    by = {(r["metric"], float(r["lambda"])): r for r in rows}
    for lam in (0.2, 0.5):
        assert by[("abs_forget_acc_target_gap", lam)]["verdict"] == "higher"  # arm b forgets 0.03 less
        assert by[("test_acc", lam)]["verdict"] == "equivalent within ±0.05"  # within ±0.002, margin 0.05
        assert by[("test_acc", lam)]["margin"] == "0.05" and by[("J", lam)]["margin"] == "nan"
    # Recomputed from the chosen trials: seed 0 chose lr 0.3 in both arms, the other seeds lr 0.1.
    chosen = {
        (t["arm"], int(t["seed"])): t for t in tables["trials"] if float(t["lr"]) == (0.3 if t["seed"] == "0" else 0.1)
    }
    d = [float(chosen[("b", s)]["test_acc"]) - float(chosen[("a", s)]["test_acc"]) for s in SEEDS]
    expected = compare_differences(d, margin=0.05, value_range=(-1, 1))
    row = by[("test_acc", 0.2)]
    assert (int(row["n"]), float(row["mde"]), float(row["tost_p"])) == (
        5,
        pytest.approx(expected.mde),
        pytest.approx(expected.tost_p),
    )
    # Holm over the claim's settings (its λ values), as statsmodels adjusts them.
    claim = [by[("mia_efficacy", lam)] for lam in (0.2, 0.5)]
    adjusted = multipletests([float(r["p_value"]) for r in claim], method="holm")[1]
    assert [float(r["p_value_holm"]) for r in claim] == pytest.approx(list(adjusted))
    assert by[("abs_forget_acc_target_gap", 0.2)]["claim"] == "higher in 2 of 2 (Holm)"
    assert "arm b - a, abs_forget_acc_target_gap: higher in 2 of 2 (Holm)" in printed
    assert "arm b - a, test_acc: equivalent within ±0.05 in 2 of 2 (Holm)" in printed
    assert {
        "axis": "arm",
        "comparison": "b - a",
        "metric": "test_acc",
        "settings": 2,
        "claim": "equivalent within ±0.05 in 2 of 2 (Holm)",
    } in summary["claims"]
    assert (by[("J", 0.2)]["split"], by[("J_test", 0.2)]["split"], by[("forget_acc", 0.2)]["split"]) == (
        "val",
        "test",
        "forget",
    )
    for r in rows:  # a difference of a bounded metric stays in the range of a difference
        if r["metric"].endswith(("_acc", "_target_gap")) or r["metric"] in ("J", "J_test", "mia_efficacy"):
            assert -1 <= float(r["ci_low"]) and float(r["ci_high"]) <= 1


def test_gaps_are_to_the_mean_of_the_two_retrains_and_the_floor_is_kept(toy):
    result, _, tables, _ = toy
    row = next(r for r in tables["selection"] if r["arm"] == "a" and r["lambda"] == "0.5")
    assert row["target_retrains"] == "5"
    chosen = [t for t in tables["trials"] if t["arm"] == "a" and float(t["lr"]) == (0.3 if t["seed"] == "0" else 0.1)]
    # toy_metrics: the independent retrain's forget accuracy is the oracle's + 0.02.
    gaps = [float(t["forget_acc"]) - (float(t["oracle/forget_acc"]) + 0.01) for t in chosen]
    assert float(row["forget_acc_target_gap"]) == pytest.approx(sum(gaps) / 5)
    assert float(row["abs_forget_acc_target_gap"]) == pytest.approx(sum(map(abs, gaps)) / 5)
    efficacy = [abs(float(t["mia_efficacy"]) - 0.32) for t in chosen]  # oracle 0.30, retrain 0.34
    assert float(row["abs_mia_efficacy_target_gap"]) == pytest.approx(sum(efficacy) / 5)
    assert float(row["forget_acc_gap_noise_floor"]) == pytest.approx(0.02)
    assert float(row["mia_efficacy_gap_noise_floor"]) == pytest.approx(0.04)


def test_every_completed_trial_carries_its_gaps_to_its_seeds_target(toy):
    _, _, tables, _ = toy
    completed = [t for t in tables["trials"] if t["state"] == "COMPLETE"]
    assert completed
    for t in completed:  # toy_metrics: the independent retrain = the oracle + 0.02 (forget), + 0.04 (MIA-efficacy)
        gap = float(t["forget_acc"]) - (float(t["oracle/forget_acc"]) + 0.01)
        assert float(t["forget_acc_target_gap"]) == pytest.approx(gap)
        assert float(t["abs_forget_acc_target_gap"]) == pytest.approx(abs(gap))
        assert float(t["abs_mia_efficacy_target_gap"]) == pytest.approx(abs(float(t["mia_efficacy"]) - 0.32))
        assert float(t["test_acc_target_gap"]) == pytest.approx(float(t["test_acc"]) - 0.9)  # both retrains 0.9


def test_without_the_noise_floor_the_target_is_the_oracle(tmp_path):
    result = _toy_study(tmp_path, quiet=True, noise_floor=False, seeds=[1, 2])
    row = result.selection[0]
    oracle = [toy_metrics("a", 0.1, s)["oracle/forget_acc"] for s in (1, 2)]
    forget = [toy_metrics("a", 0.1, s)["unlearned/forget_acc"] for s in (1, 2)]
    assert row["target_retrains"] == 0 and "forget_acc_gap_noise_floor" not in row
    assert row["forget_acc_target_gap"] == pytest.approx(sum(f - o for f, o in zip(forget, oracle, strict=True)) / 2)


def test_the_choice_is_scored_on_test_data_beside_validation(toy, tmp_path):
    _, printed, tables, summary = toy
    trials = {(t["arm"], t["lr"], t["seed"]): t for t in tables["trials"]}
    t = trials[("b", "0.1", "3")]
    test, forget = float(t["test_acc"]), float(t["forget_acc"])
    assert float(t["J_test(0.5)"]) == pytest.approx(_j(test, forget, 0.5))
    assert float(t["goal_privacy_test"]) == pytest.approx(1 - abs(test - forget))
    row = next(r for r in tables["selection"] if r["arm"] == "b" and r["lambda"] == "0.5")
    chosen = [trials[("b", "0.3" if s == 0 else "0.1", str(s))] for s in SEEDS]
    assert float(row["J_test"]) == pytest.approx(sum(float(c["J_test(0.5)"]) for c in chosen) / 5)
    assert float(row["J"]) == pytest.approx(sum(float(c["J(0.5)"]) for c in chosen) / 5)  # the validation J
    # The oracle's own held-out J, and how far the choice stays from it (the toy logs no original).
    oracle = [_j(float(c["oracle/test_acc"]), float(c["oracle/forget_acc"]), 0.5) for c in chosen]
    assert float(row["oracle/J_test"]) == pytest.approx(sum(oracle) / 5)
    assert float(row["J_test_gap"]) == pytest.approx(float(row["J_test"]) - sum(oracle) / 5)
    assert "original/J_test" not in row and "original/J_test_gap" not in row
    assert "validation data chooses, test data scores the choice (J_test)" in printed
    assert summary["score_on"] == "test" and "held_out" in summary["scoring"]
    on_val = _toy_study(tmp_path, quiet=True, noise_floor=False, score_on="val", seeds=[1, 2])
    assert not any(k.startswith("J_test") for r in on_val.selection + on_val.trials for k in r)


def test_bounded_intervals_stay_in_their_range_and_say_so(toy):
    _, _, tables, _ = toy
    for row in tables["selection"]:
        assert float(row["retain_acc_ci_high"]) == 1.0 and "retain_acc" in row["ci_clipped"].split("; ")
        for column, value in row.items():
            if column.endswith(("_ci_low", "_ci_high")) and column.split("_ci_")[0].endswith(("_acc", "J", "J_test")):
                assert 0.0 <= float(value) <= 1.0, column


def test_a_study_with_nothing_to_compare_says_so_in_one_line(tmp_path, capsys):
    result = _toy_study(tmp_path, space=None, noise_floor=False, seeds=[1, 2])
    line = "no paired differences to report: the study has no axis with two values to compare"
    assert result.differences == [] and line in capsys.readouterr().out.splitlines()
    assert json.loads((tmp_path / "study" / "study.json").read_text())["claims"] == line


def test_scoring_and_margins_are_checked_before_the_first_trial(tmp_path, capsys):
    assert check_scoring("bias", "test") == "test" and check_margins({"test_acc": 1}) == {"test_acc": 1.0}
    assert (check_scoring("privacy", None), check_scoring("privacy_mia", None)) == ("test", "val")
    with pytest.raises(ValueError, match="score_on must be one of val, test; got 'train'"):
        check_scoring("privacy", "train")
    with pytest.raises(ValueError, match="privacy_mia .* give score_on val"):
        check_scoring("privacy_mia", "test")
    with pytest.raises(ValueError, match=r"margin\['test_acc'\] must be a positive finite number .* got -0.1"):
        check_margins({"test_acc": -0.1})
    with pytest.raises(ValueError, match="margin must be a mapping"):
        check_margins(0.05)
    with pytest.raises(ValueError, match="must be a positive finite number"):
        _toy_study(tmp_path, margin={"test_acc": float("inf")})
    assert not (tmp_path / "study" / "trials").exists() and not (tmp_path / "study" / "study.log").exists()
    _toy_study(tmp_path, margin={"tset_acc": 0.05}, space=ARMS, seeds=[1, 2], noise_floor=False)
    assert "margin: no compared metric is named tset_acc" in capsys.readouterr().out


def test_split_of_names_the_data_a_metric_is_computed_on():
    assert [
        split_of(m)
        for m in (
            "J",
            "goal",
            "J_test",
            "goal_test",
            "test_acc",
            "abs_forget_acc_target_gap",
            "oracle/retain_acc",
            "mia_efficacy",
            "seconds",
        )
    ] == ["val", "val", "test", "test", "test", "forget", "retain", "", ""]


def test_the_study_objective_travels_to_workers_with_its_runner(tmp_path):
    objective = StudyObjective(
        [], expand_space(ARMS, {"toy.lr": LRS}), SEEDS, "privacy", str(tmp_path), runner=toy_runner
    )
    assert pickle.loads(pickle.dumps(objective)).runner is toy_runner


# ----------------------------------------------------------------------------- resuming with today's defaults
def test_a_stored_config_without_todays_defaults_resumes_and_a_changed_value_is_refused(tmp_path, monkeypatch):
    from _study_toys import STUDY

    from unlearn_pl.cli import UnlearningCLI, run_cli
    from unlearn_pl.cli.tune import TUNE_ARGS
    from unlearn_pl.tuning.stored import resolver

    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    config = copy.deepcopy(STUDY)
    del config["model"]["init_args"]["metrics"]  # the default metrics, which an older config printed as null
    (tmp_path / "study.yaml").write_text(yaml.safe_dump(config))
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed), pytest.raises(SystemExit):
        UnlearningCLI(args=["tune", "--config", str(tmp_path / "study.yaml"), "--print_config"])
    today = {k: v for k, v in yaml.safe_load(printed.getvalue()).items() if k not in TUNE_ARGS and k != "subcommand"}
    # What a study stored before the recipe had a precision and the module an execution argument,
    # and when the default metrics printed as null.
    older = copy.deepcopy(today)
    older["model"]["init_args"]["metrics"] = None
    del older["model"]["init_args"]["references"]["init_args"]["recipe"]["precision"]
    del older["model"]["init_args"]["execution"]
    study = optuna.create_study(directions=["maximize"] * 2)
    check_same_base(study, yaml.safe_dump(older))
    with pytest.raises(ValueError, match=r"recipe.precision: \(unset\) → 32-true"):
        check_same_base(study, yaml.safe_dump(today))  # without the parser's defaults every key counts
    check_same_base(study, yaml.safe_dump(today), resolver(run_cli))  # resumes: only defaults were added
    changed = copy.deepcopy(today)
    changed["model"]["init_args"]["references"]["init_args"]["recipe"]["precision"] = "64-true"
    changed["model"]["init_args"]["metrics"] = [{"class_path": "unlearn_pl.metrics.SplitAccuracy"}]
    with pytest.raises(
        ValueError,
        match=r"another base config \(model.init_args.metrics: None → .*SplitAccuracy.*; "
        r"model.init_args.references.init_args.recipe.precision: \(unset\) → 64-true\)",
    ):
        check_same_base(study, yaml.safe_dump(changed), resolver(run_cli))
    assert study.user_attrs["base_config"] == yaml.safe_dump(older)


def test_the_tune_subcommand_runs_on_lightnings_own_trainer(tmp_path, monkeypatch):
    from _study_toys import STUDY
    from lightning.pytorch import Trainer

    from unlearn_pl.cli import UnlearningCLI, run_cli

    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])
    (tmp_path / "base.yaml").write_text(yaml.safe_dump(STUDY))
    cli = run_cli(["--config", str(tmp_path / "base.yaml")], run=False)
    assert type(cli.trainer) is Trainer and not hasattr(cli.trainer, "tune")
    assert callable(UnlearningCLI.tune) and UnlearningCLI.trial_runner is run_cli


def test_the_one_setting_competes_among_the_cells_completed_on_the_most_seeds():
    from unlearn_pl.tuning.choice import Run, best_setting

    a, b, c = expand_space(None, {"toy.lr": [0.1, 0.2, 0.3]})

    def run(candidate, order, seed, val):
        return Run(candidate, order, seed, {"val_acc": val, "forget_acc": val}, {"privacy": 1.0})

    # lr 0.1 is best but failed on seed 2; lr 0.3 beats lr 0.2 on the three seeds both completed.
    per_seed = {
        0: [run(a, 0, 0, 0.99), run(b, 1, 0, 0.80), run(c, 2, 0, 0.85)],
        1: [run(a, 0, 1, 0.99), run(b, 1, 1, 0.80), run(c, 2, 1, 0.85)],
        2: [run(b, 1, 2, 0.80), run(c, 2, 2, 0.85)],
    }
    assert {s: r.cell for s, r in best_setting(per_seed, "privacy", 0.5).items()} == {
        0: "lr=0.3",
        1: "lr=0.3",
        2: "lr=0.3",
    }
    assert best_setting({}, "privacy", 0.5) == {}


def test_grid_edge_counts_the_choices_at_either_end_of_a_numeric_grid(toy):
    """lr 0.3 is the best cell on seed 0 only; lr 0.1 and 0.2 tie elsewhere and the tie goes to 0.1:
    both ends of the three-value grid are chosen, and the counts match the `chosen` column."""
    _, _, tables, _ = toy
    assert tables["selection"]
    for row in tables["selection"]:
        cells = [part.split(": ")[1] for part in row["chosen"].split("; ")]
        n = len(cells)
        low, high = cells.count("lr=0.1"), cells.count("lr=0.3")
        expected = [f"lr=0.1 (lowest): {low} of {n}"] * bool(low) + [f"lr=0.3 (highest): {high} of {n}"] * bool(high)
        assert row["grid_edge"] == "; ".join(expected)
    assert any(row["grid_edge"] for row in tables["selection"])


def test_two_values_are_no_edge_and_a_no_op_choice_is_counted_on_its_own():
    from unlearn_pl.tuning.choice import Run
    from unlearn_pl.tuning.selection import grid_edges

    (no_op, *cells) = expand_space({"m": [{"name": "x"}]}, {"toy.lr": [0.1, 0.3], "toy.e": [1, 2, 3]}, no_op=True)
    assert no_op.name == "m=x/no_op=true" and len(cells) == 6

    def run(candidate, seed):
        return Run(candidate, 0, seed, {}, {})

    by = {c.name.rsplit("/", 1)[-1]: c for c in cells}
    chosen = {0: run(no_op, 0), 1: run(by["lr=0.3,e=3"], 1), 2: run(by["lr=0.1,e=2"], 2)}
    # lr has two values (every choice would be an edge): not counted; e=3 is the top of three.
    assert grid_edges([no_op, *cells], chosen) == "e=3 (highest): 1 of 3; no_op: 1 of 3"
    assert grid_edges(cells, {2: chosen[2]}) == ""


def test_the_lowest_learning_rate_above_a_no_op_cell_is_bracketed_not_an_open_end():
    from unlearn_pl.tuning.choice import Run
    from unlearn_pl.tuning.selection import grid_edges

    grid = {"model.lr": [0.1, 0.2, 0.3], "model.alpha": [1, 2, 3]}
    (no_op, *cells) = expand_space({"m": [{"name": "x"}]}, grid, no_op=True)
    lowest = next(c for c in cells if c.name.endswith("lr=0.1,alpha=1"))
    chosen = {0: Run(lowest, 0, 0, {}, {})}
    # The do-nothing cell is lr 0: the lowest lr sits between it and lr 0.2. Not so for alpha.
    assert grid_edges([no_op, *cells], chosen) == "lr=0.1 (lowest, above no_op): 1 of 1; alpha=1 (lowest): 1 of 1"
    assert grid_edges(cells, chosen) == "lr=0.1 (lowest): 1 of 1; alpha=1 (lowest): 1 of 1"


def test_a_no_op_candidate_keeps_the_axes_but_not_the_unlearner_settings():
    space = {
        "width": {"key": "model.init_args.network.init_args.width", "values": [0.5]},
        "method": [
            {
                "name": "scrub",
                "set": {
                    "model.init_args.unlearner": {"class_path": "unlearn_pl.unlearners.SCRUB", "init_args": {"lr": 1}}
                },
                "grid": {"model.init_args.unlearner.init_args.lr": [0.1]},
            }
        ],
    }
    first, second = expand_space(space, {"trainer.max_epochs": [2]}, no_op=True)
    assert first.point == second.point and first.params == (("no_op", True),)
    assert first.overrides == (
        ("model.init_args.network.init_args.width", 0.5),
        ("model.init_args.unlearner", {"class_path": "unlearn_pl.unlearners.NoOp"}),
    )
    assert [c.name for c in expand_space(space, {"trainer.max_epochs": [2]})] == [second.name]


def test_concurrent_workers_start_on_different_seeds(tmp_path):
    objective = StudyObjective(
        [], expand_space(ARMS, {"toy.lr": LRS}), [0, 1, 2], "privacy", str(tmp_path), runner=toy_runner
    )
    cells = objective.grid().cells
    assert [(c["candidate"], c["seed"]) for c in cells[:3]] == [("arm=a/lr=0.1", s) for s in (0, 1, 2)]
    assert len(cells) == len({(c["candidate"], c["seed"]) for c in cells}) == 2 * 3 * 3


def test_the_reference_models_held_out_scores_and_the_distance_to_go():
    """original/J_test and oracle/J_test are the same J(λ) with test in place of validation, of the
    reference models; the gaps are each minus the oracle's, so 1 − J_test_gap / original/J_test_gap
    is the fraction of the way from the original to the oracle that the run went."""
    from unlearn_pl.tuning.choice import Run
    from unlearn_pl.tuning.scores import seed_values

    (candidate,) = expand_space({"m": [{"name": "x"}]}, None)
    metrics = {"val_acc": 0.9, "forget_acc": 0.85, "test_acc": 0.88}
    metrics |= {"original/val_acc": 0.91, "original/forget_acc": 1.0, "original/test_acc": 0.89}
    metrics |= {"oracle/val_acc": 0.9, "oracle/forget_acc": 0.87, "oracle/test_acc": 0.88}
    run = Run(candidate, 0, 0, metrics, {"privacy": 1 - abs(0.15 - 0.1)})
    v = seed_values(run, "privacy", 0.4, "test", None)
    assert v["J_test"] == pytest.approx(_j(0.88, 0.85, 0.4))
    assert v["original/J_test"] == pytest.approx(_j(0.89, 1.0, 0.4))
    assert v["oracle/J_test"] == pytest.approx(_j(0.88, 0.87, 0.4))
    assert v["J_test_gap"] == pytest.approx(v["J_test"] - v["oracle/J_test"])
    assert v["original/J_test_gap"] == pytest.approx(v["original/J_test"] - v["oracle/J_test"])
    closed = 1 - v["J_test_gap"] / v["original/J_test_gap"]
    assert closed == pytest.approx((v["J_test"] - v["original/J_test"]) / (v["oracle/J_test"] - v["original/J_test"]))
    assert not any("J_test" in k for k in seed_values(run, "privacy", 0.4, "val", None))


def test_edge_counts_reads_back_what_grid_edges_writes_and_refuses_other_text():
    from unlearn_pl.tuning.choice import Run
    from unlearn_pl.tuning.selection import edge_counts, grid_edges, open_ends

    grid = {"model.lr": [0.1, 0.2, 0.3], "trainer.max_epochs": [1, 2, 5]}
    (no_op, *cells) = expand_space({"m": [{"name": "x"}]}, grid, no_op=True)
    by = {c.name.rsplit("/", 1)[-1]: c for c in cells}
    chosen = {
        0: Run(by["lr=0.1,max_epochs=5"], 0, 0, {}, {}),
        1: Run(by["lr=0.3,max_epochs=5"], 1, 1, {}, {}),
        2: Run(no_op, 2, 2, {}, {}),
        3: Run(by["lr=0.2,max_epochs=2"], 3, 3, {}, {}),
    }
    rows = [grid_edges([no_op, *cells], chosen), grid_edges(cells, {0: chosen[0]}), ""]
    counts = edge_counts(rows)
    assert counts == {
        ("lr", "lowest, above no_op"): 1,
        ("lr", "highest"): 1,
        ("max_epochs", "highest"): 3,
        ("no_op", "no_op"): 1,
        ("lr", "lowest"): 1,  # the second row's point has no do-nothing cell: its lowest lr is open
    }
    # lr 0.3, the two rows' epochs 5 (twice, then once) and the bare grid's lr 0.1; not no_op nor "above no_op"
    assert open_ends(counts) == 5
    with pytest.raises(ValueError, match="not a grid_edge entry: 'lr 0.1 at the top'"):
        edge_counts(["lr 0.1 at the top"])

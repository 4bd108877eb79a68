"""Validation-based λ tuning (SPEC §6): scoring on hand-made numbers, the grid runner, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from conftest import FAST_RECIPE, REPO, fast_trainer, tiny_mlp

from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
from unlearn_pl.cli import UnlearningCLI
from unlearn_pl.data import Digits, IndexedSubset, Mislabeled
from unlearn_pl.localizers import Full
from unlearn_pl.models import MLP
from unlearn_pl.tuning import (
    bias_goal,
    best_index,
    check_lambdas,
    expand_grid,
    objective,
    privacy_goal,
    privacy_mia_goal,
    select,
    tune,
)
from unlearn_pl.tuning.runner import unlearner_arguments
from unlearn_pl.unlearners import ResetFinetune, Unlearner

CPU = {"accelerator": "cpu", "devices": 1}


pytestmark = pytest.mark.usefixtures("one_torch_thread")


class TinyNegGradPlus(Unlearner):
    """α·CE(R) − (1−α)·CE(F) with plain SGD: a second unlearner family for the runner tests."""

    requires = ("retain", "forget")

    def __init__(self, lr: float = 0.05, alpha: float = 0.9) -> None:
        if not 0.0 <= alpha <= 1.0:
            raise ValueError(f"alpha must be in [0, 1]; got {alpha}")
        self.lr = lr
        self.alpha = alpha

    def training_step(self, module, batch, batch_idx):
        _, xr, yr = batch["retain"]
        _, xf, yf = batch["forget"]
        return self.alpha * F.cross_entropy(module.network(xr), yr) - (1 - self.alpha) * F.cross_entropy(
            module.network(xf), yf
        )

    def configure_optimizers(self, module):
        return torch.optim.SGD(module.network.parameters(), lr=self.lr)


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


# ----------------------------------------------------------------------------- grid expansion
def test_expand_grid_order_and_arguments():
    base = unlearner_arguments(ResetFinetune(lr=0.02, seed=3))
    assert base == {"lr": 0.02, "momentum": 0.9, "weight_decay": 0.0, "final_lr_fraction": 0.01, "seed": 3,
                    "recalibrate_bn": True}
    cands = expand_grid({"lr": [0.1, 0.2], "max_epochs": [1, 3]}, ResetFinetune, base)
    assert [c.params for c in cands] == [
        {"lr": 0.1, "max_epochs": 1}, {"lr": 0.1, "max_epochs": 3},
        {"lr": 0.2, "max_epochs": 1}, {"lr": 0.2, "max_epochs": 3},
    ]
    assert cands[3].unlearner_args == {**base, "lr": 0.2}  # max_epochs goes to the trainer
    assert cands[3].max_epochs == 3 and cands[3].index == 3


@pytest.mark.parametrize(
    "grid, message",
    [
        ({"alpha": [0.5]}, r"unknown grid key 'alpha': ResetFinetune accepts \['lr', 'momentum', 'weight_decay', "
                           r"'final_lr_fraction', 'seed', 'recalibrate_bn'\], and the trainer key \['max_epochs'\]"),
        ({"lr": 0.1}, r"grid\['lr'\] must be a non-empty list of values; got 0.1"),
        ({"lr": []}, r"grid\['lr'\] must be a non-empty list"),
        ({"lr": [0.1, 0.1]}, r"lists \['0.1'\] more than once"),
        ({"max_epochs": [0]}, r"integers >= 1; got 0"),
        ({}, "the grid is empty"),
    ],
)
def test_bad_grids_are_rejected_with_the_allowed_values(grid, message):
    with pytest.raises(ValueError, match=message):
        expand_grid(grid, ResetFinetune, unlearner_arguments(ResetFinetune()))


def test_tune_rejects_bad_settings_before_training(digits_dm):
    module = UnlearningModule(tiny_mlp(), unlearner=ResetFinetune(), references=ReferenceModels(recipe=FAST_RECIPE))
    dm = digits_dm()
    with pytest.raises(ValueError, match="unknown grid key 'gamma': ResetFinetune accepts"):
        tune(module, dm, {"gamma": [1.0]}, trainer={**CPU, "max_epochs": 1})
    with pytest.raises(ValueError, match="max_epochs is set neither in the grid nor in the trainer settings"):
        tune(module, dm, {"lr": [0.1]}, trainer=CPU)
    with pytest.raises(ValueError, match=r"candidate 1 \{'alpha': 2.0\} cannot build TinyNegGradPlus: alpha must be in"):
        tune(UnlearningModule(tiny_mlp(), unlearner=TinyNegGradPlus()), dm, {"alpha": [0.5, 2.0]},
             trainer={**CPU, "max_epochs": 1})
    assert not module.prepared  # nothing was trained


def test_unreadable_unlearner_arguments_are_reported():
    class Opaque(TinyNegGradPlus):
        def __init__(self, lr: float = 0.05, strength: float = 1.0) -> None:
            super().__init__(lr=lr)

    with pytest.raises(ValueError, match=r"cannot read constructor arguments \['strength'\] of Opaque back"):
        unlearner_arguments(Opaque())


# ----------------------------------------------------------------------------- the runner
def _evaluate(network: torch.nn.Module, dm: UnlearningDataModule, split: str) -> float:
    network.eval()
    correct = total = 0
    with torch.no_grad():
        for _, x, y in dm.dataloader(split):
            correct += int((network(x).argmax(1) == y).sum())
            total += len(y)
    return correct / total


def test_tuning_picks_the_highest_validation_J_checked_by_hand(prepared_module, tmp_path):
    template, dm = prepared_module(unlearner=TinyNegGradPlus(), oracle=False)
    grid = {"lr": [0.02, 0.2], "alpha": [0.5, 0.95]}
    lambdas = [0.0, 0.3, 0.7, 1.0]
    result = tune(template, dm, grid, goal="privacy", lambdas=lambdas, trainer={**CPU, "max_epochs": 1},
                  seed=7, progress=False)
    assert len(result.candidates) == 4

    # Redo every candidate independently: a fresh module and trainer, same seed, own evaluation.
    by_hand = []
    for cand in result.candidates:
        module = UnlearningModule(tiny_mlp(), unlearner=TinyNegGradPlus(**cand.params),
                                  references=ReferenceModels(recipe=FAST_RECIPE, oracle=False))
        module.prepare_models(dm)  # cache hit: same initial weights, data and recipe
        pl.seed_everything(7, verbose=False)
        fast_trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(module, datamodule=dm)
        val_acc = _evaluate(module.network, dm, "val")
        err_f, err_v = 1 - _evaluate(module.network, dm, "forget"), 1 - val_acc
        assert cand.metrics["val_acc"] == pytest.approx(val_acc, abs=1e-6)
        assert cand.goals["privacy"] == pytest.approx(1 - abs(err_f - err_v), abs=1e-6)
        by_hand.append((val_acc, 1 - abs(err_f - err_v)))

    for lam in lambdas:
        J = [(1 - lam) * a + lam * g for a, g in by_hand]
        expected = max(range(len(J)), key=lambda i: (J[i], -i))  # highest J, earliest on ties
        assert result.selection[lam] == expected
        assert result.chosen(lam).objective[lam] == pytest.approx(J[expected], abs=1e-6)
    # The candidates really differ, so the check above is not vacuous.
    assert len({round(a, 4) for a, _ in by_hand}) > 1


class ScrambledTestLabels(UnlearningDataModule):
    """The same data, but every test example carries a wrong label."""

    def dataset(self, which):
        if which != "test":
            return super().dataset(which)
        idx = self.indices("test")
        targets = [int(self.test_set[i][1]) for i in idx]
        return IndexedSubset(self.test_set, idx, {i: (t + 1) % 10 for i, t in zip(idx, targets)})


def test_choice_never_depends_on_the_test_set(prepared_module, digits_dm, tmp_path):
    template, dm = prepared_module(localizer=Full(), unlearner=ResetFinetune(), oracle=False)
    grid = {"lr": [0.01, 0.1], "max_epochs": [1, 2]}
    out = tmp_path / "tuning"
    clean = tune(template, dm, grid, goal="privacy_mia", trainer=CPU, progress=False, output_dir=out)
    scrambled_dm = ScrambledTestLabels(dataset=Digits(), batch_size=64)
    scrambled = tune(template, scrambled_dm, grid, goal="privacy_mia", trainer=CPU, progress=False, output_dir=out)

    assert [c.metrics["test_acc"] for c in scrambled.candidates] != pytest.approx(
        [c.metrics["test_acc"] for c in clean.candidates]
    )
    assert max(c.metrics["test_acc"] for c in scrambled.candidates) < 0.2  # the test data really is corrupted
    assert scrambled.selection == clean.selection
    for a, b in zip(clean.candidates, scrambled.candidates):
        assert a.objective == b.objective and a.goals == b.goals
        assert a.metrics["val_acc"] == b.metrics["val_acc"]

    # Both runs were written, neither overwrote the other.
    assert (clean.output_dir, scrambled.output_dir) == (out / "version_0", out / "version_1")
    saved = json.loads((clean.output_dir / "tuning.json").read_text())
    assert saved["goal"] == "privacy_mia" and saved["lambdas"] == [0.2, 0.4, 0.6]
    assert [s["candidate"] for s in saved["selection"]] == [clean.selection[l] for l in (0.2, 0.4, 0.6)]
    rows = (clean.output_dir / "grid.csv").read_text().splitlines()
    assert len(rows) == 1 + 4 and "J(0.4)" in rows[0] and "test_acc" in rows[0]
    assert len((clean.output_dir / "selection.csv").read_text().splitlines()) == 1 + 3
    assert (clean.output_dir / "split.json").exists()
    assert not list(out.glob(".tuning-*"))  # no staging folder left behind


def test_candidates_reuse_the_reference_models_region_grids(prepared_module, monkeypatch, tmp_path):
    """Every candidate's copy of DecisionRegions shares the frozen models' grid memo."""
    import unlearn_pl.metrics.regions as regions_module
    from unlearn_pl.metrics import DecisionRegions

    calls: list[bool] = []
    real = regions_module.predict_plane

    def counting(model, *args, **kwargs):
        calls.append(any(p.requires_grad for p in model.parameters()))
        return real(model, *args, **kwargs)

    monkeypatch.setattr(regions_module, "predict_plane", counting)
    regions = DecisionRegions(num_planes=2, resolution=4, plot=False)
    template, dm = prepared_module(localizer=Full(), unlearner=ResetFinetune(), metrics=[regions])
    tune(template, dm, {"lr": [0.01, 0.1]}, trainer={**CPU, "max_epochs": 1}, progress=False,
         output_dir=tmp_path / "tuning")
    planes = 2 * 2  # forget + far planes
    frozen = [c for c in calls if not c]
    assert len(frozen) == 2 * planes  # original and oracle, once each, for both candidates together
    assert len(calls) - len(frozen) == 2 * planes  # each candidate's unlearned network


def test_candidates_share_the_reference_models_per_example_results(prepared_module, tmp_path):
    """The frozen original and oracle are evaluated once for the whole grid, not per candidate."""
    template, dm = prepared_module(localizer=Full(), unlearner=ResetFinetune())
    calls = {name: 0 for name in ("original", "oracle")}
    for name in calls:
        template.reference(name).register_forward_hook(lambda *_, n=name: calls.__setitem__(n, calls[n] + 1))
    result = tune(template, dm, {"lr": [0.01, 0.1, 0.2]}, trainer={**CPU, "max_epochs": 1}, progress=False,
                  output_dir=tmp_path / "tuning")
    batches = sum(len(dm.dataloader(s)) for s in ("retain", "forget", "val", "test"))
    assert calls == {"original": batches, "oracle": batches}
    # ... and every candidate still reports them (the objective's privacy goal uses the oracle's).
    assert result.references["original"]["metrics"] and result.references["oracle"]["metrics"]
    assert len({c.metrics["forget_acc"] for c in result.candidates}) > 1  # the candidates themselves differ


def test_bias_removal_chooses_a_model_that_drops_the_wrong_labels(tmp_path):
    torch.manual_seed(0)
    network = MLP(in_features=64, num_classes=10, hidden=(256,))
    # Enough capacity and epochs for the original to memorize the wrong forget labels.
    recipe = TrainingRecipe(epochs=60, lr=0.1, weight_decay=0.0, batch_size=64, accelerator="cpu")
    module = UnlearningModule(network, localizer=Full(), unlearner=ResetFinetune(),
                              references=ReferenceModels(recipe=recipe, oracle=False))
    dm = UnlearningDataModule(dataset=Digits(), forget=Mislabeled(0.1), batch_size=64)
    result = tune(module, dm, {"lr": [0.02, 0.1], "max_epochs": [2]}, goal="bias", trainer=CPU, progress=False)

    original = result.references["original"]["metrics"]
    assert original["forget_acc"] > 0.9  # the original predicts the wrong (training) labels
    assert original["forget_acc_true"] < 0.1
    for lam in (0.15, 0.3, 0.5):
        chosen = result.chosen(lam)
        assert chosen.metrics["forget_acc"] < 0.2  # …the chosen unlearned model much less
        assert chosen.metrics["forget_acc_true"] > 0.6  # it predicts the true labels instead
        assert chosen.goals["bias"] == pytest.approx(1 - chosen.metrics["forget_acc"], abs=1e-6)
        assert chosen.metrics["val_acc"] > 0.8


# ----------------------------------------------------------------------------- the CLI
TINY_CONFIG = """
seed_everything: 0
trainer:
  accelerator: cpu
  devices: 1
  max_epochs: 1
data:
  class_path: unlearn_pl.UnlearningDataModule
  init_args:
    dataset: {{class_path: unlearn_pl.data.Digits}}
    forget: {{class_path: unlearn_pl.data.RandomForget, init_args: {{size: 0.1}}}}
    batch_size: 64
model:
  class_path: unlearn_pl.UnlearningModule
  init_args:
    network:
      class_path: unlearn_pl.models.MLP
      init_args: {{in_features: 64, num_classes: 10, hidden: [32]}}
    references:
      class_path: unlearn_pl.ReferenceModels
      init_args:
        oracle: false
        recipe: {{epochs: 10, lr: 0.1, batch_size: 64, accelerator: cpu}}
    localizer: {{class_path: unlearn_pl.localizers.Full}}
    unlearner: {{class_path: unlearn_pl.unlearners.ResetFinetune, init_args: {{lr: 0.05, seed: 1}}}}
grid:
  lr: [0.05, 0.1]
goal: privacy
output_dir: {out}
"""


@pytest.mark.slow  # a subprocess that imports everything and trains the original: ~10 s
def test_cli_tune_runs_end_to_end(tmp_path):
    out = tmp_path / "out"
    config = tmp_path / "tune.yaml"
    config.write_text(TINY_CONFIG.format(out=out))
    proc = subprocess.run(
        [sys.executable, "-m", "unlearn_pl", "tune", "--config", str(config), "--lambdas", "[0.1, 0.9]"],
        cwd=tmp_path, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    run = out / "version_0"
    grid_rows = (run / "grid.csv").read_text().splitlines()
    assert len(grid_rows) == 1 + 2 and grid_rows[0].startswith("candidate,lr,")
    saved = json.loads((run / "tuning.json").read_text())
    assert saved["lambdas"] == [0.1, 0.9] and saved["seed"] == 0
    assert saved["base_args"]["seed"] == 1  # the configured unlearner arguments are the base
    assert {c["params"]["lr"] for c in saved["candidates"]} == {0.05, 0.1}
    assert "goal: privacy" in (run / "config.yaml").read_text()
    assert "chosen per lambda" in proc.stdout


@pytest.mark.parametrize("name", ["privacy_digits.yaml", "bias_digits.yaml"])
def test_shipped_tuning_configs_parse(name, capsys, monkeypatch):
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])  # the CLI warns when both argv and args are given
    with pytest.raises(SystemExit) as exit_:
        UnlearningCLI(args=["tune", "--config", str(REPO / "configs" / "tuning" / name), "--print_config"])
    assert exit_.value.code == 0
    printed = capsys.readouterr().out
    assert "grid:" in printed and "goal:" in printed

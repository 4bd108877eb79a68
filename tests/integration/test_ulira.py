"""U-LiRA end to end on digits: shadow models on the study engine, the attack, the callback, the command.

The setting memorizes on purpose (400 training examples, a wide MLP, no weight decay), so that
membership leaves a signal the attack can find with only K = 8 shadow models: the originals'
balanced accuracy is about 0.67 here. Chance is judged with
:func:`~unlearn_pl.functional.lira.chance_tolerance` (3σ of an attack with no signal).
"""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch

from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
from unlearn_pl.cli import UnlearningCLI
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.functional.lira import GaussianFit, likelihood_ratio, logit_confidence
from unlearn_pl.metrics import ULiRA
from unlearn_pl.models import MLP
from unlearn_pl.stats import mean_ci
from unlearn_pl.ulira import ShadowBank, attack_bank, attack_summary, config_parts
from unlearn_pl.ulira.shadow import build_bank, make_spec, open_bank
from unlearn_pl.unlearners import Finetune, Retrain

#: Memorizes its 200-example halves of the pool within seconds.
RECIPE = TrainingRecipe(epochs=30, lr=0.05, weight_decay=0.0, batch_size=32, accelerator="cpu")


def DO_NOTHING() -> Finetune:
    """Training steps far below a float32 weight's resolution: the network stays the original."""
    return Finetune(lr=1e-30, momentum=0.0, weight_decay=0.0)


def _setup(unlearner, max_epochs: int, cache: Path):
    dm = UnlearningDataModule(Digits(), RandomForget(60), train_size=400, batch_size=32, seed=0)
    module = UnlearningModule(
        MLP(64, 10, (256,)),
        unlearner=unlearner,
        references=ReferenceModels(RECIPE, cache_dir=str(cache)),
    )
    trainer_kwargs = {"max_epochs": max_epochs, "accelerator": "cpu", "devices": 1}
    dm.setup("fit")
    parts = config_parts(
        module.initial_network,
        module.localizer,
        module.unlearner,
        RECIPE,
        pl.Trainer(logger=False, **trainer_kwargs),
        dm,
    )
    return module, dm, trainer_kwargs, parts


def _bank(tmp_path: Path, unlearner, max_epochs: int, name: str, k: int = 8, t: int = 4) -> ShadowBank:
    module, dm, trainer_kwargs, parts = _setup(unlearner, max_epochs, tmp_path / "cache")
    spec = make_spec(module, dm, trainer_kwargs, num_shadow=k, num_target_models=t, bank=tmp_path / name)
    return build_bank(spec, parts, workers=1)


@pytest.mark.slow
def test_an_unlearner_that_does_nothing_is_detected_and_the_callback_reads_its_bank(tmp_path):
    """A Finetune whose steps cannot move a float32 weight (lr 1e-30, no momentum or weight decay)
    leaves the originals as they are: U-LiRA must see the membership. (A fit of 0 epochs is
    refused as degenerate.)"""
    bank = _bank(tmp_path, DO_NOTHING(), max_epochs=1, name="nothing")
    attack = attack_bank(bank, "global")
    assert attack.summary == attack.before  # nothing changed
    assert attack.summary["ulira_acc"] > 0.5 + attack.tolerance
    assert attack.summary["ulira_auc"] > 0.6
    assert attack.summary["ulira_tpr_at_fpr_0.001"] is None  # 120 non-member scores cannot resolve 0.1%
    assert np.nanmean(attack.success) == pytest.approx(attack.summary["ulira_acc"], abs=0.05)

    # The same bank serves the validation callback of a run with the same configuration.
    module, dm, _, _ = _setup(DO_NOTHING(), 1, tmp_path / "cache")
    callback = ULiRA(str(bank.path))
    module.metrics = [callback]
    trainer = pl.Trainer(
        max_epochs=1,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
    )
    trainer.fit(module, datamodule=dm)
    trainer.validate(module, datamodule=dm, verbose=False)
    # The unlearned model is the original here; both are scored against the oracle, by hand:
    assert callback.results["unlearned"] == callback.results["original"]
    index, x, y = next(iter(torch.utils.data.DataLoader(dm.split_dataset("forget"), batch_size=10_000)))
    fit = bank.fit("global")
    fit = GaussianFit(
        *(getattr(fit, f)[bank.positions(index.numpy())] for f in ("mean_in", "std_in", "mean_out", "std_out")),
        "global",
    )
    with torch.no_grad():
        scores = [
            likelihood_ratio(logit_confidence(module.reference(m)(x), y).float().double().numpy(), fit)
            for m in ("original", "oracle")
        ]
    expected = attack_summary(np.concatenate(scores), np.arange(2 * len(y)) < len(y))
    assert callback.results["original"] == pytest.approx({k: v for k, v in expected.items() if v is not None})

    # Another configuration (another unlearning length) is refused with the part that differs.
    other, dm2, _, _ = _setup(DO_NOTHING(), 3, tmp_path / "cache")
    other.metrics = [ULiRA(str(bank.path))]
    trainer = pl.Trainer(
        max_epochs=3,
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        num_sanity_val_steps=0,
    )
    with pytest.raises(ValueError, match="another configuration.*training"):
        trainer.validate(other, datamodule=dm2, verbose=False)


@pytest.mark.slow
def test_retrain_comes_out_at_chance(tmp_path):
    """Exact unlearning: the retrained model never depends on a target's membership, so the
    attack is at 0.5 up to the sampling noise of T·N scored pairs (3σ = 1.5/sqrt(T·N) ≈ 0.097)."""
    bank = _bank(tmp_path, Retrain(), max_epochs=1, name="retrain")
    attack = attack_bank(bank, "global")
    assert attack.tolerance == pytest.approx(1.5 / np.sqrt(4 * 60))
    assert abs(attack.summary["ulira_acc"] - 0.5) <= attack.tolerance
    assert attack.before["ulira_acc"] > 0.5 + attack.tolerance  # the originals did leak


def _cli_args(bank: Path, workers: int, k: int = 4, t: int = 2) -> list[str]:
    return [
        "ulira",
        "--config",
        str(Path(__file__).resolve().parents[2] / "configs/ulira/digits.yaml"),
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
        "--num_shadow",
        str(k),
        "--num_target_models",
        str(t),
        "--workers",
        str(workers),
        "--bank",
        str(bank),
    ]


@pytest.mark.slow
def test_two_workers_build_the_same_bank_as_one(tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["unlearn-pl"])
    """Every model's result depends on its index only: a 2-worker study (spawned processes, each
    with its own model cache) writes exactly the φ values of a 1-worker study."""
    banks = {}
    for workers in (2, 1):
        monkeypatch.setenv("UNLEARN_PL_CACHE", str(tmp_path / f"cache{workers}"))
        UnlearningCLI(args=_cli_args(tmp_path / f"bank{workers}", workers))
        banks[workers] = ShadowBank(tmp_path / f"bank{workers}")
    assert banks[1].fingerprint == banks[2].fingerprint
    for which in ("phi", "phi_original"):
        np.testing.assert_array_equal(banks[1].phi(which), banks[2].phi(which))
    results = [json.loads((tmp_path / f"bank{w}" / "ulira_global.json").read_text()) for w in (1, 2)]
    assert results[0] == results[1]
    assert (tmp_path / "bank1" / "ulira_global_per_example.csv").read_text().count("\n") == 31  # header + 30 targets
    assert (tmp_path / "bank1" / "ulira_global_success.png").stat().st_size > 0
    assert results[0]["not_available"]  # 2 target models × 30 targets are too few for 1% and 0.1% FPR

    # Running the command again resumes the finished study: nothing is retrained.
    stamps = {p: p.stat().st_mtime_ns for p in (tmp_path / "bank1" / "models").iterdir()}
    UnlearningCLI(args=_cli_args(tmp_path / "bank1", 1))
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "bank1" / "models").iterdir()} == stamps


def test_the_shipped_config_parses_for_ulira(monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["unlearn-pl"])
    config = Path(__file__).resolve().parents[2] / "configs/ulira/digits.yaml"
    with pytest.raises(SystemExit) as exit_info:
        UnlearningCLI(args=["ulira", "--config", str(config), "--print_config"])
    assert exit_info.value.code == 0
    printed = capsys.readouterr().out
    assert "num_shadow: 32" in printed and "num_target_models: 8" in printed and "variance: global" in printed


def test_too_few_shadow_models_for_the_variance_fail_before_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("sys.argv", ["unlearn-pl"])
    with pytest.raises(SystemExit):  # the CLI prints one error line
        UnlearningCLI(args=[*_cli_args(tmp_path / "bank", 1, k=3), "--variance", "per_example"])
    assert "at least 4 shadow models" in capsys.readouterr().err
    assert not (tmp_path / "bank").exists()


def test_targets_outside_the_pool_are_refused(tmp_path):
    module, dm, trainer_kwargs, _ = _setup(Finetune(), 1, tmp_path / "cache")
    val = dm.indices("val")[:3]
    with pytest.raises(ValueError, match=r"not in the pool .*validation"):
        make_spec(module, dm, trainer_kwargs, num_shadow=4, num_target_models=2, bank=tmp_path / "b", targets=val)
    with pytest.raises(ValueError, match="at least 2 target"):
        make_spec(module, dm, trainer_kwargs, num_shadow=4, num_target_models=2, bank=tmp_path / "b", targets=[0])
    with pytest.raises(ValueError, match="num_shadow must be an int >= 2"):
        make_spec(module, dm, trainer_kwargs, num_shadow=1, num_target_models=2, bank=tmp_path / "b")


def test_a_bank_folder_of_another_config_is_refused(tmp_path):
    module, dm, trainer_kwargs, parts = _setup(Finetune(lr=0.01), 1, tmp_path / "cache")
    spec = make_spec(module, dm, trainer_kwargs, num_shadow=4, num_target_models=2, bank=tmp_path / "bank")
    bank = open_bank(spec, parts)
    assert bank.membership.shape == (6, 60) and (bank.membership[:4].sum(0) == 2).all()
    assert open_bank(spec, parts).fingerprint == bank.fingerprint  # same config: reopened
    _, _, _, other = _setup(Finetune(lr=0.02), 1, tmp_path / "cache")
    with pytest.raises(ValueError, match=r"another configuration \(different unlearner\)"):
        open_bank(spec, other)
    with pytest.raises(ValueError, match="misses 6 of 6 models"):
        bank.phi()
    with pytest.raises(FileNotFoundError, match="no shadow-model bank"):
        ShadowBank(tmp_path / "nowhere")


def test_banks_over_several_pool_seeds_give_intervals_over_banks(tmp_path, monkeypatch, capsys):
    """One bank per pool seed, each its own draw of the pool's halves and models; the summary's
    interval is the t-interval of the banks' means (the replicate is a bank)."""
    monkeypatch.setattr("sys.argv", ["unlearn-pl"])
    root = tmp_path / "banks"
    UnlearningCLI(args=[*_cli_args(root, 1, k=2, t=2), "--pool_seeds", "[3, 5]"])
    banks = {s: ShadowBank(root / f"s{s}") for s in (3, 5)}
    assert banks[3].fingerprint == banks[5].fingerprint  # one configuration ...
    assert not np.array_equal(banks[3].membership, banks[5].membership)  # ... two draws of the pool's halves
    assert not np.array_equal(banks[3].phi(), banks[5].phi())
    summary = json.loads((root / "ulira_global_banks.json").read_text())
    assert summary["pool_seeds"] == [3, 5] and summary["num_banks"] == 2
    per_bank = [json.loads((root / f"s{s}" / "ulira_global.json").read_text()) for s in (3, 5)]
    for key in ("after_unlearning", "before_unlearning", "population_after_unlearning", "population_before_unlearning"):
        means = [r[key]["per_model_acc_mean"] for r in per_bank]
        expected = mean_ci(means)
        assert summary[key]["per_bank_acc"] == means and summary[key]["n_banks"] == 2
        assert summary[key]["acc_mean"] == pytest.approx(expected.mean)
        assert summary[key]["acc_ci95"] == pytest.approx([expected.low, expected.high], nan_ok=True)
    assert "over 2 banks" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        UnlearningCLI(args=[*_cli_args(root, 1, k=2, t=2), "--pool_seeds", "[3, 3]"])
    assert "names a seed twice" in capsys.readouterr().err

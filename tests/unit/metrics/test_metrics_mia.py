"""Membership-inference attacks: the loss attack and MIA-efficacy, on constructed and real models."""

import numpy as np
import pytest
import torch
from conftest import fast_trainer

from unlearn_pl.data import ClassForget
from unlearn_pl.metrics import LossAttack, MIAEfficacy, loss_attack, mia_efficacy


# ------------------------------------------------------------------ loss attack on constructed losses
def test_loss_attack_separable_losses_give_one():
    rng = np.random.default_rng(0)
    forget = rng.uniform(0.0, 0.1, 200)  # memorized: all lower than every test loss
    test = rng.uniform(1.0, 3.0, 600)
    assert loss_attack(forget, test, seed=0) == pytest.approx(1.0)


def test_loss_attack_tiny_loss_scale_still_separable():
    # Members' losses near 1e-5 vs non-members near 1e-3: an unscaled, regularized regression
    # would sit at chance here; the attack must not depend on the losses' scale.
    rng = np.random.default_rng(1)
    assert loss_attack(rng.uniform(0, 1e-5, 100), rng.uniform(1e-3, 2e-3, 100)) == pytest.approx(1.0)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_loss_attack_same_distribution_gives_half(seed):
    rng = np.random.default_rng(100 + seed)
    forget = rng.exponential(0.5, 400)
    test = rng.exponential(0.5, 900)
    assert abs(loss_attack(forget, test, seed=seed) - 0.5) < 0.06


def test_loss_attack_balances_the_groups():
    rng = np.random.default_rng(3)
    forget, test = rng.exponential(1.0, 50), rng.exponential(1.0, 1000)
    # Unbalanced, "always non-member" already scores 1000/1050; balancing makes 0.5 mean private.
    assert loss_attack(forget, test, balance=False) > 0.9
    assert abs(loss_attack(forget, test, balance=True) - 0.5) < 0.15


def test_loss_attack_is_seeded_and_accepts_tensors():
    g = torch.Generator().manual_seed(0)
    forget, test = torch.rand(120, generator=g), torch.rand(300, generator=g) * 1.3
    a = loss_attack(forget, test, seed=7)
    assert a == loss_attack(forget.numpy(), test.numpy(), seed=7)
    assert a == loss_attack(forget, test, seed=7)


def test_loss_attack_rejects_bad_input():
    with pytest.raises(ValueError, match="n_splits=5"):
        loss_attack([0.1, 0.2, 0.3], [1.0, 2.0, 3.0, 4.0])
    with pytest.raises(ValueError, match="n_splits must be >= 2"):
        loss_attack(np.ones(10), np.ones(10), n_splits=1)
    with pytest.raises(ValueError, match="NaN or infinite"):
        loss_attack(np.r_[np.ones(9), np.nan], np.ones(10))


# ------------------------------------------------------------------ MIA-efficacy on constructed features
def test_mia_efficacy_separates_memorized_from_unseen_forget_sets():
    rng = np.random.default_rng(0)
    retain = 1.0 - rng.uniform(0.0, 0.01, 400)  # members: confident
    test = rng.uniform(0.0, 1.0, 400)  # non-members: spread out
    memorized = 1.0 - rng.uniform(0.0, 0.01, 100)  # forget set that looks like retain
    unseen = rng.uniform(0.0, 1.0, 100)  # forget set that looks like test
    low = mia_efficacy(retain, test, memorized, seed=0)
    high = mia_efficacy(retain, test, unseen, seed=0)
    assert low < 0.1
    assert high > 0.8


def test_mia_efficacy_two_features_and_capping():
    rng = np.random.default_rng(1)
    retain = np.c_[1.0 - rng.uniform(0, 0.01, 300), rng.uniform(0, 0.05, 300)]
    test = np.c_[rng.uniform(0, 1, 500), rng.uniform(0, 2, 500)]
    forget = np.c_[rng.uniform(0, 1, 80), rng.uniform(0, 2, 80)]
    full = mia_efficacy(retain, test, forget, seed=0)
    capped = mia_efficacy(retain, test, forget, seed=0, max_samples=100)
    assert full > 0.8 and capped > 0.8
    assert full == mia_efficacy(retain, test, forget, seed=0)  # deterministic
    with pytest.raises(ValueError, match="feature columns differ"):
        mia_efficacy(retain, test, forget[:, :1])
    with pytest.raises(ValueError, match="target_features is empty"):
        mia_efficacy(retain, test, np.empty((0, 2)))


def test_callbacks_validate_arguments():
    with pytest.raises(
        ValueError, match=r"features must be one or more of \('confidence', 'entropy'\); got 'probability'"
    ):
        MIAEfficacy(features="probability")
    with pytest.raises(ValueError, match="nonmembers must be one of"):
        MIAEfficacy(nonmembers="retain")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="nonmembers must be one of"):
        LossAttack(nonmembers="train")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_splits"):
        LossAttack(n_splits=1)


# ------------------------------------------------------------------ on real models
@pytest.mark.parametrize("features", ["confidence", "entropy"])
def test_mia_efficacy_higher_for_oracle_than_memorizing_original(prepared_module, tmp_path, features):
    # A class non-IID forget set (most 8s): the oracle really has not learned these examples.
    module, dm = prepared_module(
        metrics=[MIAEfficacy(features=features), LossAttack(nonmembers="val")],
        report=False,
        dm_kwargs={"forget": ClassForget([8], size=0.08)},
    )
    fast_trainer(tmp_path).validate(module, datamodule=dm, verbose=False)
    efficacy, attack = module.metrics[0].results, module.metrics[1].results
    assert set(efficacy) == set(attack) == {"original", "unlearned", "oracle"}
    # The original memorized the forget set (it looks like retain); the oracle never saw it.
    assert efficacy["oracle"]["mia_efficacy"] > efficacy["original"]["mia_efficacy"]
    # Without unlearning steps the unlearned network is the original.
    assert efficacy["unlearned"] == efficacy["original"]
    assert all(0.0 <= r["mia_loss_acc"] <= 1.0 for r in attack.values())


def test_callbacks_match_the_functions_on_per_example_data(prepared_module, tmp_path):
    seen = {}

    class Capture(LossAttack):
        def evaluate(self, trainer, pl_module):
            seen.update(pl_module.per_example())
            return super().evaluate(trainer, pl_module)

    module, dm = prepared_module(metrics=[Capture(seed=3), MIAEfficacy(seed=3)], report=False)
    fast_trainer(tmp_path).validate(module, datamodule=dm, verbose=False)
    oracle = seen["oracle"]
    assert module.metrics[0].results["oracle"]["mia_loss_acc"] == loss_attack(
        oracle["forget"]["loss"], oracle["test"]["loss"], seed=3
    )
    assert module.metrics[1].results["oracle"]["mia_efficacy"] == mia_efficacy(
        oracle["retain"]["confidence"], oracle["test"]["confidence"], oracle["forget"]["confidence"], seed=3
    )
    # Members really are the de-duplicated forget set.
    assert oracle["forget"]["index"].tolist() == sorted(dm.indices("forget"))


def test_attacks_on_the_frozen_reference_models_are_computed_once(prepared_module, tmp_path, monkeypatch):
    """Repeated evaluations (validation epochs, tuning candidates) reuse the reference models'
    per-example statistics, and the attacks reuse their results on them; values are unchanged."""
    import copy

    import unlearn_pl.metrics.mia as mia

    monkeypatch.setattr(mia, "_PROCESS_REFERENCE_VALUES", {})  # none from earlier tests of this process
    calls = {"loss_attack": 0, "mia_efficacy": 0}
    for name in calls:
        real = getattr(mia, name)
        monkeypatch.setattr(
            mia,
            name,
            lambda *a, _real=real, _name=name, **k: calls.__setitem__(_name, calls[_name] + 1) or _real(*a, **k),
        )
    module, dm = prepared_module(metrics=[LossAttack(), MIAEfficacy()], report=False)
    trainer = fast_trainer(tmp_path)
    trainer.validate(module, datamodule=dm, verbose=False)
    first = [copy.deepcopy(cb.results) for cb in module.metrics]
    assert calls == {"loss_attack": 3, "mia_efficacy": 3}
    with torch.no_grad():  # the unlearned network changes: its row is attacked afresh
        for p in module.network.parameters():
            p.mul_(0.5)
    trainer.validate(module, datamodule=dm, verbose=False)
    assert calls == {"loss_attack": 4, "mia_efficacy": 4}
    for before, cb in zip(first, module.metrics, strict=True):
        assert cb.results["original"] == before["original"] and cb.results["oracle"] == before["oracle"]
    # The cache is a plain value keyed by what the reference results were computed from: a copy
    # holds its own entries (nothing is shared by identity).
    clone = copy.deepcopy(module.metrics[1])
    assert clone._reference_values == module.metrics[1]._reference_values
    assert clone._reference_values is not module.metrics[1]._reference_values
    assert {key[0] for key in clone._reference_values} == {"original", "oracle"}
    # A new run in this process (a study's next trial: new callbacks, the same reference models)
    # attacks only its unlearned row; other attack settings are computed afresh.
    again, dm = prepared_module(metrics=[LossAttack(), MIAEfficacy(), LossAttack(n_splits=3)], report=False)
    fast_trainer(tmp_path).validate(again, datamodule=dm, verbose=False)
    assert calls == {"loss_attack": 5 + 3, "mia_efficacy": 5}
    assert again.metrics[0].results["oracle"] == first[0]["oracle"]
    assert again.metrics[1].results["original"] == first[1]["original"]

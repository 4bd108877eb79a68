"""Behaviour of each unlearner on tiny digits data, in the direction its paper promises."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import fast_trainer
from lightning.pytorch.callbacks import Callback

from unlearn_pl.functional import distillation_kl, fisher_diagonal, l1_norm
from unlearn_pl.localizers import Full, Random, SalUnSaliency
from unlearn_pl.unlearners import SCRUB, SSD, Finetune, L1Sparse, NegGrad, NegGradPlus, RandomLabel, Retrain, SalUn
from unlearn_pl.unlearners.relabel import random_wrong_labels


@torch.no_grad()
def split_stats(net: torch.nn.Module, dm, split: str) -> tuple[float, float]:
    """(mean CE, accuracy) of ``net`` on a split, in eval mode."""
    net.eval()
    losses, correct, n = 0.0, 0, 0
    for _, x, y in dm.dataloader(split):
        logits = net(x)
        losses += float(F.cross_entropy(logits, y, reduction="sum"))
        correct += int((logits.argmax(1) == y).sum())
        n += len(y)
    return losses / n, correct / n


@torch.no_grad()
def forget_kl(module, dm) -> float:
    teacher, student = module.reference("original").eval(), module.network.eval()
    xs = torch.cat([x for _, x, _ in dm.dataloader("forget")])
    return float(distillation_kl(student(xs), teacher(xs), 4.0))


def run(prepared_module, tmp_path, unlearner, localizer=None, **trainer_kwargs):
    module, dm = prepared_module(
        localizer=localizer or Full(), unlearner=unlearner, oracle=False, metrics=[], report=False
    )
    trainer_kwargs.setdefault("max_epochs", 1)
    trainer = fast_trainer(tmp_path, limit_val_batches=0, **trainer_kwargs)
    trainer.fit(module, datamodule=dm)
    return module, dm, trainer


def test_neggrad_raises_forget_loss(prepared_module, tmp_path):
    module, dm = prepared_module(oracle=False)
    before, _ = split_stats(module.reference("original"), dm, "forget")
    module, dm, _ = run(prepared_module, tmp_path, NegGrad(lr=0.1), max_epochs=3)
    after, _ = split_stats(module.network, dm, "forget")
    assert after > 3 * before


def test_neggrad_plus_is_gentler_than_neggrad(prepared_module, tmp_path):
    # Same lr and number of steps: the retain term of NegGrad+ (α=0.99) holds the model.
    ng, dm, _ = run(prepared_module, tmp_path, NegGrad(lr=0.1), limit_train_batches=3, max_epochs=3)
    ngp, _, _ = run(prepared_module, tmp_path, NegGradPlus(lr=0.1, alpha=0.99), limit_train_batches=3, max_epochs=3)
    original = ng.reference("original")
    f0, _ = split_stats(original, dm, "forget")
    f_ng, _ = split_stats(ng.network, dm, "forget")
    f_ngp, _ = split_stats(ngp.network, dm, "forget")
    r_ng, _ = split_stats(ng.network, dm, "retain")
    r_ngp, _ = split_stats(ngp.network, dm, "retain")
    assert f_ng > f0 and f_ngp < f_ng
    assert r_ngp < r_ng


@pytest.mark.parametrize("order", ["sequential", "interleaved"])
def test_scrub_max_steps_push_away_on_forget_and_min_steps_keep_retain(prepared_module, tmp_path, order):
    # Two epochs: in the authors' sequential order the first max steps start at student ==
    # teacher, where the KL's gradient is zero (no BatchNorm in the MLP to make them differ).
    with_max, dm, _ = run(prepared_module, tmp_path, SCRUB(msteps=2, lr=0.05, order=order), max_epochs=2)
    min_only, _, _ = run(prepared_module, tmp_path, SCRUB(msteps=0, lr=0.05, order=order), max_epochs=2)
    # Same number of min steps; only the max steps differ.
    assert forget_kl(with_max, dm) > 2 * forget_kl(min_only, dm)
    _, acc_original = split_stats(with_max.reference("original"), dm, "retain")
    _, acc_scrub = split_stats(with_max.network, dm, "retain")
    assert acc_scrub >= acc_original - 0.05


def test_l1sparse_lowers_l1_norm_more_than_finetune(prepared_module, tmp_path):
    module, _ = prepared_module(oracle=False)
    l1_before = float(l1_norm(p.detach() for p in module.network.parameters()))
    sparse, _, _ = run(
        prepared_module, tmp_path, L1Sparse(gamma=0.05, lr=0.01, weight_decay=0.0), limit_train_batches=5
    )
    plain, _, _ = run(prepared_module, tmp_path, Finetune(lr=0.01, weight_decay=0.0), limit_train_batches=5)
    l1_sparse = float(l1_norm(p.detach() for p in sparse.network.parameters()))
    assert l1_sparse < l1_before
    assert l1_sparse < float(l1_norm(p.detach() for p in plain.network.parameters()))


def test_l1sparse_weight_decays_linearly():
    class Stub:
        current_epoch = 0
        trainer = type("T", (), {"max_epochs": 4})()

    stub, l1 = Stub(), L1Sparse(gamma=1.0)
    weights = []
    for epoch in range(4):
        stub.current_epoch = epoch
        weights.append(l1.l1_weight(stub))
    assert weights == [1.0, 0.75, 0.5, 0.25]
    assert L1Sparse(gamma=1.0, epochs=2).l1_weight(stub) == 0.0


def test_ssd_dampens_only_fisher_selected_scalars_downward(prepared_module, tmp_path):
    module, dm = prepared_module(oracle=False)
    original = module.network  # the original's weights, trainable (the reference copy is frozen)
    alpha = 2.0
    i_f = fisher_diagonal(original, dm.dataloader("forget"))
    i_d = fisher_diagonal(original, dm.dataloader("train"))
    ssd = SSD(alpha=alpha, dampening=1.0)
    module, _, _ = run(prepared_module, tmp_path, ssd)
    before = dict(original.named_parameters())
    n_changed = 0
    for name, p in module.network.named_parameters():
        old, new = before[name].detach(), p.detach()
        changed = new != old
        eligible = i_f[name] > alpha * i_d[name]
        assert not bool((changed & ~eligible).any()), f"{name}: a scalar without I_F > α·I_D changed"
        assert bool((new.abs() <= old.abs()).all()), f"{name}: a magnitude grew"
        expected = torch.where(eligible, old * (i_d[name] / i_f[name]).clamp(max=1.0), old)
        torch.testing.assert_close(new, expected)
        n_changed += int(changed.sum())
    assert n_changed > 0 and ssd.dampened >= n_changed


def test_ssd_respects_the_mask(prepared_module, tmp_path):
    localizer = Random(budget=0.3, seed=0)
    ssd = SSD(alpha=1.0)
    full_ssd = SSD(alpha=1.0)
    run(prepared_module, tmp_path, full_ssd)
    run(prepared_module, tmp_path, ssd, localizer=localizer)
    assert 0 < ssd.dampened < full_ssd.dampened


def test_random_label_draws_wrong_labels_only():
    y = torch.arange(10).repeat(500)
    g = torch.Generator().manual_seed(0)
    wrong = random_wrong_labels(y, 10, g)
    assert bool((wrong != y).all()) and wrong.min() >= 0 and wrong.max() <= 9
    assert len(torch.unique(wrong[y == 3])) == 9  # every other class is reachable
    with pytest.raises(ValueError, match="at least 2 classes"):
        random_wrong_labels(y, 1, g)


def test_random_label_lowers_forget_accuracy(prepared_module, tmp_path):
    module, dm, _ = run(prepared_module, tmp_path, RandomLabel(lr=0.05), limit_train_batches=6)
    _, acc_f0 = split_stats(module.reference("original"), dm, "forget")
    _, acc_f = split_stats(module.network, dm, "forget")
    assert acc_f < acc_f0 - 0.1


def test_salun_changes_only_its_saliency_mask(prepared_module, tmp_path):
    module, dm = prepared_module(oracle=False)
    expected = SalUnSaliency(budget=0.5).localize(module.network, dm.dataloader("forget"))
    salun = SalUn(lr=0.05, saliency_budget=0.5)
    module, _, _ = run(prepared_module, tmp_path, salun, limit_train_batches=3)
    before = dict(module.reference("original").named_parameters())
    moved = 0
    for name, p in module.network.named_parameters():
        assert torch.equal(salun.saliency_masks[name], expected[name])
        mask = expected[name]
        assert torch.equal(p.detach()[~mask], before[name].detach()[~mask])
        moved += int((p.detach()[mask] != before[name].detach()[mask]).sum())
    assert moved > 0


def test_retrain_starts_from_the_oracle_initial_weights(prepared_module, tmp_path):
    seen = {}

    class AtStart(Callback):
        def on_train_start(self, trainer, pl_module):
            initial = pl_module.initial_network.state_dict()
            seen["equal"] = all(torch.equal(v, initial[k]) for k, v in pl_module.network.state_dict().items())
            seen["max_epochs"] = trainer.max_epochs

    retrain = Retrain(epochs=1, lr=0.05)
    module, dm, trainer = run(
        prepared_module, tmp_path, retrain, max_epochs=7, callbacks=[AtStart()], limit_train_batches=2
    )
    assert seen == {"equal": True, "max_epochs": 1}
    hp = retrain.resolved(module)
    recipe = module.references.recipe
    assert hp["lr"] == 0.05 and hp["momentum"] == recipe.momentum and hp["weight_decay"] == recipe.weight_decay


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: NegGradPlus(alpha=1.5), "alpha must be in"),
        (lambda: Finetune(lr=0.0), "lr must be"),
        (lambda: SCRUB(msteps=-1), "msteps"),
        (lambda: SCRUB(temperature=0), "temperature"),
        (lambda: SSD(alpha=-1), "alpha"),
        (lambda: SSD(batch_size=0), "batch_size"),
        (lambda: L1Sparse(epochs=0), "epochs"),
        (lambda: Retrain(epochs=0), "epochs"),
        (lambda: SalUn(saliency_budget=0.0), "budget"),
        (lambda: RandomLabel(forget_weight=-1.0), "forget_weight"),
    ],
)
def test_invalid_arguments_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()

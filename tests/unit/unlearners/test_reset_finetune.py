"""Reset + Finetune under an enforced mask: unselected scalars stay bit-identical, selected ones
are reset and fine-tuned."""

import copy

import torch
from conftest import fast_trainer, tiny_cnn

from unlearn_pl.functional import MaskGuard, fresh_parameters, reset_selected_
from unlearn_pl.localizers import DEL
from unlearn_pl.unlearners import ResetFinetune


def test_unselected_scalars_bit_identical_after_reset_finetune_with_weight_decay_and_momentum(
    prepared_module, tmp_path
):
    module, dm = prepared_module(
        network=tiny_cnn(),
        localizer=DEL(budget=0.3),
        unlearner=ResetFinetune(lr=0.05, momentum=0.9, weight_decay=5e-3),
        oracle=False,
    )
    original = {n: p.detach().clone() for n, p in module.network.named_parameters()}
    fast_trainer(tmp_path, max_epochs=2).fit(module, datamodule=dm)
    masks = module.localizer.masks
    changed_selected = 0
    for name, p in module.network.named_parameters():
        mask = masks[name]
        assert torch.equal(p.detach()[~mask], original[name][~mask]), f"unselected scalars of {name} moved"
        changed_selected += int((p.detach()[mask] != original[name][mask]).sum())
    assert changed_selected > 0.9 * sum(int(m.sum()) for m in masks.values()), "selected scalars were trained"
    # After fit, reading the masks is side-effect free: same masks, no enforcement left running.
    assert module.masks is masks
    assert module.localizer._guard is None and module.localizer._hooks == []


def test_reset_is_seeded_and_touches_only_selected_scalars():
    net = tiny_cnn()
    masks = {n: torch.rand_like(p) < 0.5 for n, p in net.named_parameters()}
    a, b, c = copy.deepcopy(net), copy.deepcopy(net), copy.deepcopy(net)
    reset_selected_(a, masks, seed=1)
    reset_selected_(b, masks, seed=1)
    reset_selected_(c, masks, seed=2)
    for (n, p), pa, pb, pc in zip(net.named_parameters(), a.parameters(), b.parameters(), c.parameters(), strict=True):
        assert torch.equal(pa, pb)
        assert torch.equal(pa[~masks[n]], p[~masks[n]])
        if masks[n].sum() > 1 and p.ndim > 1:
            assert not torch.equal(pa[masks[n]], pc[masks[n]])


def test_reset_keeps_batchnorm_running_statistics_and_uses_fresh_init():
    net = tiny_cnn()
    bn = net.features[1]
    bn.running_mean.fill_(3.0)
    with torch.no_grad():
        bn.weight.fill_(7.0)
    masks = {n: torch.ones_like(p, dtype=torch.bool) for n, p in net.named_parameters()}
    reset_selected_(net, masks, seed=0)
    assert torch.all(bn.running_mean == 3.0)
    assert torch.all(bn.weight == 1.0), "BatchNorm's fresh init is weight=1"
    fresh = fresh_parameters(net, seed=0)
    assert torch.equal(fresh["head.weight"], net.head.weight)


def test_mask_guard_zeroes_gradients_and_restores_values():
    net = torch.nn.Linear(3, 2)
    masks = {"weight": torch.tensor([[True, False, False], [False, True, False]]), "bias": torch.tensor([False, False])}
    guard = MaskGuard(net, masks)
    before = {n: p.detach().clone() for n, p in net.named_parameters()}
    net(torch.randn(4, 3)).sum().backward()
    guard.zero_grads()
    assert torch.all(net.weight.grad[~masks["weight"]] == 0) and torch.all(net.bias.grad == 0)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(1.0)  # what weight decay / momentum would do
    guard.restore()
    assert torch.equal(net.weight[~masks["weight"]], before["weight"][~masks["weight"]])
    assert torch.equal(net.weight[masks["weight"]], before["weight"][masks["weight"]] + 1)
    assert torch.equal(net.bias, before["bias"])


# ------------------------------------------------------------------ BatchNorm statistics
def _first_bn_input_batch_means(net: torch.nn.Module, loader) -> torch.Tensor:
    """Per-channel means of the first BatchNorm layer's input, averaged over ``loader``'s
    batches (equal weight per batch, as BatchNorm's cumulative average does)."""
    bn = next(m for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d))
    seen = []
    handle = bn.register_forward_pre_hook(lambda _m, args: seen.append(args[0].mean(dim=(0, 2, 3))))
    was_training = net.training
    net.eval()
    with torch.no_grad():
        for _, x, _ in loader:
            net(x)
    handle.remove()
    net.train(was_training)
    return torch.stack(seen).mean(0), bn


def test_batchnorm_statistics_are_recomputed_on_the_retain_set_after_fine_tuning(prepared_module, tmp_path):
    module, dm = prepared_module(
        network=tiny_cnn(), localizer=DEL(budget=0.3), unlearner=ResetFinetune(lr=0.05), oracle=False
    )
    fast_trainer(tmp_path, max_epochs=2).fit(module, datamodule=dm)
    expected, bn = _first_bn_input_batch_means(module.network, dm.dataloader("retain"))
    # The statistics belong to the final weights and the retain set, not to a moving average.
    torch.testing.assert_close(bn.running_mean, expected, rtol=1e-5, atol=1e-6)
    assert int(bn.num_batches_tracked) == len(dm.dataloader("retain"))


def test_without_recalibration_the_moving_average_is_kept(prepared_module, tmp_path):
    module, dm = prepared_module(
        network=tiny_cnn(),
        localizer=DEL(budget=0.3),
        unlearner=ResetFinetune(lr=0.05, recalibrate_bn=False),
        oracle=False,
    )
    steps_before = int(
        next(m for m in module.network.modules() if isinstance(m, torch.nn.BatchNorm2d)).num_batches_tracked
    )
    trainer = fast_trainer(tmp_path, max_epochs=2)
    trainer.fit(module, datamodule=dm)
    expected, bn = _first_bn_input_batch_means(module.network, dm.dataloader("retain"))
    assert int(bn.num_batches_tracked) == steps_before + trainer.global_step  # one update per training step
    assert not torch.allclose(bn.running_mean, expected, rtol=1e-5, atol=1e-6)


def test_recalibration_runs_before_each_validation_during_fit_and_only_when_trained(
    prepared_module, tmp_path, monkeypatch
):
    import unlearn_pl.unlearners.batchnorm as batchnorm

    calls: list[tuple[str, int]] = []
    real = batchnorm.recalibrate_batchnorm

    def counting(trainer, module, split="retain"):
        calls.append((trainer.state.stage.value, trainer.global_step))
        return real(trainer, module, split)

    monkeypatch.setattr(batchnorm, "recalibrate_batchnorm", counting)
    module, dm = prepared_module(
        network=tiny_cnn(), localizer=DEL(budget=0.3), unlearner=ResetFinetune(lr=0.05), metrics=[], oracle=False
    )
    trainer = fast_trainer(tmp_path, max_epochs=2, limit_val_batches=1.0)
    trainer.fit(module, datamodule=dm)
    per_epoch = trainer.global_step // 2
    # Once per epoch, at the validation (the epoch-end check then finds nothing new).
    assert calls == [("validate", per_epoch), ("validate", 2 * per_epoch)]
    calls.clear()
    trainer.validate(module, datamodule=dm, verbose=False)  # a plain validate never touches the statistics
    assert calls == []


def test_without_validation_or_checkpoints_the_statistics_are_recomputed_once_at_the_end(
    prepared_module, tmp_path, monkeypatch
):
    import unlearn_pl.unlearners.batchnorm as batchnorm

    calls: list[tuple[str, int]] = []
    real = batchnorm.recalibrate_batchnorm
    monkeypatch.setattr(
        batchnorm,
        "recalibrate_batchnorm",
        lambda trainer, module, split="retain": (
            calls.append((trainer.state.stage.value, trainer.global_step)) or real(trainer, module, split)
        ),
    )
    module, dm = prepared_module(
        network=tiny_cnn(), localizer=DEL(budget=0.3), unlearner=ResetFinetune(lr=0.05), metrics=[], oracle=False
    )
    trainer = fast_trainer(tmp_path, max_epochs=3, limit_val_batches=0)
    trainer.fit(module, datamodule=dm)
    assert calls == [("train", trainer.global_step)]
    # A second fit of the same module restarts global_step: it recomputes again at its end.
    calls.clear()
    again = fast_trainer(tmp_path, max_epochs=3, limit_val_batches=0)
    again.fit(module, datamodule=dm)
    assert calls == [("train", again.global_step)] and again.global_step == trainer.global_step


def test_checkpoints_hold_statistics_of_their_own_weights(prepared_module, tmp_path):
    from lightning.pytorch.callbacks import ModelCheckpoint

    module, dm = prepared_module(
        network=tiny_cnn(), localizer=DEL(budget=0.3), unlearner=ResetFinetune(lr=0.05), metrics=[], oracle=False
    )
    saver = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_top_k=-1, every_n_epochs=1)
    trainer = fast_trainer(tmp_path, max_epochs=2, limit_val_batches=0, enable_checkpointing=True, callbacks=[saver])
    trainer.fit(module, datamodule=dm)
    first = sorted((tmp_path / "ckpt").glob("epoch=0*.ckpt"))
    assert len(first) == 1
    state = torch.load(first[0], weights_only=True)["state_dict"]
    net = tiny_cnn()
    net.load_state_dict({k.removeprefix("network."): v for k, v in state.items() if k.startswith("network.")})
    expected, bn = _first_bn_input_batch_means(net, dm.dataloader("retain"))
    torch.testing.assert_close(bn.running_mean, expected, rtol=1e-5, atol=1e-6)


def test_the_mixin_works_for_any_unlearner_as_documented(prepared_module, tmp_path):
    import torch.nn.functional as F

    from unlearn_pl.localizers import Full
    from unlearn_pl.unlearners import BatchNormRecalibration, Unlearner

    class BriefFinetune(BatchNormRecalibration, Unlearner):
        def __init__(self) -> None:
            self.recalibrate_bn = True

        def training_step(self, module, batch, batch_idx):
            _, x, y = batch["retain"]
            return F.cross_entropy(module.network(x), y)

        def configure_optimizers(self, module):
            return torch.optim.SGD(module.network.parameters(), lr=0.05)

    module, dm = prepared_module(
        network=tiny_cnn(), localizer=Full(), unlearner=BriefFinetune(), metrics=[], oracle=False
    )
    fast_trainer(tmp_path, max_epochs=1, limit_val_batches=0).fit(module, datamodule=dm)
    expected, bn = _first_bn_input_batch_means(module.network, dm.dataloader("retain"))
    torch.testing.assert_close(bn.running_mean, expected, rtol=1e-5, atol=1e-6)

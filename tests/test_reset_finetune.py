"""Reset + Finetune under an enforced mask (SPEC §3 'Enforcing a mask', §4)."""

import copy

import torch
from conftest import fast_trainer, tiny_cnn

from unlearn_pl.functional import MaskGuard, fresh_parameters, reset_selected_
from unlearn_pl.localizers import DEL
from unlearn_pl.unlearners import ResetFinetune


def test_unselected_scalars_bit_identical_after_reset_finetune_with_weight_decay_and_momentum(prepared_module, tmp_path):
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
    for (n, p), pa, pb, pc in zip(net.named_parameters(), a.parameters(), b.parameters(), c.parameters()):
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

"""Baseline localizers: Random, Magnitude, Gradient, SalUnSaliency, Layers."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from conftest import tiny_cnn, tiny_mlp
from lightning.pytorch.utilities.seed import isolate_rng

from unlearn_pl.functional import selected_fraction
from unlearn_pl.localizers import DEL, Gradient, Layers, Magnitude, Random, SalUnSaliency
from unlearn_pl.models import cifar_resnet18


def _equal(a: dict, b: dict) -> bool:
    return set(a) == set(b) and all(torch.equal(a[n], b[n]) for n in a)


def test_random_is_reproducible_per_seed_and_differs_across_seeds():
    net = tiny_cnn()
    m0 = Random(budget=0.3, seed=0).localize(net, None)
    assert _equal(m0, Random(budget=0.3, seed=0).localize(net, None))
    assert not _equal(m0, Random(budget=0.3, seed=1).localize(net, None))


def _random_mask(run_seed: int, **kwargs) -> dict:
    """Random's mask in a run seeded with ``run_seed`` (the global RNG disturbed after seeding, as
    a run's weight init and reference training would)."""
    net = tiny_cnn()  # seeds torch itself: before the run's seed
    pl.seed_everything(run_seed, verbose=False)
    torch.rand(1000)
    return Random(budget=0.3, **kwargs).localize(net, None)


def test_random_draws_a_new_mask_per_run_seed_unless_given_a_seed():
    m0, m1 = _random_mask(0), _random_mask(1)
    assert not _equal(m0, m1), "two run seeds draw two masks by default"
    assert _equal(m0, _random_mask(0)), "the same run seed draws the same mask"
    # An explicit seed fixes the mask whatever the run seed.
    fixed = _random_mask(0, seed=7)
    assert _equal(fixed, _random_mask(1, seed=7))
    # Lightning's isolate_rng (around reference training) restores the run seed for the draw.
    net = tiny_cnn()
    pl.seed_everything(0, verbose=False)
    with isolate_rng():
        pl.seed_everything(123, verbose=False)
    assert _equal(m0, Random(budget=0.3).localize(net, None))


def test_random_takes_whole_channels_to_the_budget():
    net = tiny_cnn()
    masks = Random(budget=0.3, seed=3).localize(net, None)
    largest_group = max(p[0].numel() for p in net.parameters())
    total = sum(p.numel() for p in net.parameters())
    assert 0.3 <= selected_fraction(masks) < 0.3 + largest_group / total
    for name, p in net.named_parameters():
        if p.ndim >= 2:
            rows = masks[name].reshape(p.shape[0], -1)
            assert bool((rows.all(1) | ~rows.any(1)).all()), f"{name}: a channel was split"


def test_random_seed_does_not_touch_global_rng():
    net = tiny_mlp()
    torch.manual_seed(5)
    expected = torch.rand(3)
    for seed in (0, None):
        torch.manual_seed(5)
        Random(budget=0.3, seed=seed).localize(net, None)
        assert torch.equal(torch.rand(3), expected)


def test_magnitude_and_gradient_are_del_variants(digits_dm):
    net, dm = tiny_mlp(), digits_dm()
    dm.setup()
    assert _equal(Magnitude(0.3).localize(net, None), DEL(0.3, score="magnitude").localize(net, None))
    assert not Magnitude().requires_data
    loader = dm.dataloader("forget")
    assert _equal(Gradient(0.3).localize(net, loader), DEL(0.3, score="grad").localize(net, loader))
    assert not _equal(Gradient(0.3).localize(net, loader), DEL(0.3).localize(net, loader))


def test_salun_mask_is_the_top_quantile_of_saliency(digits_dm):
    net, dm = tiny_mlp(), digits_dm()
    dm.setup()
    loader = dm.dataloader("forget")
    loc = SalUnSaliency(budget=0.5)
    saliency = loc.saliency(net, loader)
    masks = loc.localize(net, loader)
    flat_s = torch.cat([saliency[n].flatten() for n in saliency])
    flat_m = torch.cat([masks[n].flatten() for n in saliency])
    assert int(flat_m.sum()) == math.ceil(0.5 * flat_s.numel())
    assert float(flat_s[flat_m].min()) >= float(flat_s[~flat_m].max())
    assert float(flat_s[flat_m].min()) >= float(torch.quantile(flat_s, 0.5))
    # The gradient of −CE has the same magnitude as that of CE: DEL's |g| at parameter level agrees.
    assert _equal(masks, DEL(0.5, score="grad", granularity="parameter", top_h=1.0).localize(net, loader))


def test_layers_last_first_and_names():
    net = cifar_resnet18(width=0.125)
    last = Layers(last=2).localize(net, None)
    chosen = {n for n, m in last.items() if bool(m.all())}
    assert chosen == {n for n, _ in net.named_parameters() if n.startswith(("layer4.1.", "linear."))}
    assert all(bool(m.all()) or not bool(m.any()) for m in last.values())
    first = Layers(first=1, depth=1).localize(net, None)
    assert {n for n, m in first.items() if bool(m.any())} == {"conv1.weight"}
    named = Layers(names=["layer3", "linear.bias"]).localize(net, None)
    assert {n for n, m in named.items() if bool(m.any())} == {
        n for n, _ in net.named_parameters() if n.startswith("layer3.") or n == "linear.bias"
    }


def test_layers_errors_name_the_problem():
    net = tiny_mlp()
    with pytest.raises(ValueError, match=r"match no trainable parameter.*net\.1"):
        Layers(names=["head"]).localize(net, None)
    with pytest.raises(ValueError, match="has 2 at depth 2"):
        Layers(last=3).localize(net, None)
    with pytest.raises(ValueError, match="exactly one of"):
        Layers(names=["net"], last=1)
    with pytest.raises(ValueError, match="exactly one of"):
        Layers()
    with pytest.raises(ValueError, match="last must be"):
        Layers(last=0)


@pytest.mark.parametrize(
    "make, match",
    [
        (lambda: Random(budget=0.0), "budget"),
        (lambda: Random(granularity="block"), "granularity"),
        (lambda: Random(seed=1.5), "seed must be an int or None"),
        (lambda: Magnitude(top_h=0.0), "top_h"),
        (lambda: Gradient(data="test"), "data"),
        (lambda: SalUnSaliency(budget=1.5), "budget"),
    ],
)
def test_invalid_arguments_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_a_localizer_without_a_budget_needs_none():
    """A localizer that selects by a rule of its own is built without a dummy budget."""
    from unlearn_pl.localizers import Full, Layers, Localizer

    class HeadOnly(Localizer):
        requires_data = False

        def localize(self, model, dataloader):
            return {n: torch.full_like(p, n.startswith("net.3"), dtype=torch.bool) for n, p in model.named_parameters()}

    assert HeadOnly().budget is None and Full().budget is None and Layers(last=1).budget is None
    with pytest.raises(ValueError, match=r"budget must be in \(0, 1\] or None; got 2"):
        HeadOnly(budget=2)

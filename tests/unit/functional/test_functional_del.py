"""DEL's scores, grouping and budget selection against hand computations."""

import math

import pytest
import torch
from torch import nn

from unlearn_pl.functional import (
    criticality_scores,
    make_units,
    masks_from_scores,
    select_to_budget,
    selected_fraction,
    top_h_count,
)
from unlearn_pl.localizers import DEL


def linear_model() -> nn.Linear:
    m = nn.Linear(2, 3)
    with torch.no_grad():
        m.weight.copy_(torch.tensor([[1.0, -2.0], [0.5, 0.25], [-1.5, 3.0]]))
        m.bias.copy_(torch.tensor([0.1, -0.2, 0.3]))
    return m


def forget_batches():
    x = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.3, -0.7]])
    y = torch.tensor([0, 2, 1])
    return [(torch.arange(3), x, y)]


def hand_gradient(m: nn.Linear, x: torch.Tensor, y: torch.Tensor):
    """Mean CE gradient of a linear softmax classifier: (softmax(z) − onehot(y)) xᵀ / n."""
    p = torch.softmax(x @ m.weight.T + m.bias, dim=1)
    delta = p - torch.nn.functional.one_hot(y, 3).float()
    return delta.T @ x / len(y), delta.mean(0)


def test_weighted_gradient_scores_equal_hand_computation():
    m = linear_model()
    _, x, y = forget_batches()[0]
    gw, gb = hand_gradient(m, x, y)
    scores = criticality_scores(m, forget_batches(), "weighted_grad")
    torch.testing.assert_close(scores["weight"], (m.weight.detach() * gw).abs())
    torch.testing.assert_close(scores["bias"], (m.bias.detach() * gb).abs())
    torch.testing.assert_close(criticality_scores(m, forget_batches(), "grad")["weight"], gw.abs())
    torch.testing.assert_close(criticality_scores(m, None, "magnitude")["bias"], m.bias.detach().abs())


def test_scores_do_not_depend_on_batching():
    m = linear_model()
    _, x, y = forget_batches()[0]
    split = [(None, x[:1], y[:1]), (None, x[1:], y[1:])]
    whole = criticality_scores(m, forget_batches())
    parts = criticality_scores(m, split)
    for k in whole:
        torch.testing.assert_close(whole[k], parts[k])


def hand_masks(scores: dict, budget: float, top_h: float) -> dict:
    """Independent reference: enumerate groups with plain Python, sort, take to budget."""
    groups = []  # (score, order, name, rows)
    order = 0
    for name, s in scores.items():
        rows = s.reshape(s.shape[0], -1) if s.ndim > 1 else s.reshape(-1, 1)
        for r in range(rows.shape[0]):
            vals = sorted(rows[r].tolist(), reverse=True)
            h = max(1, math.ceil(top_h * len(vals)))
            groups.append((sum(vals[:h]) / h, order, name, r, len(vals)))
            order += 1
    total = sum(g[4] for g in groups)
    groups.sort(key=lambda g: (-g[0], g[1]))
    masks = {n: torch.zeros_like(s, dtype=torch.bool) for n, s in scores.items()}
    taken = 0
    for _score, _, name, r, size in groups:
        if taken >= budget * total:
            break
        view = masks[name].view(masks[name].shape[0], -1) if masks[name].ndim > 1 else masks[name].view(-1, 1)
        view[r] = True
        taken += size
    return masks


@pytest.mark.parametrize("budget", [0.1, 0.3, 0.5, 0.9, 1.0])
@pytest.mark.parametrize("top_h", [0.1, 0.5, 1.0])
def test_del_mask_equals_hand_computation(budget, top_h):
    m = linear_model()
    masks = DEL(budget=budget, top_h=top_h).localize(m, forget_batches())
    expected = hand_masks(criticality_scores(m, forget_batches()), budget, top_h)
    for k in expected:
        assert torch.equal(masks[k], expected[k]), (k, masks[k], expected[k])


def test_del_on_a_conv_net_groups_whole_output_channels_within_one_channel_of_budget():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 6, 3), nn.BatchNorm2d(6), nn.ReLU(), nn.Flatten(), nn.LazyLinear(4))
    net(torch.randn(1, 1, 5, 5))
    batches = [(None, torch.randn(8, 1, 5, 5), torch.randint(0, 4, (8,)))]
    masks = DEL(budget=0.3).localize(net, batches)
    conv = masks["0.weight"].reshape(6, -1)
    assert torch.equal(conv.all(1), conv.any(1)), "a conv filter is selected whole or not at all"
    lin = masks["4.weight"]
    assert torch.equal(lin.all(1), lin.any(1)), "a linear neuron is selected whole or not at all"
    total = sum(p.numel() for p in net.parameters())
    selected = selected_fraction(masks) * total
    largest_group = max(p[0].numel() if p.ndim > 1 else 1 for p in net.parameters())
    assert 0.3 * total <= selected < 0.3 * total + largest_group


def test_granularity_parameter_selects_the_top_scalars():
    m = linear_model()
    scores = criticality_scores(m, forget_batches())
    masks = DEL(budget=4 / 9, granularity="parameter").localize(m, forget_batches())
    flat_scores = torch.cat([scores["weight"].flatten(), scores["bias"]])
    flat_mask = torch.cat([masks["weight"].flatten(), masks["bias"]])
    assert int(flat_mask.sum()) == 4
    assert flat_scores[flat_mask].min() >= flat_scores[~flat_mask].max()


def test_granularity_layer_selects_whole_modules():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 3))
    batches = [(None, torch.randn(16, 4), torch.randint(0, 3, (16,)))]
    masks = DEL(budget=0.2, granularity="layer").localize(net, batches)
    for prefix in ("0", "2"):
        w, b = masks[f"{prefix}.weight"], masks[f"{prefix}.bias"]
        assert len({bool(w.all()), bool(w.any()), bool(b.all()), bool(b.any())}) == 1, "a layer is all-or-nothing"
    assert 0 < selected_fraction(masks) < 1


def test_top_h_rules():
    assert top_h_count(group_size=9, out_channels=64, top_h=0.1, top_h_of="group") == 1
    assert top_h_count(group_size=90, out_channels=64, top_h=0.1, top_h_of="group") == 9
    # The authors' code: int(0.1 · C_out) whatever the group size, capped at the group size.
    assert top_h_count(group_size=576, out_channels=64, top_h=0.1, top_h_of="channels") == 6
    assert top_h_count(group_size=3, out_channels=64, top_h=0.1, top_h_of="channels") == 3
    assert top_h_count(group_size=5, out_channels=4, top_h=0.1, top_h_of="channels") == 1


def test_top_h_of_channels_reproduces_authors_rule():
    scores = {"w": torch.arange(40.0).reshape(4, 10)}
    # channels rule: h = int(0.5 · 4) = 2 → mean of the two largest per row
    unit = make_units(scores, "channel")[0]
    from unlearn_pl.functional import group_scores

    torch.testing.assert_close(group_scores(unit, 0.5, "channels"), torch.tensor([8.5, 18.5, 28.5, 38.5]))
    torch.testing.assert_close(group_scores(unit, 0.5, "group"), torch.tensor([7.0, 17.0, 27.0, 37.0]))


def test_ties_are_broken_by_parameter_then_channel_order():
    chosen = select_to_budget(torch.tensor([1.0, 1.0, 1.0, 1.0]), torch.tensor([1, 1, 1, 1]), 2)
    assert chosen.tolist() == [True, True, False, False]
    masks = masks_from_scores({"a": torch.ones(2, 2), "b": torch.ones(2, 2)}, budget=0.5)
    assert masks["a"].all() and not masks["b"].any()


def test_last_group_may_overshoot_by_less_than_one_group():
    chosen = select_to_budget(torch.tensor([3.0, 2.0, 1.0]), torch.tensor([4, 4, 4]), 5)
    assert chosen.tolist() == [True, True, False]  # 4 < 5 → take the second group: 8 selected


@pytest.mark.parametrize("budget", [0.0, -0.1, 1.5, True])
def test_budget_outside_unit_interval_is_rejected(budget):
    with pytest.raises(ValueError, match="budget"):
        DEL(budget=budget)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"top_h": 0.0}, "top_h"),
        ({"top_h": 1.1}, "top_h"),
        ({"score": "hessian"}, "score"),
        ({"granularity": "block"}, "granularity"),
        ({"data": "test"}, "data"),
        ({"top_h_of": "rows"}, "top_h_of"),
    ],
)
def test_bad_del_arguments_name_the_value(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DEL(**kwargs)


def test_del_uses_eval_mode_batchnorm_and_restores_train_mode():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2))
    net.train()
    batches = [(None, torch.randn(6, 3), torch.randint(0, 2, (6,)))]
    before = net[1].running_mean.clone()
    DEL(budget=0.5).localize(net, batches)
    assert torch.equal(net[1].running_mean, before), "eval mode: running statistics untouched"
    assert net.training


def test_tensor_cap_spreads_the_budget_to_the_next_ranked_channels():
    # "a" holds the 4 best channels; uncapped, a 50% budget takes all of "a" and nothing of "b".
    scores = {"a": torch.tensor([[9.0], [8.0], [7.0], [6.0]]), "b": torch.tensor([[5.0], [4.0], [3.0], [2.0]])}
    assert masks_from_scores(scores, 0.5)["a"].all()
    capped = masks_from_scores(scores, 0.5, max_share_per_tensor=0.5)
    # At most 2 of a's 4 channels (its best two); the budget is filled by b's best two.
    assert capped["a"].reshape(-1).tolist() == [True, True, False, False]
    assert capped["b"].reshape(-1).tolist() == [True, True, False, False]


def test_tensor_cap_keeps_each_tensor_under_its_share_on_a_conv_net():
    torch.manual_seed(0)
    net = nn.Sequential(
        nn.Conv2d(1, 8, 3), nn.BatchNorm2d(8), nn.ReLU(), nn.Conv2d(8, 8, 3), nn.Flatten(), nn.LazyLinear(4)
    )
    net(torch.randn(1, 1, 7, 7))
    batches = [(None, torch.randn(8, 1, 7, 7), torch.randint(0, 4, (8,)))]
    for budget in (0.1, 0.3):
        masks = DEL(budget=budget, max_share_per_tensor=0.5).localize(net, batches)
        assert all(m.float().mean() <= 0.5 for m in masks.values())
        total = sum(p.numel() for p in net.parameters())
        assert selected_fraction(masks) * total >= budget * total
    # A cap of 1 is no cap.
    for k, m in DEL(budget=0.3, max_share_per_tensor=1.0).localize(net, batches).items():
        assert torch.equal(m, DEL(budget=0.3).localize(net, batches)[k])


@pytest.mark.parametrize(
    "cap,granularity,match",
    [
        (0.05, "channel", r"\[budget, 1\]"),
        (1.5, "channel", r"\[budget, 1\]"),
        (0.5, "layer", "granularity"),
    ],
)
def test_bad_tensor_cap_names_the_value(cap, granularity, match):
    with pytest.raises(ValueError, match=match):
        DEL(budget=0.1, max_share_per_tensor=cap, granularity=granularity)


def test_tensor_cap_that_cannot_fill_the_budget_is_refused():
    # Two tensors of 3 channels: a cap of 0.5 leaves 1 channel each, 2 of 6 scalars; a 0.5 budget asks 3.
    scores = {"a": torch.ones(3, 1), "b": torch.ones(3, 1)}
    with pytest.raises(ValueError, match="leaves 2 of the 6 scalars"):
        masks_from_scores(scores, 0.5, max_share_per_tensor=0.5)

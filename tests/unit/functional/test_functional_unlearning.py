"""Pure functions behind the unlearners and baseline localizers, on hand-made tensors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from unlearn_pl.functional import (
    block_of,
    blocks,
    dampen_,
    distillation_kl,
    fisher_diagonal,
    l1_norm,
    linear_decay,
    masks_from_scores,
    matches_prefix,
    random_group_scores,
    ssd_factors,
)


def test_distillation_kl_matches_hand_computation():
    student = torch.tensor([[0.0, math.log(3.0)]])  # softmax at T=1: [1/4, 3/4]
    teacher = torch.tensor([[0.0, 0.0]])  # [1/2, 1/2]
    expected = 0.5 * math.log(0.5 / 0.25) + 0.5 * math.log(0.5 / 0.75)
    assert float(distillation_kl(student, teacher, 1.0)) == pytest.approx(expected)
    # Temperature: logits scaled by T give the same distributions, and the loss is multiplied by T².
    assert float(distillation_kl(2 * student, 2 * teacher, 2.0)) == pytest.approx(4 * expected)
    # Direction: KL(teacher ‖ student), not the reverse.
    reverse = 0.25 * math.log(0.25 / 0.5) + 0.75 * math.log(0.75 / 0.5)
    assert float(distillation_kl(teacher, student, 1.0)) == pytest.approx(reverse)


def test_distillation_kl_is_batch_mean_and_validates():
    s = torch.tensor([[0.0, math.log(3.0)], [0.0, 0.0]])
    t = torch.zeros(2, 2)
    one = float(distillation_kl(s[:1], t[:1], 1.0))
    assert float(distillation_kl(s, t, 1.0)) == pytest.approx(one / 2)
    with pytest.raises(ValueError, match="temperature"):
        distillation_kl(s, t, 0.0)
    with pytest.raises(ValueError, match="same shape"):
        distillation_kl(s, t[:1], 1.0)


def test_ssd_factors_select_and_bound():
    i_f = {"w": torch.tensor([4.0, 1.0, 0.0, 5.0, 3.0])}
    i_d = {"w": torch.tensor([0.2, 1.0, 0.0, 0.0, 0.5])}
    f = ssd_factors(i_f, i_d, alpha=2.0, dampening=1.0)["w"]
    # 4 > 0.4 → 0.2/4; 1 ≤ 2 → 1; 0 > 0 false → 1; 5 > 0 → 0; 3 > 1 → 0.5/3
    torch.testing.assert_close(f, torch.tensor([0.05, 1.0, 1.0, 0.0, 0.5 / 3]))
    # λ large: the factor is capped at 1 (never amplifies).
    f = ssd_factors(i_f, i_d, alpha=2.0, dampening=100.0)["w"]
    torch.testing.assert_close(f, torch.tensor([1.0, 1.0, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="same parameters"):
        ssd_factors(i_f, {"v": torch.ones(5)})
    with pytest.raises(ValueError, match="alpha"):
        ssd_factors(i_f, i_d, alpha=-1.0)


def test_dampen_respects_masks():
    lin = nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        lin.weight.copy_(torch.tensor([[2.0, -4.0]]))
    factors = {"weight": torch.tensor([[0.5, 0.25]])}
    n = dampen_(lin, factors, {"weight": torch.tensor([[False, True]])})
    assert n == 1
    torch.testing.assert_close(lin.weight.detach(), torch.tensor([[2.0, -1.0]]))
    assert dampen_(lin, factors) == 2


def test_fisher_diagonal_is_mean_squared_batch_gradient():
    lin = nn.Linear(1, 2, bias=False)
    with torch.no_grad():
        lin.weight.zero_()
    # Zero weights: p = [1/2, 1/2]; dCE/dlogits = p − onehot; dW = (p − onehot) x.
    batches = [(torch.tensor([[1.0]]), torch.tensor([0])), (torch.tensor([[2.0]]), torch.tensor([1]))]
    fisher = fisher_diagonal(lin, batches)["weight"]
    g1 = torch.tensor([[-0.5], [0.5]]) * 1.0
    g2 = torch.tensor([[0.5], [-0.5]]) * 2.0
    torch.testing.assert_close(fisher, (g1**2 + g2**2) / 2)
    assert lin.weight.grad is None and lin.training
    with pytest.raises(ValueError, match="empty"):
        fisher_diagonal(lin, [])


def test_l1_norm_and_linear_decay():
    assert float(l1_norm([torch.tensor([1.0, -2.0]), torch.tensor([[-3.0]])])) == 6.0
    assert [linear_decay(2.0, t, 4) for t in range(5)] == [2.0, 1.5, 1.0, 0.5, 0.0]
    assert linear_decay(1.0, 10, 4) == 0.0
    with pytest.raises(ValueError, match="total"):
        linear_decay(1.0, 0, 0)
    with pytest.raises(ValueError, match="at least one"):
        l1_norm([])


@pytest.mark.parametrize("granularity", ["channel", "parameter", "layer"])
def test_random_group_scores_constant_within_groups(granularity):
    shapes = {"a.weight": torch.Size([3, 4]), "a.bias": torch.Size([3]), "b.weight": torch.Size([2, 3, 2])}
    s1 = random_group_scores(shapes, granularity, torch.Generator().manual_seed(0))
    s2 = random_group_scores(shapes, granularity, torch.Generator().manual_seed(0))
    assert all(torch.equal(s1[n], s2[n]) for n in shapes)
    if granularity == "channel":
        assert bool((s1["a.weight"] == s1["a.weight"][:, :1]).all())
        assert len(torch.unique(s1["a.bias"])) == 3
    if granularity == "layer":
        assert len(torch.unique(torch.cat([s1["a.weight"].flatten(), s1["a.bias"]]))) == 1
    # Selection to a budget takes whole groups.
    masks = masks_from_scores(s1, 0.5, granularity, top_h=1.0)
    if granularity == "channel":
        rows = masks["b.weight"].reshape(2, -1)
        assert bool((rows.all(1) | ~rows.any(1)).all())
    with pytest.raises(ValueError, match="granularity"):
        random_group_scores(shapes, "block", torch.Generator())  # type: ignore[arg-type]


def test_blocks_and_prefixes():
    names = [
        "conv1.weight",
        "layer1.0.conv1.weight",
        "layer1.0.bn1.bias",
        "layer1.1.conv1.weight",
        "linear.bias",
        "pos_embed",
    ]
    assert blocks(names, 2) == ["conv1", "layer1.0", "layer1.1", "linear", "pos_embed"]
    assert blocks(names, 1) == ["conv1", "layer1", "linear", "pos_embed"]
    assert block_of("layer1.0.conv1.weight", 3) == "layer1.0.conv1"
    assert matches_prefix("layer1.0.conv1.weight", "layer1") and not matches_prefix("layer10.weight", "layer1")
    with pytest.raises(ValueError, match="depth"):
        block_of("a.b", 0)

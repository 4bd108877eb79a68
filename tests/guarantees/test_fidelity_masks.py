"""DEL's and SalUn's masks against compact transcriptions of their authors' ``generate_mask.py``.

References (read with the authors' repositories at hand):

- SalUn: github OPTML-Group/Unlearn-Saliency, ``Classification/generate_mask.py:14-82``.
- DEL: github reihaneh-torkzadehmahani/DEL-Unlearning, ``generate_mask.py:69-164`` (with
  ``critic_criteria="weighted_grad"``, ``granularity="channel"``, ``model="resnet18"``), and
  its forget loader ``unlearning_datasets.py:270`` (``drop_last=True``).

Both authors rank the flattened scores with ``torch.argsort``, which is not stable on CPU: which
scalars of tied scores come first is up to the sort implementation. DEL's channel scores are tied
inside each channel, so the authors keep an implementation-defined part of the boundary channel.
The transcriptions below take ``stable`` as a parameter: with ``stable=True`` (the first scalars
of the boundary channel, in memory order) the masks must be equal; with the authors' unstable
sort they must be equal everywhere except inside that one channel.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from unlearn_pl.localizers import DEL, SalUnSaliency
from unlearn_pl.models import SmallCNN, cifar_resnet18


# ----------------------------------------------------------------- reference transcriptions
def _ranks_below(scores: dict[str, torch.Tensor], ratio: float, stable: bool) -> dict[str, torch.Tensor]:
    """Both repositories' selection: ``ranks < int(N · ratio)`` over ``argsort(-scores)``
    (Unlearn-Saliency generate_mask.py:57-80, DEL-Unlearning generate_mask.py:138-160)."""
    all_elements = -torch.cat([t.flatten() for t in scores.values()])
    threshold_index = int(len(all_elements) * ratio)
    positions = torch.argsort(all_elements, stable=stable)
    ranks = torch.argsort(positions)
    masks, start = {}, 0
    for name, tensor in scores.items():
        n = tensor.numel()
        masks[name] = (ranks[start : start + n] < threshold_index).reshape(tensor.shape)
        start += n
    return masks


def _batch_sum_of_gradients(model: nn.Module, batches, weighted: bool) -> dict[str, torch.Tensor]:
    """The loop both authors' ``generate_mask.py`` share: in eval mode, per batch the gradient of
    ``-CE`` (mean over the batch), times the parameter for DEL's weighted gradient, summed over batches."""
    model.eval()
    gradients = {name: 0 for name, _ in model.named_parameters()}
    for x, y in batches:
        loss = -F.cross_entropy(model(x), y)
        model.zero_grad()
        loss.backward()
        with torch.no_grad():
            for name, param in model.named_parameters():
                if param.grad is not None:
                    gradients[name] += param.data * param.grad.data if weighted else param.grad.data
    return gradients


def authors_salun_mask(model: nn.Module, batches, ratio: float, stable: bool = True) -> dict[str, torch.Tensor]:
    """Unlearn-Saliency/Classification/generate_mask.py:14-80: sum of per-batch gradients of
    ``-CE`` (mean over the batch), absolute value, top ``int(N · ratio)`` scalars."""
    gradients = {name: torch.abs_(g) for name, g in _batch_sum_of_gradients(model, batches, weighted=False).items()}
    return _ranks_below(gradients, ratio, stable)


def authors_del_mask(model: nn.Module, batches, ratio: float, stable: bool = True) -> dict[str, torch.Tensor]:
    """DEL-Unlearning/generate_mask.py:69-160 (weighted_grad, channel, resnet18): the sum over
    batches of ``θ · ∇(−CE)``; a ≥2-D tensor's channel is scored by the mean of its top
    ``int(0.1 · C_out)`` absolute scores (NaN when that is 0) written over the whole channel;
    1-D tensors keep their per-scalar absolute scores; then the top ``int(N · ratio)``."""
    gradients = _batch_sum_of_gradients(model, batches, weighted=True)
    with torch.no_grad():
        for name in gradients:
            if gradients[name].ndim > 1:
                flatten = torch.abs_(gradients[name]).view(gradients[name].shape[0], -1)
                top, _ = torch.topk(flatten, int(0.1 * len(flatten)), dim=1)
                channel_scores = top.mean(dim=1)  # NaN for a topk of 0 values
                for i in range(channel_scores.shape[0]):
                    gradients[name][i, :] = channel_scores[i]
            else:
                torch.abs_(gradients[name])
    return _ranks_below(gradients, ratio, stable)


# ----------------------------------------------------------------- fixtures
def random_batches(shape: tuple[int, ...], sizes: list[int], num_classes: int = 10, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, *shape, generator=g), torch.randint(0, num_classes, (n,), generator=g)) for n in sizes]


def resnet(width: float, seed: int) -> nn.Module:
    torch.manual_seed(seed)
    return cifar_resnet18(num_classes=10, width=width)


def jaccard(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    inter = sum(int((a[n] & b[n]).sum()) for n in a)
    union = sum(int((a[n] | b[n]).sum()) for n in a)
    return inter / union


def equal_masks(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[n], b[n]) for n in a)


def differing_channels(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[tuple[str, int]]:
    """(parameter, output channel) pairs where two masks differ."""
    out = []
    for n in a:
        diff = (a[n] != b[n]).reshape(a[n].shape[0], -1).any(dim=1) if a[n].ndim > 1 else (a[n] != b[n])
        out += [(n, int(i)) for i in diff.nonzero().flatten()]
    return out


AUTHORS_DEL = dict(top_h_of="authors", aggregate="batch_sum", budget_rounding="exact")


# ----------------------------------------------------------------- DEL
@pytest.mark.parametrize("width,seed,budget", [(0.125, 0, 0.3), (0.25, 1, 0.3), (0.25, 2, 0.1)])
def test_del_with_the_authors_switches_equals_their_mask(width, seed, budget):
    model = resnet(width, seed)
    batches = random_batches((3, 32, 32), [16, 16, 16], seed=seed)  # equal batches
    ours = DEL(budget=budget, **AUTHORS_DEL).localize(model, batches)
    theirs = authors_del_mask(model, batches, budget, stable=True)
    assert equal_masks(ours, theirs)
    total = sum(m.numel() for m in ours.values())
    assert sum(int(m.sum()) for m in ours.values()) == int(total * budget)
    # The authors' own (unstable) argsort: the same mask but for which scalars of the one
    # boundary channel it keeps.
    unstable = authors_del_mask(model, batches, budget, stable=False)
    assert len(differing_channels(ours, unstable)) <= 1


def test_del_authors_rule_never_selects_channels_of_narrow_tensors():
    # SmallCNN(width=8): the first conv has 8 < 10 output channels, so int(0.1 · 8) = 0.
    torch.manual_seed(0)
    model = SmallCNN(num_classes=10, in_channels=1, width=8)
    batches = random_batches((1, 8, 8), [16, 16], seed=3)
    narrow = [n for n, p in model.named_parameters() if p.ndim > 1 and p.shape[0] < 10]
    assert narrow
    ours = DEL(budget=0.5, **AUTHORS_DEL).localize(model, batches)
    assert equal_masks(ours, authors_del_mask(model, batches, 0.5))
    assert not any(bool(ours[n].any()) for n in narrow)
    # "channels" keeps at least one scalar per group, so those channels compete.
    channels = DEL(budget=0.5, top_h_of="channels", aggregate="batch_sum", budget_rounding="exact").localize(
        model, batches
    )
    assert any(bool(channels[n].any()) for n in narrow)


def test_del_default_grouping_distance_from_the_authors():
    """How far the default (paper's reading) is from the authors' mask, as ``docs/fidelity.md``
    reports: Jaccard over three seeds of random width-0.25 ResNet-18s, budget 0.3."""
    values = []
    for seed in range(3):
        model = resnet(0.25, seed)
        batches = random_batches((3, 32, 32), [16, 16, 16], seed=seed)
        values.append(jaccard(DEL(budget=0.3).localize(model, batches), authors_del_mask(model, batches, 0.3)))
    print(f"DEL default vs authors, width 0.25, budget 0.3: Jaccard {min(values):.3f}-{max(values):.3f}")
    assert 0.5 < min(values) and max(values) < 1.0


def test_del_drop_last_serves_only_full_localization_batches(digits_dm):
    dm = digits_dm()
    dm.setup()
    n = len(dm.split_dataset("forget"))
    loader = DEL(batch_size=32, drop_last=True).localization_loader(dm)
    sizes = [len(y) for _, _, y in loader]
    assert sizes == [32] * (n // 32) and n % 32 != 0
    assert [len(y) for _, _, y in DEL(batch_size=32).localization_loader(dm)][-1] == n % 32


# ----------------------------------------------------------------- SalUn
@pytest.mark.parametrize("width,seed", [(0.125, 0), (0.25, 1)])
def test_salun_batch_sum_equals_the_authors_mask(width, seed):
    model = resnet(width, seed)
    batches = random_batches((3, 32, 32), [16, 16, 16], seed=seed)
    ours = SalUnSaliency(budget=0.5, aggregate="batch_sum").localize(model, batches)
    assert equal_masks(ours, authors_salun_mask(model, batches, 0.5, stable=True))
    total = sum(m.numel() for m in ours.values())
    assert sum(int(m.sum()) for m in ours.values()) == int(total * 0.5)


def test_salun_mean_and_batch_sum_rank_alike_on_equal_batches_only():
    model = resnet(0.125, 0)
    equal = random_batches((3, 32, 32), [16, 16, 16], seed=0)
    mean = SalUnSaliency(budget=0.4, aggregate="mean").localize(model, equal)
    batch_sum = SalUnSaliency(budget=0.4, aggregate="batch_sum").localize(model, equal)
    assert jaccard(mean, batch_sum) > 0.9999  # same ranking; ceil vs int(N · ratio) may differ by one
    # A smaller last batch (146 = 4·32 + 18, the shape of SalUn's CIFAR-10 run) weighs its
    # examples more: the authors' mask is another mask.
    unequal = random_batches((3, 32, 32), [32, 32, 32, 32, 18], seed=0)
    mean = SalUnSaliency(budget=0.5, aggregate="mean").localize(model, unequal)
    theirs = authors_salun_mask(model, unequal, 0.5)
    assert equal_masks(SalUnSaliency(budget=0.5, aggregate="batch_sum").localize(model, unequal), theirs)
    j = jaccard(mean, theirs)
    print(f"SalUn mean vs authors at 146 = 4x32+18, width 0.125: Jaccard {j:.3f}")
    assert j < 1.0

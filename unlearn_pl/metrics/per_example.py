"""Per-example evaluation statistics, synced across processes by torchmetrics and de-duplicated."""

from __future__ import annotations

from collections.abc import Collection

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torchmetrics import Metric
from torchmetrics.utilities import dim_zero_cat

from unlearn_pl.functional.lira import logit_confidence

#: The statistics kept per example; attacks and accuracies are computed from these. ``phi`` is the
#: logit-scaled confidence that U-LiRA models (see :func:`unlearn_pl.functional.lira.logit_confidence`).
FIELDS: tuple[str, ...] = ("loss", "correct", "confidence", "entropy", "prediction", "target", "phi")


def example_stats(logits: Tensor, target: Tensor) -> dict[str, Tensor]:
    """Loss, correctness, true-class confidence, predictive entropy, prediction, target and φ, per example."""
    logp = F.log_softmax(logits.float(), dim=1)
    p = logp.exp()
    return {
        "loss": F.nll_loss(logp, target, reduction="none"),
        "correct": (logits.argmax(1) == target).float(),
        "confidence": p.gather(1, target[:, None]).squeeze(1),
        "entropy": -(p * logp).sum(1),
        "prediction": logits.argmax(1).float(),
        "target": target.float(),
        "phi": logit_confidence(logits, target).float(),
    }


def deduplicate(index: Tensor, values: dict[str, Tensor]) -> tuple[Tensor, dict[str, Tensor]]:
    """Keep one row per dataset index (the first), sorted by index.

    DistributedSampler pads the last batch by repeating examples; without this, those examples
    would count twice.
    """
    order = torch.sort(index, stable=True).indices
    index = index[order]
    keep = torch.ones_like(index, dtype=torch.bool)
    keep[1:] = index[1:] != index[:-1]
    return index[keep], {k: v[order][keep] for k, v in values.items()}


class PerExampleStats(Metric):
    """Collects :func:`example_stats` with dataset indices; ``compute`` returns them synced
    across processes and de-duplicated by index (a dict of 1-D tensors incl. ``index``)."""

    full_state_update = False
    index: list[Tensor] | Tensor  # torchmetrics state: batches until synced, then one tensor

    def __init__(self) -> None:
        super().__init__()
        self.add_state("index", default=[], dist_reduce_fx="cat")
        for f in FIELDS:
            self.add_state(f, default=[], dist_reduce_fx="cat")

    def update(self, logits: Tensor, target: Tensor, index: Tensor) -> None:
        for k, v in {"index": index.long(), **example_stats(logits.detach(), target)}.items():
            getattr(self, k).append(v)

    def compute(self) -> dict[str, Tensor]:
        # Before a sync the states are lists of batches; a distributed sync has already
        # concatenated them into one tensor (which has no truth value).
        if len(self.index) == 0 or (isinstance(self.index, Tensor) and self.index.numel() == 0):
            return {"index": torch.empty(0, dtype=torch.long), **{f: torch.empty(0) for f in FIELDS}}
        index, values = deduplicate(dim_zero_cat(self.index), {f: dim_zero_cat(getattr(self, f)) for f in FIELDS})
        return {"index": index, **values}

    def per_example(self) -> dict[str, Tensor]:
        """:meth:`compute` with every value 1-D: torchmetrics squeezes a one-element result to a
        0-d tensor, which a split of one example would otherwise get."""
        return {k: v.reshape(-1) for k, v in self.compute().items()}


class EvaluationOutputs(nn.Module):
    """Per-example statistics of every evaluated model on every split.

    ``results()`` is ``{model: {split: {field: tensor}}}``; keys are created on first update, in a
    fixed order, so every process syncs the same metrics in the same order.
    """

    stats: dict[str, PerExampleStats]  # an nn.ModuleDict of PerExampleStats

    def __init__(self) -> None:
        super().__init__()
        self.stats = nn.ModuleDict()  # type: ignore[assignment]  # torch's ModuleDict is not generic; this one holds PerExampleStats

    def update(self, model: str, split: str, logits: Tensor, target: Tensor, index: Tensor) -> None:
        key = f"{model}/{split}"
        if key not in self.stats:
            self.stats[key] = PerExampleStats().to(logits.device)
        self.stats[key].update(logits, target, index)

    def results(self, models: Collection[str] | None = None) -> dict[str, dict[str, dict[str, Tensor]]]:
        """Synced, de-duplicated statistics of ``models`` (default: every model updated so far).

        Every process must call this with the same ``models`` (computing syncs). Name only the
        models updated in this epoch: the others hold no data since :meth:`reset`.
        """
        out: dict[str, dict[str, dict[str, Tensor]]] = {}
        for key in sorted(self.stats.keys()):
            model, split = key.split("/")
            if models is not None and model not in models:
                continue
            out.setdefault(model, {})[split] = {k: v.cpu() for k, v in self.stats[key].per_example().items()}
        return out

    def reset(self) -> None:
        for m in self.stats.values():
            m.reset()

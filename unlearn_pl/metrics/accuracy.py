"""Accuracy and loss per model and split, and their gaps to the oracle."""

from __future__ import annotations

import lightning.pytorch as pl

from unlearn_pl import names
from unlearn_pl.metrics.base import EvaluationCallback
from unlearn_pl.names import Results


class SplitAccuracy(EvaluationCallback):
    """Accuracy and mean cross-entropy of every model (original, unlearned, oracle) on every
    evaluated split (retain, forget, val, test); columns ``<split>_acc`` and ``<split>_loss``.

    When an oracle is evaluated, every other model also gets ``<split>_acc_gap`` and
    ``<split>_loss_gap``: its value minus the oracle's (signed, so the table shows the
    direction; ``0`` = behaves like the retrained model).

    Args:
        gaps: add the gap columns when an oracle is present.
        during_fit: also evaluate at the validation epochs of ``fit``.
    """

    def __init__(self, gaps: bool = True, during_fit: bool = True) -> None:
        super().__init__(during_fit=during_fit)
        self.gaps = gaps

    def evaluate(self, trainer: pl.Trainer, pl_module) -> Results:
        out: Results = {}
        for model, splits in pl_module.per_example().items():
            for split, stats in splits.items():
                if len(stats["index"]) == 0:
                    continue
                out.setdefault(model, {})[names.accuracy(split)] = float(stats["correct"].mean())
                out[model][names.loss(split)] = float(stats["loss"].mean())
        if self.gaps and names.ORACLE in out:
            oracle = out[names.ORACLE]
            for model, values in out.items():
                if model == names.ORACLE:
                    continue
                for name in list(values):
                    if name in oracle:
                        values[names.gap(name)] = values[name] - oracle[name]
        return out

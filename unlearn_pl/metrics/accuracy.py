"""Accuracy and loss per model and split."""

from __future__ import annotations

import lightning.pytorch as pl

from unlearn_pl.metrics.base import EvaluationCallback, Results


class SplitAccuracy(EvaluationCallback):
    """Accuracy and mean cross-entropy of every model (original, unlearned, oracle) on every
    evaluated split (retain, forget, val, test); columns ``<split>_acc`` and ``<split>_loss``."""

    def evaluate(self, trainer: pl.Trainer, pl_module) -> Results:
        out: Results = {}
        for model, splits in pl_module.per_example().items():
            for split, stats in splits.items():
                if len(stats["index"]) == 0:
                    continue
                out.setdefault(model, {})[f"{split}_acc"] = float(stats["correct"].mean())
                out[model][f"{split}_loss"] = float(stats["loss"].mean())
        return out

"""``EvaluationCallback``: the extension point for validation metrics."""

from __future__ import annotations

from typing import TYPE_CHECKING

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback

if TYPE_CHECKING:
    from unlearn_pl.module import UnlearningModule

#: ``{model name: {metric name: value}}``, e.g. ``{"unlearned": {"forget_acc": 0.8}}``.
Results = dict[str, dict[str, float]]


class EvaluationCallback(Callback):
    """Base class of validation metrics of an :class:`~unlearn_pl.UnlearningModule`.

    Subclasses implement :meth:`evaluate`, which receives the module (whose
    ``per_example()`` gives every model's per-example statistics on every split, synced across
    processes and de-duplicated) and returns :data:`Results`. The base logs them and keeps them
    in ``self.results`` for the run report. ``evaluate`` runs on every process and must return
    the same values on each (fit attack models on synced data, with a fixed seed).

    Example::

        class ForgetLoss(EvaluationCallback):
            def evaluate(self, trainer, pl_module):
                per = pl_module.per_example()
                return {m: {"forget_loss": float(s["forget"]["loss"].mean())} for m, s in per.items()}
    """

    def __init__(self) -> None:
        self.results: Results = {}

    def evaluate(self, trainer: pl.Trainer, pl_module: UnlearningModule) -> Results:
        raise NotImplementedError

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: UnlearningModule) -> None:
        if trainer.sanity_checking:
            return
        self.results = self.evaluate(trainer, pl_module)
        for model, values in self.results.items():
            for name, value in values.items():
                pl_module.log(f"{model}/{name}", float(value), sync_dist=False, rank_zero_only=True)

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: UnlearningModule) -> None:
        self.on_validation_epoch_end(trainer, pl_module)

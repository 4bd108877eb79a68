"""``EvaluationCallback``: the extension point for validation metrics."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.trainer.states import TrainerFn

from unlearn_pl.names import Results
from unlearn_pl.protocols import UnlearningModel


class EvaluationCallback(Callback):
    """Base class of validation metrics of an :class:`~unlearn_pl.UnlearningModule`.

    Subclasses implement :meth:`evaluate`, which receives the module (whose
    ``per_example()`` gives every model's per-example statistics on every split, synced across
    processes and de-duplicated by dataset index) and returns :data:`Results`. The base logs
    them as ``<model>/<metric>`` and keeps them in ``self.results`` for the run report.

    Multi-process runs: ``per_example()`` is synced on every process first (it is a collective
    operation). Then, by default, ``evaluate`` runs on every process and must return the same
    values on each (it sees the same synced data). Subclasses whose work is costly or
    stochastic set ``rank_zero_compute = True``: ``evaluate`` then runs on global rank 0 only
    and its result is broadcast with ``trainer.strategy.broadcast``, so every rank reports
    exactly rank 0's values (an error on rank 0 is re-raised on every rank instead of leaving
    the others waiting).

    Args:
        during_fit: also evaluate at the validation epochs of ``fit``. With ``False`` the metric
            runs only in ``validate``/``test`` (the CLI validates once after ``fit``), which
            keeps costly metrics out of the training loop.

    Example::

        class ForgetLoss(EvaluationCallback):
            def evaluate(self, trainer, pl_module):
                per = pl_module.per_example()
                return {m: {"forget_loss": float(s["forget"]["loss"].mean())} for m, s in per.items()}
    """

    #: Evaluate on global rank 0 and broadcast (``True``), or on every rank (``False``).
    rank_zero_compute: bool = False

    def __init__(self, during_fit: bool = True) -> None:
        self.during_fit = during_fit
        self.results: Results = {}

    def evaluate(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> Results:
        """Compute this callback's metrics for every model; see the class docstring."""
        raise NotImplementedError(f"{type(self).__name__} must implement evaluate(trainer, pl_module)")

    def before_evaluate(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:
        """Runs on **every** rank before :meth:`evaluate`: the place for collective calls that a
        rank-0-only ``evaluate`` must not make (e.g. ``trainer.log_dir``, which broadcasts)."""

    def should_evaluate(self, trainer: pl.Trainer) -> bool:
        """Whether this evaluation epoch is one to compute: never in the sanity check, and in
        ``fit`` only with ``during_fit``."""
        if trainer.sanity_checking:
            return False
        return self.during_fit or trainer.state.fn != TrainerFn.FITTING

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:  # type: ignore[override]  # run by UnlearningModule only
        if not self.should_evaluate(trainer):
            return
        self.results = self._evaluate_synced(trainer, pl_module)
        for model, values in self.results.items():
            for name, value in values.items():
                # Every rank holds the same value (see the class docstring). Logging it as synced
                # with "max" returns it unchanged and exactly, where "mean" could round, and it
                # tells Lightning the value is valid on every rank (no sync_dist advice under DDP).
                pl_module.log(f"{model}/{name}", float(value), sync_dist=True, reduce_fx="max")

    def on_test_epoch_end(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> None:  # type: ignore[override]  # run by UnlearningModule only
        self.on_validation_epoch_end(trainer, pl_module)

    def _evaluate_synced(self, trainer: pl.Trainer, pl_module: UnlearningModel) -> Results:
        # A collective: every rank must take part before rank 0 may go on alone.
        pl_module.per_example()
        self.before_evaluate(trainer, pl_module)
        if not self.rank_zero_compute or trainer.world_size == 1:
            return self.evaluate(trainer, pl_module)
        payload: tuple[str, Any] | None = None
        error: Exception | None = None
        if trainer.is_global_zero:
            try:
                payload = ("ok", self.evaluate(trainer, pl_module))
            except Exception as e:  # re-raised below, after the other ranks are told
                error = e
                payload = ("error", f"{type(e).__name__}: {e}")
        payload = trainer.strategy.broadcast(payload, src=0)
        assert payload is not None
        if payload[0] == "error":
            if error is not None:
                raise error
            raise RuntimeError(f"{type(self).__name__}.evaluate failed on rank 0: {payload[1]}")
        return payload[1]

"""``OutcomeGuard``: a run's outcome that must not become a row of the results table is refused."""

from __future__ import annotations

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities import rank_zero_warn

from unlearn_pl.names import ORIGINAL, accuracy, logged
from unlearn_pl.protocols import UnlearningData, attached_data
from unlearn_pl.references.checkpoints import check_finite

#: A supplied original that scores 100% on the n validation examples is flagged when a model with
#: its test accuracy a (validation and test are both unseen draws) would do so with probability
#: aⁿ below this.
SEEN_VALIDATION_P = 0.01


class OutcomeGuard(Callback):
    """Refuses a fit that saw no training batch, and a network with NaN or infinite weights; warns
    when a supplied original has likely seen the validation data.

    Either would otherwise be evaluated and reported as an unlearned model: with no batch, the
    original (or, after a reset, an untrained network); after divergence, NaN weights whose every
    prediction is one class. The weights are checked at the end of ``fit`` and before every
    evaluation (also of a ``--ckpt_path`` of a run that diverged). The module returns this
    callback from ``configure_callbacks``, first, so its checks run before its other parts'.
    """

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.interrupted:
            return
        part = getattr(pl_module, "unlearner", None)
        unlearner = type(part).__name__
        recipe = getattr(getattr(pl_module, "references", None), "recipe", None)
        # An unlearner that trains zero epochs whatever the trainer says (NoOp) scores the original on purpose.
        intended_none = part is not None and part.training_epochs(recipe, None) == 0
        # One-shot unlearners (SSD) take no optimizer step, but they do receive a batch.
        if (
            not intended_none
            and trainer.global_step == 0
            and trainer.fit_loop.epoch_loop.batch_progress.total.ready == 0
        ):
            raise ValueError(
                f"fit ended without a single training step (max_epochs={trainer.max_epochs}, "
                f"max_steps={trainer.max_steps}, {trainer.num_training_batches} batches per epoch), so "
                f"{unlearner} unlearned nothing; give the trainer at least one epoch of data"
            )
        self.check_network(trainer, pl_module)

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Warn when a supplied original scores perfectly on validation data but not on test data:
        it has likely seen the validation examples, which must be unseen for every model."""
        source = getattr(getattr(pl_module, "references", None), "original", None)
        metrics, data = trainer.callback_metrics, attached_data(trainer)
        val, test = (metrics.get(logged(ORIGINAL, accuracy(s))) for s in ("val", "test"))
        if (
            source is None
            or val is None
            or test is None
            or trainer.sanity_checking
            or not isinstance(data, UnlearningData)
        ):
            return
        n = len(data.split_dataset("val"))
        chance = float(test) ** n
        if float(val) >= 1.0 - 1e-9 and chance < SEEN_VALIDATION_P:
            rank_zero_warn(
                f"the original model from {source} scores val_acc {float(val):.3f} but test_acc {float(test):.3f} "
                f"(an unseen model that accurate gets all {n} validation examples right with probability {chance:.1e}): "
                "it has probably been trained on validation examples. The original must be trained on retain ∪ "
                "forget only (the split's 'retain' and 'forget' indices in split.json; docs/own-model-and-data.md)"
            )

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check_network(trainer, pl_module)

    def on_test_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.check_network(trainer, pl_module)

    @staticmethod
    def check_network(trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Raise ``ValueError`` if the network's weights hold NaN or infinity, saying where they came from."""
        network = pl_module.get_submodule("network")  # the UnlearningModule's
        if trainer.state.fn == "fit":
            check_finite(
                network,
                f"the network after unlearning with {type(getattr(pl_module, 'unlearner', None)).__name__} "
                f"(epoch {trainer.current_epoch}, step {trainer.global_step})",
                "a learning rate too high for this unlearner (lower model.unlearner's lr), or NaN/infinite values in the data",
            )
        else:
            check_finite(network, "the network to evaluate")

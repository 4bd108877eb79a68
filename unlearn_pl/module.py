"""``UnlearningModule``: wraps a pretrained network and delegates to a localizer and an unlearner."""

from __future__ import annotations

from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor, nn

from unlearn_pl.guards import OutcomeGuard
from unlearn_pl.localizers.base import Localizer
from unlearn_pl.localizers.baselines import Full
from unlearn_pl.metrics import DEFAULT_METRICS, default_metrics
from unlearn_pl.metrics.base import EvaluationCallback
from unlearn_pl.metrics.per_example import EvaluationOutputs
from unlearn_pl.metrics.run_report import RunReport
from unlearn_pl.models import ImageClassifier, NetworkExecution
from unlearn_pl.protocols import UnlearningData, attached_data, eval_splits
from unlearn_pl.references import ReferenceModels
from unlearn_pl.references.checkpoints import RUN_KEY, check_resumable, run_fingerprint
from unlearn_pl.references.frozen import FrozenReferences
from unlearn_pl.references.results import ReferenceEvaluation, ReferenceResults
from unlearn_pl.unlearners.base import Unlearner
from unlearn_pl.utils.describe import instantiate, save_arguments
from unlearn_pl.utils.distributed import destroy_gloo_group_at_exit


class UnlearningModule(pl.LightningModule):
    """Unlearns a forget set from a pretrained network.

    The module delegates: the **localizer** decides which scalars may change (computed once at
    fit start and enforced), the **unlearner** defines the training step and optimizer, the
    **references** provide the original model (the starting point) and the oracle, and the
    **metrics** are validation callbacks reading :meth:`per_example` (every model on every split).
    All are passed in (in YAML as ``class_path`` blocks) and returned from :meth:`configure_callbacks`.

    Args:
        network: the architecture, freshly initialized (any ``nn.Module``, e.g.
            ``unlearn_pl.models.cifar_resnet18`` or ``unlearn_pl.models.timm_model``);
            :meth:`prepare_models` loads the original's weights into it.
        localizer: which parameters may change (default :class:`~unlearn_pl.localizers.Full`).
        unlearner: the unlearning algorithm (required for ``fit``).
        references: provider of the original and oracle models.
        metrics: validation callbacks (default :data:`~unlearn_pl.metrics.DEFAULT_METRICS`: accuracy
            and loss per split with gaps to the oracle, ToW, loss attack, MIA-efficacy).
        report: print and save the results table after ``validate``/``test``.
        reference_results_dir: a folder of the reference models' per-example results, one file per
            evaluation key (:class:`~unlearn_pl.references.ReferenceEvaluation`); runs given the
            same folder (a study's trials) evaluate each reference model once.
        execution: compile the network or keep it channels-last (the Trainer's ``precision`` sets the precision).

    Checkpoints carry these arguments as ``class_path`` blocks: ``load_from_checkpoint`` rebuilds the module.
    """

    def __init__(
        self,
        network: ImageClassifier,
        localizer: Localizer | None = None,
        unlearner: Unlearner | None = None,
        references: ReferenceModels | None = None,
        metrics: list[EvaluationCallback] | None = DEFAULT_METRICS,
        report: bool = True,
        reference_results_dir: str | None = None,
        execution: NetworkExecution | None = None,
    ) -> None:
        super().__init__()
        save_arguments(self, {k: v for k, v in locals().items() if k not in ("self", "__class__")})
        self.network = network
        self.localizer = localizer if localizer is not None else Full()
        self.unlearner = unlearner
        self.references = references if references is not None else ReferenceModels()
        self.metrics = [instantiate(m) for m in metrics] if metrics is not None else default_metrics()
        self.report = report
        self.reference_results_dir = reference_results_dir
        self.execution = execution
        self.evaluation = EvaluationOutputs()
        self.reference_evaluation = ReferenceEvaluation(reference_results_dir)
        self._guard = OutcomeGuard()
        #: The results table of the last ``validate``/``test`` (``None`` with ``report=False``).
        self.run_report = RunReport() if report else None
        self.automatic_optimization = unlearner.automatic_optimization if unlearner is not None else True
        # The untrained network both references train from, then the references: not in checkpoints, never moved.
        self._frozen = FrozenReferences(network)
        self._per_example: dict[str, Any] | None = None

    # ------------------------------------------------------------ reference models; what a run was made of
    @property
    def initial_network(self) -> ImageClassifier:
        """The untrained network the original and the oracle were both trained from (read-only use)."""
        return self._frozen.initial

    @property
    def prepared(self) -> bool:
        return bool(self._frozen.nets)

    @property
    def reference_results(self) -> ReferenceResults | None:
        """The reference models' per-example results of the last evaluation, with their key."""
        return self.reference_evaluation.held

    def prepare_models(self, datamodule: UnlearningData) -> None:
        """Load (or train and cache) the original and oracle; start from the original's weights.

        The CLI calls this before ``fit``/``validate``. Under multi-process strategies, call it
        before ``trainer.fit`` (launchers re-run the script, and the cache makes the others load).
        """
        nets = self.references.prepare(self._frozen.initial, datamodule)
        # Lightning's model summary computes input/output sizes and FLOPs from this.
        self.example_input_array = datamodule.split_dataset("train")[0][1].unsqueeze(0)
        self.network.load_state_dict(nets["original"].state_dict())
        self._frozen.hold(nets)

    def reference(self, name: str) -> nn.Module:
        """A frozen reference model: ``"original"`` or ``"oracle"``."""
        return self._frozen.get(name).to(self.device)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[RUN_KEY] = run_fingerprint(self._trainer, self.localizer)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        check_resumable(checkpoint, self.network, run_fingerprint(self._trainer, self.localizer))

    # ------------------------------------------------------------ delegation
    def setup(self, stage: str) -> None:
        datamodule, unlearner = attached_data(self.trainer), self.unlearner
        if stage == "fit" and unlearner is None:
            raise ValueError("fit needs an unlearner; pass unlearner= (e.g. unlearn_pl.unlearners.ResetFinetune)")
        if stage == "fit" and unlearner is not None and isinstance(datamodule, UnlearningData):
            # The module tells the data module what to serve; the data module never reads the model.
            datamodule.serve(tuple(unlearner.requires), unlearner.combine_mode, unlearner.batch_sizes)
        destroy_gloo_group_at_exit()  # a no-op unless this process is in a gloo process group
        if not self.prepared and self.trainer.world_size > 1:
            raise RuntimeError(
                "call module.prepare_models(datamodule) before trainer.fit/validate when running on "
                "several processes (the unlearn-pl CLI does this)"
            )
        if not self.prepared:
            self.prepare_models(datamodule)

    @property
    def masks(self) -> dict[str, Tensor]:
        """The localizer's masks (computed on first access during fit)."""
        return self.localizer.ensure_masks(self.trainer, self)

    def configure_callbacks(self) -> list[Callback]:
        parts = [
            self._guard,
            self.execution,
            self.localizer,
            self.unlearner,
            *self.metrics,
            self.run_report,
            self.reference_evaluation,
        ]
        return [c for c in parts if c is not None]

    def teardown(self, stage: str) -> None:
        # configure_callbacks() attaches the parts at every fit/validate/test; detached here, the
        # next trainer.validate(...) attaches them afresh instead of warning they override others.
        if self._trainer is not None:
            own = set(map(id, self.configure_callbacks()))
            self.trainer.callbacks = [c for c in self.trainer.callbacks if id(c) not in own]  # type: ignore[attr-defined]  # Lightning's Trainer sets callbacks in its callback connector, undeclared

    def configure_optimizers(self) -> OptimizerLRScheduler:
        assert self.unlearner is not None
        return self.unlearner.configure_optimizers(self)

    def forward(self, x: Tensor) -> Tensor:
        return self.network(x)

    def training_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Tensor | None:
        assert self.unlearner is not None
        if not isinstance(batch, dict):  # a single split, or "sequential" combined mode
            batch = {self.unlearner.requires[dataloader_idx]: batch}
        loss = self.unlearner.training_step(self, batch, batch_idx)
        if loss is not None:
            self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_fit_start(self) -> None:
        self.masks  # noqa: B018 — make sure the mask exists even if no callback touched it

    # ------------------------------------------------------------ evaluation
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        index, x, y = batch
        split = eval_splits(attached_data(self.trainer))[dataloader_idx]
        self.evaluation.update("unlearned", split, self.network(x), y, index)
        if not self.reference_evaluation.reuse:
            for name in self._frozen.nets:
                self.evaluation.update(name, split, self.reference(name)(x), y, index)

    test_step = validation_step

    def per_example(self) -> dict[str, dict[str, dict[str, Tensor]]]:
        """``{model: {split: {field: tensor}}}`` of this evaluation epoch, synced and de-duplicated.

        Computed once per epoch on first call; every process must call it (it syncs). The frozen
        reference models are evaluated once per evaluation key and their results reused
        (:attr:`reference_results`, and the files of ``reference_results_dir``).
        """
        if self._per_example is None:
            # Reused reference rows were not updated this epoch: compute only what was.
            results = self.evaluation.results(models=("unlearned",) if self.reference_evaluation.reuse else None)
            self._per_example = self.reference_evaluation.complete(results, list(self._frozen.nets))
        return self._per_example

    def _start_evaluation(self) -> None:
        self._per_example = None
        self.evaluation.reset()
        self.reference_evaluation.start(self.trainer, self._frozen.hashes, self.device)

    def _end_evaluation(self) -> None:
        self.reference_evaluation.release()  # also when no metric asked for the results
        self._per_example = None  # free the gathered tensors
        self.evaluation.reset()

    on_validation_epoch_start = on_test_epoch_start = _start_evaluation
    on_validation_epoch_end = on_test_epoch_end = _end_evaluation

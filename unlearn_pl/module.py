"""``UnlearningModule``: wraps a pretrained network and delegates to a localizer and an unlearner."""

from __future__ import annotations

import copy
import inspect
from typing import Any

import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback
from lightning.pytorch.core.mixins.hparams_mixin import _given_hyperparameters
from lightning.pytorch.utilities import move_data_to_device
from lightning.pytorch.utilities.types import OptimizerLRScheduler
from torch import Tensor, nn

from unlearn_pl._io import acquire_saying_so
from unlearn_pl.data.datamodule import EVAL_SPLITS
from unlearn_pl.hparams import NotDescribable, class_path, describe, plain
from unlearn_pl.localizers.base import Localizer
from unlearn_pl.localizers.baselines import Full
from unlearn_pl.metrics import default_metrics
from unlearn_pl.metrics.base import EvaluationCallback
from unlearn_pl.metrics.per_example import EvaluationOutputs
from unlearn_pl.metrics.report import RunReport
from unlearn_pl.models.base import ImageClassifier
from unlearn_pl.reference_results import ReferenceResults, ReferenceResultsStore, results_key
from unlearn_pl.references import DIVERGENCE_CAUSES, ReferenceModels, check_finite, check_state_fits, state_hash
from unlearn_pl.unlearners.base import Unlearner

#: Lightning's instantiator for ``load_from_checkpoint``: it parses the saved ``class_path``
#: blocks with jsonargparse, exactly as ``LightningCLI`` records them.
CHECKPOINT_INSTANTIATOR = "lightning.pytorch.cli.instantiate_module"


class _ReleaseResultsLock(Callback):
    """Releases the module's reference-results lock when a run fails mid-evaluation (Lightning
    calls ``on_exception`` on callbacks, not on the module), so later runs of this process do not
    wait on it."""

    def on_exception(self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException) -> None:
        pl_module._release_results_lock()  # type: ignore[operator]


class UnlearningModule(pl.LightningModule):
    """Unlearns a forget set from a pretrained network.

    The module is thin glue: the **localizer** decides which scalars may change (computed once
    at fit start and enforced), the **unlearner** defines the training step and optimizer, the
    **references** provide the original model (the starting point) and the oracle, and the
    **metrics** are validation callbacks. All four are passed in (in YAML as ``class_path``
    blocks) and returned from :meth:`configure_callbacks`.

    Validation evaluates the unlearned network and the reference models on every split of the
    data module (retain, forget, val, test); metric callbacks read the per-example statistics
    from :meth:`per_example`.

    Args:
        network: the architecture, freshly initialized; the original weights are loaded into it
            by :meth:`prepare_models`. Any ``nn.Module``; from the command line e.g.
            ``unlearn_pl.models.cifar_resnet18`` or ``unlearn_pl.models.timm_model``.
        localizer: which parameters may change (default :class:`~unlearn_pl.localizers.Full`).
        unlearner: the unlearning algorithm (required for ``fit``).
        references: provider of the original and oracle models.
        metrics: validation callbacks (default :func:`~unlearn_pl.metrics.default_metrics`: accuracy and
            loss per split with gaps to the oracle, ToW, loss attack, MIA-efficacy).
        report: print and save the results table after ``validate``/``test``.
        reference_results_dir: a folder of the reference models' per-example results, one file per
            :meth:`reference_key` (:class:`~unlearn_pl.reference_results.ReferenceResultsStore`);
            runs given the same folder (a study's trials) evaluate each reference model once.

    Checkpoints carry these arguments as ``class_path`` blocks, so
    ``UnlearningModule.load_from_checkpoint(path)`` rebuilds the module (network weights
    included) whether the CLI or a Python script made it; see :mod:`unlearn_pl.hparams`.
    """

    def __init__(
        self,
        network: ImageClassifier,
        localizer: Localizer | None = None,
        unlearner: Unlearner | None = None,
        references: ReferenceModels | None = None,
        metrics: list[EvaluationCallback] | None = None,
        report: bool = True,
        reference_results_dir: str | None = None,
    ) -> None:
        super().__init__()
        self._save_components(
            network=network, localizer=localizer, unlearner=unlearner, references=references,
            metrics=metrics, report=report, reference_results_dir=reference_results_dir,
        )
        self.network = network
        self.localizer = localizer if localizer is not None else Full()
        self.unlearner = unlearner
        self.references = references if references is not None else ReferenceModels()
        self.metrics = list(metrics) if metrics is not None else default_metrics()
        self.report = RunReport() if report else None
        self.evaluation = EvaluationOutputs()
        if unlearner is not None:
            self.automatic_optimization = unlearner.automatic_optimization
        # The untrained network: original and oracle are trained from these same weights. Kept
        # out of nn.Module registration so it is neither in checkpoints nor moved to devices.
        object.__setattr__(self, "_initial", copy.deepcopy(network))
        # Reference models live outside the state dict (checkpoints hold the unlearned network only).
        self._reference_nets: dict[str, nn.Module] = {}
        self._per_example: dict[str, Any] | None = None
        #: The reference models' per-example results (:class:`ReferenceResults`), reused by later
        #: evaluations with the same key: they are two thirds of every validation epoch.
        self.reference_results: ReferenceResults | None = None
        self.reference_results_dir = reference_results_dir
        self._results_store = ReferenceResultsStore(reference_results_dir) if reference_results_dir else None
        self._results_lock: Any = None  # held (rank 0) while this run evaluates results the store lacks
        self._lock_release = _ReleaseResultsLock() if self._results_store is not None else None
        self._evaluation_key = ""
        self._reference_hashes: tuple[tuple[str, str], ...] = ()
        self._reuse_references = False

    def _save_components(self, **arguments: Any) -> None:
        """``save_hyperparameters`` for arguments that are objects.

        Under ``LightningCLI`` the hyperparameters are the parsed config, which Lightning hands
        over itself. From Python, each argument is described as a ``class_path`` block
        (:func:`~unlearn_pl.hparams.describe`); an argument that cannot be described is left
        out, and ``load_from_checkpoint`` then needs it passed explicitly.
        """
        # LightningCLI sets this context variable while it builds the model (``_InstantiatorFn``
        # in lightning/pytorch/cli.py); Lightning offers no public way to ask for it.
        if _given_hyperparameters.get() is not None:
            self.save_hyperparameters()
            return
        hparams: dict[str, Any] = {"_class_path": class_path(type(self)), "_instantiator": CHECKPOINT_INSTANTIATOR}
        for name, value in arguments.items():
            try:
                hparams[name] = describe(value)
            except NotDescribable:
                pass
        self.save_hyperparameters(hparams)

    # ------------------------------------------------------------ reference models
    @property
    def initial_network(self) -> nn.Module:
        """The untrained network the original and the oracle were both trained from (read-only use)."""
        return self._initial

    @property
    def prepared(self) -> bool:
        return bool(self._reference_nets)

    def prepare_models(self, datamodule: pl.LightningDataModule) -> None:
        """Load (or train and cache) the original and oracle; start from the original's weights.

        The CLI calls this before ``fit``/``validate``. Under multi-process strategies, call it
        before ``trainer.fit`` (launchers re-run the script, and the cache makes the others load).
        """
        datamodule.setup("fit")
        self.check_fits_data(datamodule)  # before training references on data the network cannot fit
        nets = self.references.prepare(self._initial, datamodule)  # type: ignore[arg-type]
        self.network.load_state_dict(nets["original"].state_dict())
        self._reference_nets = {name: net.eval().requires_grad_(False) for name, net in nets.items()}
        self._reference_hashes = tuple((name, state_hash(net)) for name, net in self._reference_nets.items())

    @torch.no_grad()
    def check_fits_data(self, datamodule: pl.LightningDataModule) -> None:
        """Raise ``ValueError`` unless the network takes the data's inputs and has one output per class.

        Without this check a network with too few outputs fails deep inside the loss
        (``IndexError: Target 8 is out of bounds``) and one with too many trains silently. One
        example goes through the untrained copy in eval mode, so nothing (BatchNorm statistics,
        RNG streams) changes.
        """
        num_classes = getattr(datamodule, "num_classes", None)
        if num_classes is None or not hasattr(datamodule, "dataset"):
            return  # a foreign data module: nothing to compare with
        _, x, _ = datamodule.dataset("train")[0]  # type: ignore[attr-defined]
        # Lightning's model summary computes input/output sizes and FLOPs from this.
        self.example_input_array = x.unsqueeze(0)
        net: nn.Module = self._initial  # type: ignore[attr-defined]
        data = getattr(getattr(datamodule, "reader", None), "name", type(datamodule).__name__)
        was_training = net.training
        net.eval()
        try:
            logits = net(x.unsqueeze(0))
        except RuntimeError as e:
            raise ValueError(
                f"the network ({type(net).__name__}) cannot process {data}'s inputs of shape {tuple(x.shape)}: "
                f"configure its input size/channels for this data (e.g. in_channels={x.shape[0]})\n{e}"
            ) from e
        finally:
            net.train(was_training)
        outputs = logits.shape[-1] if logits.ndim == 2 else None
        if outputs != num_classes:
            raise ValueError(
                f"the network ({type(net).__name__}) outputs {outputs if outputs is not None else tuple(logits.shape)} "
                f"classes but the data ({data}) has {num_classes}; set the network's num_classes={num_classes}"
            )

    # ------------------------------------------------------------ checkpoints: what a run was made of
    #: Checkpoint key of :meth:`run_fingerprint`.
    RUN_KEY = "unlearn_pl_run"

    def run_fingerprint(self) -> dict[str, Any]:
        """What a checkpoint of this run may only be resumed with: the split and the localizer's settings.

        The split's content hash (data, retain, forget, validation, relabels) and the localizer's
        class and arguments (its mask is computed from them once per run and then restored from
        the checkpoint, so resuming under other settings would keep the old mask silently).
        """
        datamodule = self.trainer.datamodule if self._trainer is not None else None
        split = datamodule.split_fingerprint() if hasattr(datamodule, "split_fingerprint") else None
        loc = self.localizer
        # The constructor arguments (stored under their own names, as jsonargparse needs them).
        names = [n for n in inspect.signature(type(loc).__init__).parameters if n != "self" and hasattr(loc, n)]
        settings = {n: plain(getattr(loc, n)) for n in names}
        return {"split": split, "localizer": {"class": f"{type(loc).__module__}.{type(loc).__qualname__}", **settings}}

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[self.RUN_KEY] = self.run_fingerprint()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        """Check a ``--ckpt_path`` checkpoint before Lightning loads it: its network must fit
        this one, hold finite weights, and (when it records them) come from the same split and
        localizer settings."""
        state = checkpoint.get("state_dict", {})
        network_state = {k[len("network."):]: v for k, v in state.items() if k.startswith("network.")}
        check_state_fits(self.network, network_state, "the checkpoint (--ckpt_path)")
        check_finite(network_state, "the checkpoint (--ckpt_path)", "that the run that saved it diverged (" + DIVERGENCE_CAUSES + ")")
        saved = checkpoint.get(self.RUN_KEY)
        if saved is None:
            return  # a checkpoint that records nothing to compare (written by Lightning alone)
        current = self.run_fingerprint()
        for part, what in (("split", "split (data, forget set, retain set, validation set)"), ("localizer", "localizer settings")):
            if saved.get(part) is not None and current.get(part) is not None and saved[part] != current[part]:
                raise ValueError(
                    f"the checkpoint (--ckpt_path) was made with another {what}: checkpoint {saved[part]!r}, "
                    f"this run {current[part]!r}. Resuming would keep the checkpoint's weights and mask under this "
                    "configuration; resume with the configuration that made it (its config.yaml), or start a new run"
                )

    def reference(self, name: str) -> nn.Module:
        """A frozen reference model: ``"original"`` or ``"oracle"``."""
        if name not in self._reference_nets:
            raise KeyError(f"no {name!r} reference model; available: {sorted(self._reference_nets)}")
        return self._reference_nets[name].to(self.device)

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.unlearner is None:
            raise ValueError("fit needs an unlearner; pass unlearner= (e.g. unlearn_pl.unlearners.ResetFinetune)")
        if stage == "fit" and hasattr(self.trainer.datamodule, "serve"):
            # The module tells the data module what to serve; the data module never reads the model.
            self.trainer.datamodule.serve(  # type: ignore[union-attr]
                tuple(self.unlearner.requires), self.unlearner.combine_mode, getattr(self.unlearner, "batch_sizes", None)
            )
        if not self.prepared:
            if self.trainer.world_size > 1:
                raise RuntimeError(
                    "call module.prepare_models(datamodule) before trainer.fit/validate when running on "
                    "several processes (the unlearn-pl CLI does this)"
                )
            self.prepare_models(self.trainer.datamodule)

    # ------------------------------------------------------------ delegation
    @property
    def masks(self) -> dict[str, Tensor]:
        """The localizer's masks (computed on first access during fit)."""
        return self.localizer.ensure_masks(self.trainer, self)

    def configure_callbacks(self) -> list[Callback]:
        parts: list[Callback | None] = [self.localizer, self.unlearner, *self.metrics, self.report, self._lock_release]
        return [c for c in parts if c is not None]

    def teardown(self, stage: str) -> None:
        # configure_callbacks() attaches the parts at every fit/validate/test; detach them at the
        # end so that the next trainer.validate(...) on this trainer attaches them afresh instead
        # of reporting them as overriding callbacks "passed to Trainer".
        if self._trainer is not None:
            own = set(map(id, self.configure_callbacks()))
            self.trainer.callbacks = [c for c in self.trainer.callbacks if id(c) not in own]

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

    def on_fit_end(self) -> None:
        """Refuse the outcome of a fit that saw no training batch, or whose weights diverged.

        Either would otherwise be evaluated and reported as an unlearned model: with no batch,
        the original (or, after a reset, an untrained network); after divergence, NaN weights
        whose every prediction is one class.
        """
        if self.trainer.interrupted:
            return
        # One-shot unlearners (SSD) take no optimizer step, but they do receive a batch.
        batches = self.trainer.fit_loop.epoch_loop.batch_progress.total.ready
        if self.trainer.global_step == 0 and batches == 0:
            raise ValueError(
                f"fit ended without a single training step (max_epochs={self.trainer.max_epochs}, "
                f"max_steps={self.trainer.max_steps}, {self.trainer.num_training_batches} batches per epoch), so "
                f"{type(self.unlearner).__name__} unlearned nothing; give the trainer at least one epoch of data"
            )
        self._check_network_finite()

    def _check_network_finite(self) -> None:
        """Raise ``ValueError`` if the network's weights hold NaN or infinity, saying where they came from."""
        if self._trainer is not None and self.trainer.state.fn == "fit":
            check_finite(
                self.network, f"the network after unlearning with {type(self.unlearner).__name__} "
                f"(epoch {self.trainer.current_epoch}, step {self.trainer.global_step})",
                "a learning rate too high for this unlearner (lower model.unlearner's lr), or NaN/infinite values in the data",
            )
        else:
            check_finite(self.network, "the network to evaluate")

    # ------------------------------------------------------------ evaluation
    def eval_splits(self) -> tuple[str, ...]:
        return tuple(getattr(self.trainer.datamodule, "eval_splits", EVAL_SPLITS))

    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        index, x, y = batch
        split = self.eval_splits()[dataloader_idx]
        self.evaluation.update("unlearned", split, self.network(x), y, index)
        if self._reuse_references:
            return
        for name in self._reference_nets:
            self.evaluation.update(name, split, self.reference(name)(x), y, index)

    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        self.validation_step(batch, batch_idx, dataloader_idx)

    def per_example(self) -> dict[str, dict[str, dict[str, Tensor]]]:
        """``{model: {split: {field: tensor}}}`` of this evaluation epoch, synced and de-duplicated.

        Computed once per epoch on first call; every process must call it (it syncs). The frozen
        reference models are evaluated once per :meth:`reference_key` and their results reused
        (:attr:`reference_results`, and the files of ``reference_results_dir``).
        """
        if self._per_example is None:
            # Reused reference rows were not updated this epoch: compute only what was.
            results = self.evaluation.results(models=("unlearned",) if self._reuse_references else None)
            if self._reuse_references:
                assert self.reference_results is not None
                results.update(self.reference_results.results)
            else:
                self.reference_results = ReferenceResults(
                    self._evaluation_key, {n: results[n] for n in self._reference_nets if n in results}
                )
                if self._results_lock is not None:
                    self._results_store.save(self.reference_results)  # type: ignore[union-attr]
                    self._release_results_lock()
            self._per_example = results
        return self._per_example

    def reference_key(self) -> str:
        """What the reference models' per-example results depend on, hashed: their weights (content
        hashes), the evaluated splits (data fingerprints), the evaluation batch size and the number
        of batches evaluated per split."""
        trainer = self.trainer
        batches = trainer.num_test_batches if trainer.testing else trainer.num_val_batches
        datamodule = trainer.datamodule
        fingerprint = getattr(datamodule, "fingerprint", None)
        data = [fingerprint(s) for s in self.eval_splits()] if fingerprint is not None else [type(datamodule).__name__]
        batch_size = getattr(datamodule, "eval_batch_size", None)
        return results_key([self._reference_hashes, data, batch_size, [float(b) for b in batches], trainer.world_size])

    def _held_results(self, key: str) -> ReferenceResults | None:
        """The results of ``key`` this module holds or its store has. Without them, rank 0 keeps
        the key's lock until :meth:`per_example` has written them, so concurrent runs wait and load."""
        if self.reference_results is not None and self.reference_results.key == key:
            return self.reference_results
        if self._results_store is None:
            return None
        held = None
        if self.trainer.is_global_zero:
            lock = self._results_store.lock(key)
            acquire_saying_so(lock)
            held = self._results_store.load(key)
            if held is None:
                self._results_lock = lock
            else:
                lock.release()
        held = self.trainer.strategy.broadcast(held, src=0)
        # Stored results load on the CPU; they join the unlearned model's on this device.
        return ReferenceResults(held.key, move_data_to_device(held.results, self.device)) if held else None

    def _release_results_lock(self) -> None:
        if self._results_lock is not None:
            self._results_lock.release()
            self._results_lock = None

    def _start_evaluation(self) -> None:
        # A diverged network (during fit, or a --ckpt_path of a run that diverged) must not become a table row.
        self._check_network_finite()
        self._per_example = None
        self.evaluation.reset()
        self._evaluation_key = self.reference_key()
        held = self._held_results(self._evaluation_key)
        self._reuse_references = held is not None
        if held is not None:
            self.reference_results = held

    def on_validation_epoch_start(self) -> None:
        self._start_evaluation()

    def on_test_epoch_start(self) -> None:
        self._start_evaluation()

    def _end_evaluation(self) -> None:
        self._release_results_lock()  # also when no metric asked for the results
        self._per_example = None  # free the gathered tensors
        self.evaluation.reset()

    def on_validation_epoch_end(self) -> None:
        self._end_evaluation()

    def on_test_epoch_end(self) -> None:
        self._end_evaluation()

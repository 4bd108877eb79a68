"""Shadow models for U-LiRA, each one trial of a study on the study engine.

The protocol of Hayes et al. (2024, arXiv 2403.01218, "U-LiRA"), on this package's parts:

- The *pool* is the data module's training split (retain ∪ forget); the *targets* are a fixed set
  of pool examples (by default the configured forget set).
- Model ``m`` (``K`` shadow models, then ``T`` target models) trains on a random half of the pool,
  drawn so that every pool example is in exactly half of the shadow models and half of the target
  models (:func:`~unlearn_pl.functional.lira.balanced_membership`, per example, as in LiRA).
- Its *forget set* is the targets it trained on; it then unlearns them with the configured
  localizer and unlearner, exactly as the audited run would. Targets it never trained on are
  *out*; it still unlearns its own forget set.
- φ (:func:`~unlearn_pl.functional.lira.logit_confidence`) of every target is recorded after
  unlearning, and before it (the model's original), in the bank
  (:class:`~unlearn_pl.ulira.ShadowBank`).

Each model gets its own seed (initial weights, data order and the unlearner's randomness), so a
model's result depends only on the configuration and its index ``m``: which worker runs it, and
in which order, changes nothing. The originals are trained with the configured
:class:`~unlearn_pl.TrainingRecipe` through :class:`~unlearn_pl.ReferenceModels` and cached.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn

from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.data.datasets import IndexedSubset
from unlearn_pl.functional.init import fresh_parameters
from unlearn_pl.functional.lira import logit_confidence
from unlearn_pl.module import UnlearningModule
from unlearn_pl.references import ReferenceModels
from unlearn_pl.ulira.bank import ShadowBank
from unlearn_pl.ulira.design import SHADOW_TRAINER_SETTINGS, ShadowSpec, check_targets, shadow_datamodule
from unlearn_pl.utils.seeds import isolated_rng

if TYPE_CHECKING:
    import optuna


@torch.no_grad()
def _phi(network: nn.Module, data: IndexedSubset, batch_size: int = 1024) -> np.ndarray:
    """φ of every example of ``data`` under ``network`` in eval mode (its mode is restored)."""
    was_training = network.training
    network.eval()
    device = next(network.parameters()).device
    out = []
    try:
        for _, x, y in torch.utils.data.DataLoader(data, batch_size=batch_size):
            out.append(logit_confidence(network(x.to(device)), y.to(device)).cpu())
    finally:
        network.train(was_training)
    return torch.cat(out).numpy()


def train_and_unlearn(spec: ShadowSpec, model: int) -> tuple[np.ndarray, np.ndarray]:
    """Train model ``model`` on its half of the pool, unlearn its in-targets, and return φ of all
    targets after unlearning and before (both ``(N,)``, in the order of ``spec.targets``)."""
    seed = spec.model_seed(model)
    dm, targets_data = shadow_datamodule(spec, model)
    network = copy.deepcopy(spec.network)
    fresh = fresh_parameters(network, seed)
    with torch.no_grad():
        for name, p in network.named_parameters():
            p.copy_(fresh[name])
    references = ReferenceModels(
        recipe=dataclasses.replace(spec.recipe, seed=seed),
        oracle=False,
        cache_dir=spec.cache_dir,
        progress_bar=False,
    )
    module = UnlearningModule(
        network=network,
        localizer=copy.deepcopy(spec.localizer),
        unlearner=copy.deepcopy(spec.unlearner),
        references=references,
        metrics=[],
        report=False,
        execution=copy.deepcopy(spec.execution),
    )
    with isolated_rng():
        module.prepare_models(dm)
        phi_original = _phi(module.network, targets_data)
        pl.seed_everything(seed, verbose=False)
        trainer = pl.Trainer(**{**spec.trainer_kwargs, **SHADOW_TRAINER_SETTINGS})
        trainer.fit(module, datamodule=dm)
        phi = _phi(module.network, targets_data)
    return phi, phi_original


@dataclass
class ShadowTrial:
    """The study objective: trial ``model`` trains, unlearns and records model ``model`` in the bank.

    The model index is a grid parameter (``optuna.samplers.GridSampler``), so each model is one
    trial, run once, and a resumed study runs only the missing ones. A model already stored in
    the bank (e.g. by a study with another storage) is read back instead of retrained. Returns
    the model's mean φ over the targets after unlearning (the user attr ``mean_phi_before`` has
    it before), so the study's table shows how each model treats the targets.
    """

    spec: ShadowSpec

    def search_space(self) -> dict[str, list[int]]:
        return {"model": list(range(self.spec.num_models))}

    def __call__(self, trial: optuna.Trial) -> float:
        spec = self.spec
        model = trial.suggest_int("model", 0, spec.num_models - 1)
        trial.set_user_attr("role", "shadow" if model < spec.num_shadow else "target")
        bank = ShadowBank(spec.bank)
        if not bank.model_file(model).is_file():
            phi, phi_original = train_and_unlearn(spec, model)
            bank.save_model(model, phi, phi_original)
        stored = np.load(bank.model_file(model), allow_pickle=False)
        trial.set_user_attr("mean_phi_before", float(stored["phi_original"].mean()))
        return float(stored["phi"].mean())


def make_spec(
    module: UnlearningModule,
    datamodule: UnlearningDataModule,
    trainer_kwargs: dict[str, Any],
    *,
    num_shadow: int,
    num_target_models: int,
    bank: str | Path,
    targets: list[int] | None = None,
    seed: int = 0,
) -> ShadowSpec:
    """The :class:`ShadowSpec` of a configured module and data module (targets default to the forget set)."""
    for name, value, least in (("num_shadow", num_shadow, 2), ("num_target_models", num_target_models, 2)):
        if isinstance(value, bool) or not isinstance(value, int) or value < least:
            raise ValueError(f"{name} must be an int >= {least}; got {value!r}")
    if module.unlearner is None:
        raise ValueError("U-LiRA unlearns with the configured unlearner; configure model.unlearner")
    datamodule.setup("fit")
    pool = datamodule.indices("train")
    chosen = check_targets(datamodule.indices("forget") if targets is None else targets, pool)
    unloaded = copy.copy(datamodule)
    unloaded.split = unloaded.train_set = unloaded.test_set = None  # workers redraw it: no data in the pickle
    return ShadowSpec(
        network=copy.deepcopy(module.initial_network),
        localizer=copy.deepcopy(module.localizer),
        unlearner=copy.deepcopy(module.unlearner),
        recipe=module.references.recipe,
        datamodule=unloaded,
        trainer_kwargs=dict(trainer_kwargs),
        targets=chosen.tolist(),
        num_shadow=num_shadow,
        num_target_models=num_target_models,
        seed=seed,
        bank=str(bank),
        cache_dir=str(module.references.cache_dir),
        execution=module.execution,
    )


def open_bank(spec: ShadowSpec, parts: dict[str, Any]) -> ShadowBank:
    """Create (or reopen, if it matches) the bank folder of ``spec``."""
    datamodule = copy.deepcopy(spec.datamodule)
    datamodule.setup("fit")
    pool = datamodule.indices("train")
    targets = np.asarray(spec.targets, dtype=np.int64)
    membership = spec.pool_membership(len(pool))[:, np.searchsorted(np.asarray(pool), targets)]
    return ShadowBank.create(spec.bank, parts, targets, membership, spec.num_shadow, spec.seed)


def build_bank(
    spec: ShadowSpec,
    parts: dict[str, Any],
    *,
    workers: int | str = 1,
    storage: str | None = None,
    study_name: str | None = None,
    gpus_per_trial: int = 0,
) -> ShadowBank:
    """Train every missing model of the bank as a trial of a study on the study engine.

    Args:
        spec: the models to train.
        parts: the configuration's :func:`~unlearn_pl.ulira.config_parts` (the bank's identity).
        workers: processes on this machine, or ``auto``.
        storage: an Optuna storage URL (workers on other machines join the same study); default
            a journal file in the bank folder.
        study_name: default ``ulira-<fingerprint>-K<K>-T<T>-s<seed>``.
        gpus_per_trial: the GPUs one model's training takes (0: CPUs); each worker gets its own.

    Raises:
        RuntimeError: some trials failed (their errors are in the study).
    """
    import optuna

    from unlearn_pl.tuning.engine import journal_storage, run_trials

    bank = open_bank(spec, parts)
    name = study_name or f"ulira-{bank.fingerprint}-K{spec.num_shadow}-T{spec.num_target_models}-s{spec.seed}"
    objective = ShadowTrial(spec)
    study = run_trials(
        objective,
        study_name=name,
        storage=storage if storage is not None else journal_storage(str(Path(spec.bank) / "study.journal")),
        sampler=optuna.samplers.GridSampler(objective.search_space(), seed=spec.seed),
        directions=("maximize",),
        n_trials=None,
        workers=workers,
        gpus_per_trial=gpus_per_trial,
    )
    if missing := bank.missing():
        failed = [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL]
        reason = f"; e.g. trial {failed[0].number} failed: {failed[0].user_attrs.get('error')}" if failed else ""
        raise RuntimeError(f"{len(missing)} of {spec.num_models} models are missing from the bank {spec.bank}{reason}")
    return bank


__all__ = ["ShadowTrial", "build_bank", "make_spec", "open_bank", "train_and_unlearn"]

"""An audit's trials on the study engine: one trial per method and model seed.

A trial builds the method's run with the seed keys set to its seed (the run ``unlearn-pl fit
--config methods/<method>.yaml --seed_everything=<s> …`` would be), prepares its original and
oracle (trained, or loaded from the reference cache), unlearns, and records the per-example
outputs of the unlearned model and, once per reference model, of the original and the oracle
(:mod:`unlearn_pl.audit.outputs`). The trials run on :func:`unlearn_pl.tuning.engine.run_trials`
with Optuna's ``GridSampler`` over (method, seed); the outputs on disk are what counts, so a trial
whose record exists reads it back, and running the audit again runs only what is missing,
trials that failed included.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import lightning.pytorch as pl

from unlearn_pl.audit.outputs import REFERENCES, AuditStore, model_outputs, reference_key
from unlearn_pl.audit.plan import AuditPlan, seed_overrides
from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.module import UnlearningModule
from unlearn_pl.ulira.design import RECORDING_TRAINER_SETTINGS
from unlearn_pl.utils.describe import content_hash

if TYPE_CHECKING:
    import optuna

#: Trainer settings of every trial: the outputs are recorded directly (U-LiRA's shadow models'
#: settings, without their deterministic kernels).
TRIAL_TRAINER_SETTINGS: dict[str, Any] = dict(RECORDING_TRAINER_SETTINGS)


@dataclass
class BuiltRun:
    """A configured run, built and not started: what an audit needs of the command line.

    Attributes:
        module: the unlearning module (its references not prepared yet).
        datamodule: its data module.
        trainer_kwargs: the configured trainer's plain settings (loggers and callbacks left out).
        config: the complete config, as YAML text.
    """

    module: UnlearningModule
    datamodule: UnlearningDataModule
    trainer_kwargs: dict[str, Any]
    config: str


#: Builds a run from ``unlearn-pl fit`` arguments without running it (the CLI passes its own).
Build = Callable[[list[str]], BuiltRun]


def record_run(run: BuiltRun, plan: AuditPlan, store: AuditStore, root: str) -> dict[str, Any]:
    """Prepare, unlearn and record one run; returns its entry for :meth:`AuditStore.save`."""
    module, datamodule = run.module, run.datamodule
    module.references.progress_bar = False  # one bar per reference model and trial would swamp the log
    start = time.perf_counter()
    module.prepare_models(datamodule)
    prepared = time.perf_counter()
    plan.check(datamodule, "this trial's run")
    trainer = pl.Trainer(**{**run.trainer_kwargs, **TRIAL_TRAINER_SETTINGS, "default_root_dir": root})
    trainer.fit(module, datamodule=datamodule)
    unlearned_at = time.perf_counter()
    device = trainer.strategy.root_device
    outputs = model_outputs(module.network, datamodule, plan, device)
    key = reference_key([(name, content_hash(module.reference(name))) for name in REFERENCES], plan)
    _, evaluated = store.reference_outputs(
        key, lambda: {name: model_outputs(module.reference(name), datamodule, plan, device) for name in REFERENCES}
    )
    done = time.perf_counter()
    return {
        "outputs": outputs,
        "references": key,
        "plan": plan.key,
        "references_evaluated": evaluated,
        "seconds": {
            "references": prepared - start,
            "unlearning": unlearned_at - prepared,
            "recording": done - unlearned_at,
        },
    }


@dataclass
class AuditTrial:
    """The objective of an audit's trials (picklable: worker processes receive it).

    Attributes:
        build: builds a run from ``fit`` arguments (the CLI's own builder).
        folder: the audit folder.
        methods: ``{method name: its complete config file}``.
        seeds: the model seeds.
        seed_keys: the dotted keys a seed sets.
    """

    build: Build
    folder: str
    methods: dict[str, str]
    seeds: list[int]
    seed_keys: list[str]

    def space(self) -> dict[str, list[Any]]:
        """The grid: methods × seeds."""
        return {"method": list(self.methods), "seed": list(self.seeds)}

    def args(self, method: str, seed: int) -> list[str]:
        """The ``fit`` arguments of one trial."""
        return ["--config", self.methods[method], *seed_overrides(self.seed_keys, dict.fromkeys(self.seed_keys, seed))]

    def __call__(self, trial: optuna.Trial) -> float:
        method = trial.suggest_categorical("method", list(self.methods))
        seed = trial.suggest_categorical("seed", list(self.seeds))
        store = AuditStore(self.folder)
        if not store.has(method, seed):
            run = self.build(self.args(method, seed))
            entry = record_run(run, store.plan(), store, str(Path(self.folder) / "trials"))
            store.save(method, seed, {"method": method, "seed": seed, **entry})
        entry = store.load(method, seed)
        trial.set_user_attr("seconds", entry["seconds"])
        trial.set_user_attr("accuracy", entry["outputs"]["accuracy"])
        return float(entry["outputs"]["accuracy"].get("forget", float("nan")))


def run_audit_trials(
    objective: AuditTrial, *, workers: int | str, storage: Any, study_name: str, gpus_per_trial: int = 0
) -> list[str]:
    """Run every missing trial of the audit in ``storage`` (an Optuna storage or RDB URL); returns
    one line per (method, seed) still without outputs afterwards, with its error where the study
    has one (empty: all recorded). ``workers`` and ``gpus_per_trial``: :func:`~unlearn_pl.tuning.engine.run_trials`'s."""
    import optuna
    from optuna.trial import TrialState

    from unlearn_pl.tuning.engine import run_trials, trial_cell

    # A (method, seed) whose trials all failed runs once more: the same command retries them.
    study = run_trials(
        objective,
        study_name=study_name,
        storage=storage,
        sampler=optuna.samplers.GridSampler(objective.space(), seed=0),
        directions=("maximize",),
        n_trials=None,
        workers=workers,
        gpus_per_trial=gpus_per_trial,
        retry_failed=True,
    )
    store = AuditStore(objective.folder)
    errors = {
        (cell.get("method"), cell.get("seed")): t.user_attrs.get("error", "no error recorded")
        for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))
        for cell in [trial_cell(t)]
    }
    return [
        f"{method} seed {seed}: {errors.get((method, seed), 'did not run')}"
        for method in objective.methods
        for seed in objective.seeds
        if not store.has(method, seed)
    ]


__all__ = ["TRIAL_TRAINER_SETTINGS", "AuditTrial", "Build", "BuiltRun", "record_run", "run_audit_trials"]

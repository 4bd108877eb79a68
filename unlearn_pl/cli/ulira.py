"""The ``unlearn-pl ulira`` subcommand: build a bank of shadow models and run U-LiRA on it.

The command takes the audited run's config (the same ``--config`` files as ``fit``), trains K
shadow models and T target models as trials of a study on the study engine
(:func:`unlearn_pl.ulira.shadow.build_bank`), attacks the target models, and writes into the bank
folder ``ulira_<variance>.json`` (the results), ``ulira_<variance>_per_example.csv`` and
``ulira_<variance>_success.png`` (the histogram of per-example attack success)::

    unlearn-pl ulira --config configs/ulira/digits.yaml --workers 2
    unlearn-pl ulira --config configs/ulira/digits.yaml --config configs/methods/retrain.yaml

Running it again resumes the study (completed models are kept). Workers on other machines join
with ``--storage URL --study_name NAME``. One bank is one draw of the pool's halves: its intervals
are over its target models. ``--pool_seeds "[0, 1, 2]"`` builds a bank per seed (in
``<folder>/s<seed>/``) and adds intervals over the banks (``ulira_<variance>_banks.json``). A bank
folder can then be given to the :class:`~unlearn_pl.metrics.ULiRA` validation callback of a
``fit`` with the same config.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np

from unlearn_pl.cli.subcommands import LightningCLIMixin
from unlearn_pl.cli.workers import config_gpus
from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.functional.lira import Variance
from unlearn_pl.module import UnlearningModule
from unlearn_pl.ulira import LOW_FPRS, BankAttack, attack_bank, bank_fingerprint, check_design, config_parts
from unlearn_pl.ulira.design import shadow_trainer_kwargs
from unlearn_pl.ulira.report import (
    across_banks,
    across_banks_text,
    per_example_csv,
    plot_success,
    results_dict,
    summary_text,
)
from unlearn_pl.ulira.shadow import build_bank, make_spec
from unlearn_pl.utils.arguments import PositiveInt, WorkerCount
from unlearn_pl.utils.io import write_json, write_text


class UliraSubcommand(LightningCLIMixin):
    """Mixin for :class:`~unlearn_pl.cli.subcommands.CLISubcommands` CLIs: adds the ``ulira`` subcommand."""

    @classmethod
    def subcommands(cls) -> dict[str, set[str]]:
        """The next class's subcommands plus ``ulira`` (``model``/``datamodule`` come from the config)."""
        return {**super().subcommands(), "ulira": {"model", "datamodule"}}

    def ulira(
        self,
        model: UnlearningModule,
        datamodule: UnlearningDataModule,
        num_shadow: PositiveInt = 32,
        num_target_models: PositiveInt = 8,
        variance: Literal["global", "per_example"] = "global",
        targets: list[int] | None = None,
        workers: WorkerCount = 1,
        storage: str | None = None,
        study_name: str | None = None,
        bank: str | None = None,
        pool_seeds: list[int] | None = None,
    ) -> BankAttack | dict[int, BankAttack]:
        """Run U-LiRA: shadow models as trials of a study, then the per-example attack.

        Args:
            model: the audited configuration (its localizer, unlearner, network and recipe).
            datamodule: its data; the pool is the training split (retain ∪ forget).
            num_shadow: K, the shadow models the Gaussians are fit on (at least 2; per-example
                variances need at least 4, and are reliable only with many more).
            num_target_models: T, the held-out models under attack (at least 2).
            variance: ``global`` (one pooled variance per side; for few shadow models) or
                ``per_example``.
            targets: dataset indices of the target examples (default: the configured forget set).
            workers: processes on this machine, or ``auto`` (one per GPU, else per core); each has its own
                GPUs and ``cores // workers`` torch threads (docs/gpu.md).
            storage: Optuna storage URL shared by workers on several machines (default: a journal
                file in the bank folder).
            study_name: the study's name (default: derived from the configuration and design).
            bank: the bank folder (default: ``<default_root_dir>/ulira/<fingerprint>-K…-T…-s…``,
                so the same command resumes and another config gets another folder); with
                several pool seeds, the folder of the banks ``s<seed>/`` and of their summary.
            pool_seeds: build one bank per seed (which half of the pool each model trains on,
                and every model's seed) and give intervals over the banks as well as over each
                bank's target models (default: one bank, seeded by ``seed_everything``).

        Returns:
            the attack, or with ``pool_seeds`` ``{pool seed: attack}``.
        """
        check_design(int(num_shadow), variance)  # before any training
        config = self.config["ulira"]
        trainer = self.trainer
        seed = config.get("seed_everything")
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
        seeds = [int(s) for s in pool_seeds] if pool_seeds else [seed]
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"pool_seeds names a seed twice: {pool_seeds}; each bank needs its own seed")
        datamodule.setup("fit")
        parts = config_parts(
            model.initial_network, model.localizer, model.unlearner, model.references.recipe, trainer, datamodule
        )
        design = f"{bank_fingerprint(parts)}-K{num_shadow}-T{num_target_models}"
        if pool_seeds is None:
            folders = {seed: bank or str(Path(trainer.default_root_dir) / "ulira" / f"{design}-s{seed}")}
        else:
            root = Path(bank or Path(trainer.default_root_dir) / "ulira" / f"{design}-banks")
            folders = {s: str(root / f"s{s}") for s in seeds}
        attacks = {}
        for s, folder in folders.items():
            spec = make_spec(
                model,
                datamodule,
                shadow_trainer_kwargs(config["trainer"]),
                num_shadow=int(num_shadow),
                num_target_models=int(num_target_models),
                bank=folder,
                targets=targets,
                seed=s,
            )
            name = f"{study_name}-s{s}" if study_name and pool_seeds is not None else study_name
            shadow_bank = build_bank(
                spec,
                parts,
                workers=workers,
                storage=storage,
                study_name=name,
                gpus_per_trial=config_gpus(config, model),
            )
            attacks[s] = self._ulira_results(model, shadow_bank, variance, s, int(num_shadow), int(num_target_models))
        if pool_seeds is None:
            return attacks[seed]
        summary = across_banks(attacks)
        write_json(
            root / f"ulira_{variance}_banks.json",
            {
                "variance": variance,
                "unlearner": type(model.unlearner).__name__,
                "banks": {str(s): f for s, f in folders.items()},
                **summary,
            },
        )
        if trainer.is_global_zero:
            print(f"\n{across_banks_text(attacks, variance)}\n\nresults: {root}\n", flush=True)
        return attacks

    def _ulira_results(
        self,
        model: UnlearningModule,
        shadow_bank: Any,
        variance: Variance,
        seed: int,
        num_shadow: int,
        num_target_models: int,
    ) -> BankAttack:
        """Attack one bank; write and print its results."""
        trainer = self.trainer
        attack = attack_bank(shadow_bank, variance)
        unlearner = type(model.unlearner).__name__
        results = {
            "unlearner": unlearner,
            "variance": variance,
            "num_shadow": num_shadow,
            "num_target_models": num_target_models,
            "num_targets": len(shadow_bank.targets),
            "num_scored": attack.num_scored,
            "chance_tolerance_3sigma": attack.tolerance,
            "seed": seed,
            "fingerprint": shadow_bank.fingerprint,
            **results_dict(attack),
            "per_example_success_mean": float(np.nanmean(attack.success)),
            "per_example_success_quantiles": {
                str(q): float(np.nanquantile(attack.success, q)) for q in (0.1, 0.5, 0.9)
            },
            "not_available": [
                f"TPR at {f:g} FPR needs at least {math.ceil(1 / f)} non-member scores; this design has "
                f"{int((~shadow_bank.membership[num_shadow:]).sum())}"
                for f in LOW_FPRS
                if attack.summary[f"ulira_tpr_at_fpr_{f:g}"] is None
            ],
        }
        path = Path(shadow_bank.path)
        write_json(path / f"ulira_{variance}.json", results)
        write_text(path / f"ulira_{variance}_per_example.csv", per_example_csv(shadow_bank, attack))
        try:
            plot_success(attack, path / f"ulira_{variance}_success.png", f"U-LiRA per-example success: {unlearner}")
        except ImportError:
            print("matplotlib is not installed: no histogram (pip install unlearn_pl[plots])")
        if trainer.is_global_zero:
            print(f"\n{summary_text(attack, variance)}\n\nresults: {path}\n", flush=True)
        return attack

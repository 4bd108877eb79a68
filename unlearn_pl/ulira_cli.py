"""The ``unlearn-pl ulira`` subcommand: build a bank of shadow models and run U-LiRA on it.

The command takes the audited run's config (the same ``--config`` files as ``fit``), trains K
shadow models and T target models as trials of a study on the study engine
(:func:`unlearn_pl.shadow.build_bank`), attacks the target models, and writes into the bank
folder ``ulira_<variance>.json`` (the results), ``ulira_<variance>_per_example.csv`` and
``ulira_<variance>_success.png`` (the histogram of per-example attack success)::

    unlearn-pl ulira --config configs/ulira/digits.yaml --workers 2
    unlearn-pl ulira --config configs/ulira/digits.yaml --config configs/methods/retrain.yaml

Running it again resumes the study (completed models are kept). Workers on other machines join
with ``--storage URL --study_name NAME``. The bank folder can then be given to the
:class:`~unlearn_pl.metrics.ULiRA` validation callback of a ``fit`` with the same config.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import numpy as np
from jsonargparse.typing import PositiveInt

from unlearn_pl._io import write_json, write_text
from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.metrics.report import rows_to_csv
from unlearn_pl.metrics.ulira import (
    LOW_FPRS,
    BankAttack,
    ShadowBank,
    attack_bank,
    check_design,
    config_parts,
    fingerprint,
)
from unlearn_pl.module import UnlearningModule
from unlearn_pl.shadow import SHADOW_TRAINER_SETTINGS, build_bank, make_spec


def _is_plain(value: Any) -> bool:
    """Whether ``value`` is a builtin scalar, ``None``, or a list of those (a trainer setting to copy)."""
    if isinstance(value, (list, tuple)):
        return all(_is_plain(v) for v in value)
    return value is None or isinstance(value, (bool, int, float, str))


def shadow_trainer_kwargs(trainer_config: Any) -> dict[str, Any]:
    """The configured trainer's plain settings (epochs, devices, precision…) for the shadow models;
    loggers, callbacks and plugins (configured objects) are left out."""
    settings = trainer_config.as_dict() if hasattr(trainer_config, "as_dict") else dict(trainer_config)
    skip = set(SHADOW_TRAINER_SETTINGS) | {"default_root_dir", "plugins"}
    return {k: v for k, v in settings.items() if k not in skip and _is_plain(v)}


def per_example_csv(bank: ShadowBank, attack: BankAttack) -> str:
    """One row per target: its dataset index, attack success after and before unlearning, and its Gaussians."""
    fit = attack.fit
    rows = [
        {"index": int(index), "success": float(attack.success[i]), "success_before": float(attack.success_before[i]),
         "mean_in": float(fit.mean_in[i]), "std_in": float(fit.std_in[i]),
         "mean_out": float(fit.mean_out[i]), "std_out": float(fit.std_out[i])}
        for i, index in enumerate(bank.targets)
    ]
    return rows_to_csv(rows)


def plot_success(attack: BankAttack, path: Path, title: str) -> Path:
    """Histogram of per-example attack success after and before unlearning (PNG)."""
    # A bare Figure (no pyplot): no backend is selected, so a notebook's inline plots are untouched.
    from matplotlib.figure import Figure

    fig = Figure(figsize=(5.5, 3.5))
    ax = fig.subplots()
    bins = np.linspace(0, 1, 21)
    for values, label in ((attack.success_before, "before unlearning"), (attack.success, "after unlearning")):
        values = values[~np.isnan(values)]
        ax.hist(values, bins=bins, alpha=0.6, label=f"{label} (mean {values.mean():.3f})")
    ax.axvline(0.5, color="k", linestyle="--", linewidth=1)
    ax.set_xlabel("per-example attack accuracy over the target models")
    ax.set_ylabel("target examples")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    return path


def summary_text(attack: BankAttack, variance: str) -> str:
    """The results as a few lines for the terminal."""
    def fmt(v: float | None) -> str:
        return "n/a" if v is None else f"{v:.4f}"

    lines = [f"U-LiRA ({variance} variance), {attack.num_scored} scored (target, model) pairs; "
             f"chance = 0.5 ± {attack.tolerance:.4f} (3σ)"]
    rows = (("per-example, after unlearning", "after", attack.summary),
            ("per-example, before unlearning", "before", attack.before),
            ("population, after unlearning", "population", attack.population),
            ("population, before unlearning", "population_before", attack.population_before))
    for label, name, values in rows:
        e = attack.interval(name)
        tprs = ", ".join(f"TPR@{f:g} {fmt(values[f'ulira_tpr_at_fpr_{f:g}'])}" for f in LOW_FPRS)
        clipped = " clipped to [0, 1]" if e.clipped else ""
        lines.append(f"  {label:>30}: balanced acc {fmt(values['ulira_acc'])} (per model {e.mean:.4f}, 95% CI "
                     f"[{e.low:.4f}, {e.high:.4f}]{clipped}, n={e.n}), AUC {fmt(values['ulira_auc'])}, {tprs}")
    return "\n".join(lines)


def results_dict(attack: BankAttack) -> dict[str, Any]:
    """The attacks' summaries with their per-model means and 95% t-intervals over the target models."""
    out: dict[str, Any] = {}
    for name, values in (("after_unlearning", attack.summary), ("before_unlearning", attack.before),
                         ("population_after_unlearning", attack.population),
                         ("population_before_unlearning", attack.population_before)):
        key = {"after_unlearning": "after", "before_unlearning": "before",
               "population_after_unlearning": "population", "population_before_unlearning": "population_before"}[name]
        e = attack.interval(key)
        out[name] = {**values, "per_model_acc": attack.per_model[key].tolist(), "per_model_acc_mean": e.mean,
                     "per_model_acc_ci95": [e.low, e.high], "per_model_acc_ci95_clipped": e.clipped}
    return out


class UliraSubcommand:
    """Mixin for a ``LightningCLI`` subclass: adds the ``ulira`` subcommand.

    Put it before ``LightningCLI`` in the bases. Lightning reads a subcommand's arguments from the
    trainer's method of that name; ``ulira`` is a method of this mixin instead (it is not a
    training loop), so the two places where Lightning looks it up on the trainer are extended.
    """

    @classmethod
    def subcommands(cls) -> dict[str, set[str]]:
        """The next class's subcommands plus ``ulira`` (``model``/``datamodule`` come from the config)."""
        return {**super().subcommands(), "ulira": {"model", "datamodule"}}  # type: ignore[misc]

    def _add_subcommands(self, parser: Any, **kwargs: Any) -> None:
        # Lightning's _add_subcommands, with the method of "ulira" looked up on this mixin.
        from lightning.pytorch.cli import class_from_function

        self._subcommand_parsers = {}
        subcommands = parser.add_subcommands()
        trainer_class = self.trainer_class if isinstance(self.trainer_class, type) else class_from_function(self.trainer_class)  # type: ignore[attr-defined]
        for name in self.subcommands():
            owner = UliraSubcommand if name == "ulira" else trainer_class
            fn = getattr(owner, name)
            description = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
            subparser_kwargs = {"description": description, **kwargs.get(name, {})}
            subparser = self._prepare_subcommand_parser(owner, name, **subparser_kwargs)  # type: ignore[attr-defined]
            self._subcommand_parsers[name] = subparser
            subcommands.add_subcommand(name, subparser, help=description)

    def _run_subcommand(self, subcommand: str) -> None:
        if subcommand != "ulira":
            super()._run_subcommand(subcommand)  # type: ignore[misc]
            return
        self.ulira(**self._prepare_subcommand_kwargs(subcommand))  # type: ignore[attr-defined]

    def ulira(
        self,
        model: UnlearningModule,
        datamodule: UnlearningDataModule,
        num_shadow: PositiveInt = 32,
        num_target_models: PositiveInt = 8,
        variance: Literal["global", "per_example"] = "global",
        targets: list[int] | None = None,
        workers: PositiveInt = 1,
        storage: str | None = None,
        study_name: str | None = None,
        bank: str | None = None,
    ) -> BankAttack:
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
            workers: processes on this machine (one torch thread each).
            storage: Optuna storage URL shared by workers on several machines (default: a journal
                file in the bank folder).
            study_name: the study's name (default: derived from the configuration and design).
            bank: the bank folder (default: ``<default_root_dir>/ulira/<fingerprint>-K…-T…-s…``,
                so the same command resumes and another config gets another folder).
        """
        check_design(int(num_shadow), variance)  # before any training
        config = self.config["ulira"]  # type: ignore[attr-defined]
        trainer = self.trainer  # type: ignore[attr-defined]
        seed = config.get("seed_everything")
        seed = seed if isinstance(seed, int) and not isinstance(seed, bool) else 0
        datamodule.setup("fit")
        parts = config_parts(model.initial_network, model.localizer, model.unlearner, model.references.recipe, trainer, datamodule)
        folder = bank or str(
            Path(trainer.default_root_dir) / "ulira" / f"{fingerprint(parts)}-K{num_shadow}-T{num_target_models}-s{seed}"
        )
        spec = make_spec(
            model, datamodule, shadow_trainer_kwargs(config["trainer"]), num_shadow=int(num_shadow),
            num_target_models=int(num_target_models), bank=folder, targets=targets, seed=seed,
        )
        shadow_bank = build_bank(spec, parts, workers=int(workers), storage=storage, study_name=study_name)
        attack = attack_bank(shadow_bank, variance)
        unlearner = type(model.unlearner).__name__
        results = {
            "unlearner": unlearner,
            "variance": variance,
            "num_shadow": int(num_shadow),
            "num_target_models": int(num_target_models),
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
                for f in LOW_FPRS if attack.summary[f"ulira_tpr_at_fpr_{f:g}"] is None
            ],
        }
        path = Path(folder)
        write_json(path / f"ulira_{variance}.json", results)
        write_text(path / f"ulira_{variance}_per_example.csv", per_example_csv(shadow_bank, attack))
        try:
            plot_success(attack, path / f"ulira_{variance}_success.png", f"U-LiRA per-example success: {unlearner}")
        except ImportError:
            print("matplotlib is not installed: no histogram (pip install unlearn_pl[plots])")
        if trainer.is_global_zero:
            print(f"\n{summary_text(attack, variance)}\n\nresults: {path}\n", flush=True)
        return attack


__all__ = ["UliraSubcommand", "per_example_csv", "plot_success", "results_dict", "shadow_trainer_kwargs", "summary_text"]

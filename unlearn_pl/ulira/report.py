"""What ``unlearn-pl ulira`` writes and prints about an attack: the per-example table, the histogram,
the summary lines and the results file's content."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from unlearn_pl.report import rows_to_csv
from unlearn_pl.stats import mean_ci
from unlearn_pl.ulira.attack import LOW_FPRS, BankAttack
from unlearn_pl.ulira.bank import ShadowBank

#: The attacks a bank reports, by their name in :attr:`BankAttack.per_model` and in the results.
ATTACKS = (
    ("after", "after_unlearning"),
    ("before", "before_unlearning"),
    ("population", "population_after_unlearning"),
    ("population_before", "population_before_unlearning"),
)


def per_example_csv(bank: ShadowBank, attack: BankAttack) -> str:
    """One row per target: its dataset index, attack success after and before unlearning, and its Gaussians."""
    fit = attack.fit
    rows = [
        {
            "index": int(index),
            "success": float(attack.success[i]),
            "success_before": float(attack.success_before[i]),
            "mean_in": float(fit.mean_in[i]),
            "std_in": float(fit.std_in[i]),
            "mean_out": float(fit.mean_out[i]),
            "std_out": float(fit.std_out[i]),
        }
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
        ax.hist(values, bins=bins.tolist(), alpha=0.6, label=f"{label} (mean {values.mean():.3f})")
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

    lines = [
        f"U-LiRA ({variance} variance), {attack.num_scored} scored (target, model) pairs; "
        f"chance = 0.5 ± {attack.tolerance:.4f} (3σ)"
    ]
    rows = (
        ("per-example, after unlearning", "after", attack.summary),
        ("per-example, before unlearning", "before", attack.before),
        ("population, after unlearning", "population", attack.population),
        ("population, before unlearning", "population_before", attack.population_before),
    )
    for label, name, values in rows:
        e = attack.interval(name)
        tprs = ", ".join(f"TPR@{f:g} {fmt(values[f'ulira_tpr_at_fpr_{f:g}'])}" for f in LOW_FPRS)
        clipped = " clipped to [0, 1]" if e.clipped else ""
        lines.append(
            f"  {label:>30}: balanced acc {fmt(values['ulira_acc'])} (per model {e.mean:.4f}, 95% CI "
            f"[{e.low:.4f}, {e.high:.4f}]{clipped}, n={e.n}), AUC {fmt(values['ulira_auc'])}, {tprs}"
        )
    return "\n".join(lines)


def results_dict(attack: BankAttack) -> dict[str, Any]:
    """The attacks' summaries with their per-model means and 95% t-intervals over the target models."""
    values = {
        "after": attack.summary,
        "before": attack.before,
        "population": attack.population,
        "population_before": attack.population_before,
    }
    out: dict[str, Any] = {}
    for name, key in ATTACKS:
        e = attack.interval(name)
        out[key] = {
            **values[name],
            "per_model_acc": attack.per_model[name].tolist(),
            "per_model_acc_mean": e.mean,
            "per_model_acc_ci95": [e.low, e.high],
            "per_model_acc_ci95_clipped": e.clipped,
        }
    return out


def across_banks(attacks: Mapping[int, BankAttack]) -> dict[str, Any]:
    """Per attack, each bank's mean balanced accuracy over its target models and their mean with a
    95% t-interval over the banks: the replicate is a whole bank (its draw of the pool's halves,
    its shadow and target models), so the interval covers the bank as well as the target models."""
    out: dict[str, Any] = {"pool_seeds": [int(s) for s in attacks], "num_banks": len(attacks)}
    for name, key in ATTACKS:
        per_bank = [attacks[s].interval(name).mean for s in attacks]
        e = mean_ci(per_bank)
        out[key] = {"per_bank_acc": per_bank, "acc_mean": e.mean, "acc_ci95": [e.low, e.high], "n_banks": e.n}
    return out


def across_banks_text(attacks: Mapping[int, BankAttack], variance: str) -> str:
    """The summary over banks as a few lines for the terminal."""
    summary = across_banks(attacks)
    lines = [
        f"U-LiRA ({variance} variance) over {len(attacks)} banks (pool seeds {summary['pool_seeds']}); "
        "balanced accuracy, mean over each bank's target models, 95% t-interval over the banks:"
    ]
    for _, key in ATTACKS:
        entry = summary[key]
        label = key.replace("_", " ").replace("population ", "population, ").replace(" unlearning", ", unlearning")
        lines.append(
            f"  {label:>30}: {entry['acc_mean']:.4f} [{entry['acc_ci95'][0]:.4f}, {entry['acc_ci95'][1]:.4f}] "
            f"(per bank {', '.join(f'{v:.4f}' for v in entry['per_bank_acc'])})"
        )
    return "\n".join(lines)

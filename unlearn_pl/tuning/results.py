"""A study's results: the trials table, the choice per λ with confidence intervals over seeds,
paired differences along each axis, the noise floor, and the two plots.

Everything here reads the Optuna study (trials' params and user attrs) and is plain arithmetic;
:mod:`unlearn_pl.metrics.report` writes the files.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from unlearn_pl.tuning.objective import objective as j_value
from unlearn_pl.tuning.objective import select
from unlearn_pl.tuning.stats import mean_ci, paired_difference
from unlearn_pl.tuning.study import Candidate, short_key

#: Metrics every comparison table and plot shows first (when present).
KEY_METRICS = ("J", "goal", "val_acc", "forget_acc", "test_acc", "retain_acc")

#: ``{seed: {metric: value}}`` of one point and λ: the chosen candidate's metrics per seed.
PerSeed = dict[int, dict[str, float]]


def trial_rows(study: optuna.Study, candidates: Mapping[str, Candidate], goal: str,
               lambdas: Sequence[float]) -> list[dict[str, Any]]:
    """One row per trial: number, state, axes, grid params, seed, duration, metrics, goals, J(λ), error."""
    rows = []
    for t in study.get_trials(deepcopy=False):
        c = candidates.get(t.params.get("candidate", ""))
        metrics, goals = t.user_attrs.get("metrics", {}), t.user_attrs.get("goals", {})
        duration = (t.datetime_complete - t.datetime_start).total_seconds() if t.datetime_complete and t.datetime_start else None
        row: dict[str, Any] = {"trial": t.number, "state": t.state.name, "candidate": t.params.get("candidate")}
        if c is not None:
            row.update(dict(c.labels))
            row.update({short_key(k): v for k, v in c.params})
        row.update(seed=t.params.get("seed"), duration_s=duration, **metrics, **{f"goal_{g}": v for g, v in goals.items()})
        if goal in goals and "val_acc" in metrics:
            row.update({f"J({lam:g})": j_value(metrics["val_acc"], goals[goal], lam) for lam in lambdas})
        row["error"] = t.user_attrs.get("error")
        for attr in ("retry_of", "duplicate_of"):
            if attr in t.user_attrs:
                row[attr] = t.user_attrs[attr]
        rows.append(row)
    return rows


def chosen_per_seed(study: optuna.Study, candidates: Mapping[str, Candidate], goal: str,
                    lambdas: Sequence[float]) -> dict[str, dict[float, tuple[PerSeed, dict[int, str]]]]:
    """``{point: {λ: ({seed: chosen metrics}, {seed: chosen candidate})}}``: per point and seed,
    argmax J(λ) over that seed's completed candidates (ties: the earliest in the grid)."""
    order = {name: i for i, name in enumerate(candidates)}
    done: dict[tuple[str, int], list[tuple[Candidate, dict[str, float], float]]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        c = candidates.get(t.params.get("candidate", ""))
        if c is None:
            continue
        metrics = dict(t.user_attrs["metrics"])
        done.setdefault((c.point, t.params["seed"]), []).append((c, metrics, t.user_attrs["goals"][goal]))
    out: dict[str, dict[float, tuple[PerSeed, dict[int, str]]]] = {}
    for (point, seed), runs in sorted(done.items(), key=lambda kv: (kv[0][0], kv[0][1])):
        runs.sort(key=lambda r: order[r[0].name])
        choice = select([m["val_acc"] for _, m, _ in runs], [g for _, _, g in runs], lambdas)
        for lam, i in choice.items():
            c, metrics, g = runs[i]
            per_seed, names = out.setdefault(point, {}).setdefault(lam, ({}, {}))
            per_seed[seed] = {**metrics, "goal": g, "J": j_value(metrics["val_acc"], g, lam)}
            names[seed] = c.name
    return out


def noise_floor(study: optuna.Study, floor: optuna.Study | None,
                candidates: Mapping[str, Candidate]) -> dict[str, dict[int, dict[str, float]]]:
    """``{point: {seed: {"<split>_acc_gap_noise_floor": |acc(oracle) − acc(independent retrain)|}}}``."""
    if floor is None:
        return {}
    oracle: dict[tuple[str, int], dict[str, float]] = {}
    for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        c = candidates.get(t.params.get("candidate", ""))
        if c is not None:
            oracle.setdefault((c.point, t.params["seed"]), t.user_attrs["metrics"])
    out: dict[str, dict[int, dict[str, float]]] = {}
    for t in floor.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        key = (t.params["point"], t.params["seed"])
        if key not in oracle:
            continue
        retrain = t.user_attrs["metrics"]
        gaps = {}
        for name, value in retrain.items():
            split_metric = name[len("oracle/"):]
            if split_metric.endswith("_acc") and name in oracle[key]:
                gaps[f"{split_metric}_gap_noise_floor"] = abs(oracle[key][name] - value)
        out.setdefault(key[0], {})[key[1]] = gaps
    return out


def _with_floor(per_seed: PerSeed, floor: Mapping[int, Mapping[str, float]]) -> PerSeed:
    return {s: {**m, **floor.get(s, {})} for s, m in per_seed.items()}


def _metric_order(names: set[str]) -> list[str]:
    return [m for m in KEY_METRICS if m in names] + sorted(n for n in names if n not in KEY_METRICS)


def selection_rows(chosen: Mapping[str, Mapping[float, tuple[PerSeed, dict[int, str]]]],
                   floors: Mapping[str, Mapping[int, Mapping[str, float]]],
                   labels: Mapping[str, Mapping[str, str]]) -> list[dict[str, Any]]:
    """One row per point and λ: n seeds, the choice per seed, and per metric mean and 95% CI."""
    rows = []
    for point, per_lambda in chosen.items():
        for lam, (per_seed, names) in per_lambda.items():
            values = _with_floor(per_seed, floors.get(point, {}))
            row: dict[str, Any] = {**labels[point], "lambda": lam, "n": len(values),
                                   "chosen": "; ".join(f"seed {s}: {names[s].rsplit('/', 1)[-1]}" for s in sorted(names))}
            for metric in _metric_order({k for m in values.values() for k in m}):
                e = mean_ci([m.get(metric, math.nan) for m in values.values()])
                row.update({metric: e.mean, f"{metric}_ci_low": e.low, f"{metric}_ci_high": e.high})
            rows.append(row)
    return rows


def difference_rows(chosen: Mapping[str, Mapping[float, tuple[PerSeed, dict[int, str]]]],
                    floors: Mapping[str, Mapping[int, Mapping[str, float]]],
                    labels: Mapping[str, Mapping[str, str]], axes: Mapping[str, Sequence[str]]) -> list[dict[str, Any]]:
    """Paired differences on the same seeds: along each axis, every value minus the axis's first
    value, the other axes fixed; per λ and metric, the mean difference and its 95% CI."""
    by_labels = {tuple(sorted(lab.items())): point for point, lab in labels.items()}
    rows = []
    for axis, values in axes.items():
        for point, lab in labels.items():
            if lab[axis] == values[0] or point not in chosen:
                continue
            base = by_labels.get(tuple(sorted({**lab, axis: values[0]}.items())))
            if base not in chosen:
                continue
            for lam, (per_seed, _) in chosen[point].items():
                if lam not in chosen[base]:
                    continue
                a = _with_floor(per_seed, floors.get(point, {}))
                b = _with_floor(chosen[base][lam][0], floors.get(base, {}))
                metrics = _metric_order({k for m in a.values() for k in m} & {k for m in b.values() for k in m})
                for metric in metrics:
                    e = paired_difference({s: m.get(metric, math.nan) for s, m in a.items()},
                                          {s: m.get(metric, math.nan) for s, m in b.items()})
                    rows.append({"axis": axis, "comparison": f"{lab[axis]} - {values[0]}",
                                 **{k: v for k, v in lab.items() if k != axis}, "lambda": lam, "metric": metric,
                                 "difference": e.mean, "ci_low": e.low, "ci_high": e.high, "n": e.n})
    return rows


def pareto_figure(rows: Sequence[Mapping[str, Any]], selection: Sequence[Mapping[str, Any]], goal: str) -> Any:
    """Validation accuracy vs goal of every completed trial (small dots), and per point the mean of
    the chosen candidates per λ (marker size grows with λ), as in the overparameterization
    study's Figure 1."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4.5))
    done = [r for r in rows if r.get("state") == "COMPLETE" and f"goal_{goal}" in r]
    ax.scatter([r["val_acc"] for r in done], [r[f"goal_{goal}"] for r in done], s=8, color="0.7", label="trials")
    points = list(dict.fromkeys(_point_label(r) for r in selection))
    cmap = plt.get_cmap("tab10")
    for k, point in enumerate(points):
        sel = [r for r in selection if _point_label(r) == point]
        ax.scatter([r["val_acc"] for r in sel], [r["goal"] for r in sel], s=[40 + 400 * r["lambda"] for r in sel],
                   color=cmap(k % 10), alpha=0.7, label=point or "chosen")
    ax.set_xlabel("validation accuracy")
    ax.set_ylabel(f"goal ({goal})")
    ax.set_title("chosen per λ (marker size: λ), mean over seeds")
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def _point_label(row: Mapping[str, Any]) -> str:
    skip = {"lambda", "n", "chosen"}
    return "/".join(f"{k}={v}" for k, v in row.items() if isinstance(v, str) and k not in skip)


def difference_figure(rows: Sequence[Mapping[str, Any]], metrics: Sequence[str] = ("test_acc", "forget_acc", "goal")) -> Any:
    """Paired differences with their 95% CIs, one panel per metric (``None`` if there are none)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [m for m in metrics if any(r["metric"] == m for r in rows)]
    if not shown:
        return None
    fig, axes = plt.subplots(1, len(shown), figsize=(4.5 * len(shown), 0.4 * len(rows) / len(shown) + 2), squeeze=False)
    for ax, metric in zip(axes[0], shown):
        sel = [r for r in rows if r["metric"] == metric]
        labels = [f"{r['comparison']} ({', '.join(str(v) for k, v in r.items() if k not in _DIFF_FIXED)}) λ={r['lambda']:g}"
                  for r in sel]
        y = list(range(len(sel)))
        err = [[r["difference"] - r["ci_low"] if not math.isnan(r["ci_low"]) else 0 for r in sel],
               [r["ci_high"] - r["difference"] if not math.isnan(r["ci_high"]) else 0 for r in sel]]
        ax.errorbar([r["difference"] for r in sel], y, xerr=err, fmt="o", capsize=3)
        ax.axvline(0, color="0.5", lw=0.8)
        ax.set_yticks(y, labels, fontsize=7)
        ax.set_title(f"{metric}: difference, 95% CI")
    fig.tight_layout()
    return fig


_DIFF_FIXED = {"axis", "comparison", "lambda", "metric", "difference", "ci_low", "ci_high", "n"}


def save_figure(fig: Any, path: Path, logger: Any = None, name: str = "") -> Path:
    """Write ``fig`` as PNG and send it to a Lightning logger that takes figures (TensorBoard's
    ``add_figure``, or a ``log_image`` method as in the W&B/Neptune loggers)."""
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=120)
    experiment = getattr(logger, "experiment", None) if logger is not None else None
    if experiment is not None and hasattr(experiment, "add_figure"):
        experiment.add_figure(name or path.stem, fig)
    elif logger is not None and hasattr(logger, "log_image"):
        logger.log_image(key=name or path.stem, images=[str(path)])
    plt.close(fig)
    return path

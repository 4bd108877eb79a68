"""What a study says when it ends: the console summary and the summary parts of ``study.json``
(which data chose and which scored, the one setting per point and λ, the claims)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from unlearn_pl.names import FORGET_ACC, TEST_ACC, J, scored_on
from unlearn_pl.report import format_rows
from unlearn_pl.stats import Estimate
from unlearn_pl.tuning.choice import TIE_BREAK


def scoring(goal: str, score_on: str) -> dict[str, str]:
    """Which data chose and which scored: ``study.json``'s ``scoring``."""
    out = {
        "selection": f"J(λ) = (1 − λ)·val_acc + λ·goal ({goal}) on validation data: per seed its best cell (chosen), and "
        f"the one cell with the highest mean J over seeds (setting); {TIE_BREAK}",
        "validation": "J, goal, val_*: the data that chose, so optimistic for the choice; the mean over per-seed "
        "choices more so (each seed keeps its own best cell)",
        "target": "<metric>_target_gap: the run minus the mean of the seed's two retrains (oracle and independent "
        "retrain); <metric>_gap: the run minus its oracle, as the run logged it",
    }
    if score_on != "val":
        out["held_out"] = (
            f"{scored_on(J, score_on)}, {scored_on('goal', score_on)}: J and the goal with {score_on} "
            f"data in place of validation; {score_on}_*: the {score_on} split; neither chose anything"
        )
    return out


def _estimate(row: Mapping[str, Any], column: str) -> str:
    if column not in row or row[column] is None or math.isnan(row[column]):
        return "-"
    e = Estimate(row[column], row[f"{column}_ci_low"], row[f"{column}_ci_high"], int(row.get("n") or 0))
    return f"{e:.3f}" if not math.isnan(e.low) else f"{e.mean:.3f}"


def answer(selection: Sequence[Mapping[str, Any]], axes: Sequence[str], score_on: str) -> list[dict[str, Any]]:
    """Per point and λ, the one setting with its per-seed J and interval (``study.json``'s ``answer``)."""
    scores = [J, *([scored_on(J, score_on)] if score_on != "val" else [])]
    out = []
    for row in selection:
        entry = {
            **{a: row[a] for a in axes},
            "lambda": row["lambda"],
            "setting": row.get("setting", ""),
            "n": row.get("setting_n", 0),
            f"{J}_per_seed": row.get(f"setting_{J}_per_seed", ""),
        }
        for score in scores:
            col = f"setting_{score}"
            entry[score] = {"mean": row.get(col), "ci": [row.get(f"{col}_ci_low"), row.get(f"{col}_ci_high")]}
        out.append(entry)
    return out


def console_summary(
    selection: Sequence[Mapping[str, Any]],
    claims: Sequence[Mapping[str, Any]],
    axes: Sequence[str],
    goal: str,
    score_on: str,
    no_differences: str | None,
    states: Mapping[str, int],
    folder: Path,
    incomplete: Sequence[str],
    diverged: Sequence[str],
) -> str:
    """The study's summary: per point and λ the one setting and the per-seed choice with their
    scores, the tie-break, the headline claims (or the line saying there are none), trials, folder."""
    held = scored_on(J, score_on) if score_on != "val" else None
    rows = []
    for r in selection:
        setting_row = {
            "n": r.get("setting_n"),
            **{k.removeprefix("setting_"): v for k, v in r.items() if k.startswith("setting_")},
        }
        row = {
            **{a: r[a] for a in axes},
            "lambda": f"{r['lambda']:g}",
            "n": str(r["n"]),
            "setting": r.get("setting") or "-",
            f"{J} of the setting": _estimate(setting_row, J),
        }
        if held:
            row[f"{held} of the setting"] = _estimate(setting_row, held)
        row.update({"chosen per seed": r.get("chosen") or "-", f"{J} per-seed choice (optimistic)": _estimate(r, J)})
        if held:
            row[held] = _estimate(r, held)
        row.update({FORGET_ACC: _estimate(r, FORGET_ACC), TEST_ACC: _estimate(r, TEST_ACC)})
        rows.append(row)
    where = (
        f"validation data chooses, {score_on} data scores the choice ({held})"
        if held
        else "validation data chooses and scores the choice (optimistic)"
    )
    lines = [
        f"chosen per point and lambda (goal {goal}; J(λ) = (1 − λ)·val_acc + λ·goal; {where}; mean [95% CI] "
        "over seeds):",
        format_rows(rows, list(rows[0]) if rows else ["lambda"]),
        f"setting: the one cell with the highest mean {J} over seeds; {TIE_BREAK}.",
        "",
    ]
    if no_differences:
        lines.append(no_differences)
    else:
        lines.append(
            "paired differences (value − the axis's first value, on the seeds both have; verdicts "
            "Holm-adjusted over each comparison's settings; every metric in differences.csv):"
        )
        lines += [f"  {c['axis']} {c['comparison']}, {c['metric']}: {c['claim']}" for c in claims]
    lines += ["", f"trials: {dict(states)}", f"results: {folder}"]
    if diverged:
        lines.append(f"diverged, not choosable ({len(diverged)}): " + "; ".join(diverged))
    if incomplete:
        lines.append(f"without a completed trial ({len(incomplete)}): " + "; ".join(incomplete))
    return "\n".join(lines)

"""Verdicts on the rows of a table of paired differences (a study's ``differences.csv``): every
row's statistics recomputed from its per-seed differences, the metric's range read from its name,
and the rows of one claim Holm-adjusted together (:mod:`.verdicts`)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from unlearn_pl.names import DURATION_S, GOAL, MIA_EFFICACY, REGION_CHANGE, REGION_SIMILARITY, SECONDS, J
from unlearn_pl.stats.intervals import UNIT_RANGE, Range, difference_range
from unlearn_pl.stats.power import ALPHA, POWER
from unlearn_pl.stats.verdicts import PairedComparison, compare_differences, holm, summarize

#: Metrics that are durations in seconds: never negative, so their intervals stop at 0.
DURATIONS = (SECONDS, DURATION_S)


def metric_range(metric: str) -> Range | None:
    """The range of a study metric by its name (a ``model/`` prefix such as ``oracle/`` ignored):
    accuracies (``*_acc``), attack scores (``mia_efficacy``, ``mia_loss_acc``), goals and J (on any
    split: ``J_test``), the decision-region scores lie in [0, 1]; a gap (``*_gap``, ``*_target_gap``)
    in the range of a difference of that metric ([−1, 1] for an accuracy), its absolute value
    (``abs_*``) and its noise floor (``*_gap_noise_floor``) in [0, 1]; a duration (``seconds``,
    ``duration_s``) in [0, ∞); anything else (losses, tug of war) is unbounded: ``None``.

    >>> metric_range("oracle/test_acc"), metric_range("forget_acc_gap"), metric_range("forget_loss")
    ((0.0, 1.0), (-1.0, 1.0), None)
    >>> metric_range("abs_mia_efficacy_target_gap"), metric_range("J_test"), metric_range("seconds")
    ((0.0, 1.0), (0.0, 1.0), (0.0, inf))
    """
    name = metric.rsplit("/", 1)[-1]
    if name in DURATIONS:
        return (0.0, math.inf)
    if name.startswith("abs_") or name.endswith("_noise_floor"):
        signed = metric_range(name.removeprefix("abs_").removesuffix("_noise_floor"))
        return None if signed is None else (0.0, max(-signed[0], signed[1]))
    for suffix in ("_target_gap", "_gap"):
        if name.endswith(suffix):
            return difference_range(metric_range(name.removesuffix(suffix)))
    if name.endswith("_acc") or name.split("_")[0].split("(")[0] in (J, GOAL):
        return UNIT_RANGE
    return UNIT_RANGE if name in (MIA_EFFICACY, REGION_CHANGE, REGION_SIMILARITY) else None


#: Columns :func:`verdict_rows` writes (besides the input row's own).
VERDICT_COLUMNS = (
    "difference",
    "ci_low",
    "ci_high",
    "ci_clipped",
    "n",
    "sd",
    "p_value",
    "mde",
    "margin",
    "tost_p",
    "verdict",
)
#: Columns :func:`verdict_rows` adds when rows are grouped into claims.
HOLM_COLUMNS = ("p_value_holm", "tost_p_holm", "mde_holm", "verdict_holm", "claim")


def verdict_rows(
    rows: Iterable[Mapping[str, Any]],
    margins: Mapping[str, float] | None = None,
    ranges: Mapping[str, Range | None] | None = None,
    claim_keys: Sequence[str] | None = None,
    per_seed: str = "per_seed",
    alpha: float = ALPHA,
    power: float = POWER,
) -> list[dict[str, Any]]:
    """Rows of paired differences (``differences.csv``'s: ``metric``, ``difference``, ``ci_low``,
    ``ci_high``, ``n``, other columns) with their per-seed differences under ``per_seed`` (a
    ``{seed: difference}`` mapping or a sequence), turned into rows with :data:`VERDICT_COLUMNS`.

    Every statistic is recomputed from the per-seed values; a row whose ``difference`` or ``n``
    disagrees with them raises a ``ValueError`` (its per-seed values belong to another row).

    Args:
        rows: the input rows; every other column is kept.
        margins: ``{metric: m}``, the equivalence margin per metric (metrics without one get no
            TOST: ``margin`` and ``tost_p`` are NaN).
        ranges: ``{metric: (low, high) or None}``, the range of a metric's *values*, overriding
            :func:`metric_range`; the interval is clipped to the range of a difference.
        claim_keys: columns that name one claim (e.g. ``("comparison", "metric")``): the rows
            sharing their values are its settings, Holm-adjusted together (:func:`holm`), and get
            :data:`HOLM_COLUMNS`, ``claim`` being :func:`summarize` of the claim.
        per_seed: the key of the per-seed differences.
        alpha, power: as in :func:`compare_differences`.

    >>> rows = verdict_rows([{"metric": "test_acc", "per_seed": {0: -0.03, 1: -0.05, 2: -0.04}}])
    >>> rows[0]["verdict"], round(rows[0]["difference"], 3)
    ('lower', -0.04)
    """
    margins, ranges = dict(margins or {}), dict(ranges or {})
    out: list[dict[str, Any]] = []
    comparisons: list[PairedComparison] = []
    for row in rows:
        if "metric" not in row or per_seed not in row:
            raise ValueError(
                f"a row needs 'metric' and {per_seed!r} (its per-seed differences); got keys {sorted(row)}"
            )
        metric = row["metric"]
        value_range = ranges[metric] if metric in ranges else metric_range(metric)
        try:
            c = compare_differences(row[per_seed], margins.get(metric), difference_range(value_range), alpha, power)
        except (TypeError, ValueError) as error:
            raise type(error)(f"metric {metric!r}: {error}") from None
        _check_row_agrees(row, c)
        e = c.estimate
        out.append(
            {
                **row,
                "difference": e.mean,
                "ci_low": e.low,
                "ci_high": e.high,
                "ci_clipped": e.clipped,
                "n": e.n,
                "sd": c.sd,
                "p_value": c.p_value,
                "mde": c.mde,
                "margin": math.nan if c.margin is None else c.margin,
                "tost_p": c.tost_p,
                "verdict": c.verdict,
            }
        )
        comparisons.append(c)
    if claim_keys is None:
        return out
    missing = [k for k in claim_keys if any(k not in row for row in out)]
    if missing:
        raise ValueError(f"claim_keys {missing} are not columns of every row; columns: {sorted(out[0]) if out else []}")
    claims: dict[tuple[Any, ...], list[int]] = {}
    for i, row in enumerate(out):
        claims.setdefault(tuple(row[k] for k in claim_keys), []).append(i)
    for members in claims.values():
        adjusted = holm([comparisons[i] for i in members])
        summary = summarize(adjusted)
        for i, c in zip(members, adjusted, strict=True):
            out[i].update(
                p_value_holm=c.p_value, tost_p_holm=c.tost_p, mde_holm=c.mde, verdict_holm=c.verdict, claim=summary
            )
    return out


def _given(row: Mapping[str, Any], key: str) -> float:
    """A row's number under ``key`` (NaN when absent or empty, as in a CSV cell)."""
    value = row.get(key)
    return math.nan if value is None or value == "" else float(value)


def _check_row_agrees(row: Mapping[str, Any], c: PairedComparison) -> None:
    given_n = _given(row, "n")
    if not math.isnan(given_n) and given_n != c.n:
        raise ValueError(f"metric {row['metric']!r}: n = {row['n']} but {c.n} per-seed differences")
    given = _given(row, "difference")
    if c.n and math.isfinite(given) and not math.isclose(given, c.estimate.mean, rel_tol=1e-9, abs_tol=1e-12):
        raise ValueError(
            f"metric {row['metric']!r}: difference {given} is not the mean of its per-seed "
            f"differences ({c.estimate.mean})"
        )

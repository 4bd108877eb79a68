"""A study's settings checked before its first trial, so a bad value costs seconds, not a study.

Every candidate's config is built by the study's trial runner (the CLI's own parser with
``run=False``: parsed, then the model, data module and trainer instantiated, nothing trained), so a
value ``fit`` would refuse is refused here, in one line naming the key, the value and the
candidate. Also checked: the seeds (integers in ``[0, 2**32)``, NumPy's seed range), that no axis
or grid key sets what the seeds set (:data:`~unlearn_pl.tuning.study.SEED_KEYS`), that every
candidate logs what the goal is computed from and, scored on test, evaluates the test split, and
the equivalence margins.
"""

from __future__ import annotations

import argparse
import logging
import math
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from unlearn_pl.utils.errors import USER_ERRORS, condense_parse_error, one_line_error

#: Seeds are NumPy's: integers in [0, 2**32).
SEED_LIMIT = 2**32

#: The splits a study's choice can be scored on: ``val`` (the selection's own data) or ``test`` (held out).
SCORE_SPLITS = ("val", "test")


def check_scoring(goal: str, score_on: str | None) -> str:
    """The split a study scores its choice on besides validation: ``score_on``, or by default
    ``test``, and ``val`` for goal ``privacy_mia`` (its loss attack runs on validation data, and a
    run logs one loss attack); ``ValueError`` for a split the goal cannot be scored on."""
    if score_on is None:
        return "val" if goal == "privacy_mia" else "test"
    if score_on not in SCORE_SPLITS:
        raise ValueError(f"score_on must be one of {', '.join(SCORE_SPLITS)}; got {score_on!r}")
    if score_on == "test" and goal == "privacy_mia":
        raise ValueError(
            "goal privacy_mia is computed from the loss attack against validation data, and a run logs one "
            "loss attack, so it cannot be scored on test data too: give score_on val"
        )
    return score_on


def check_margins(margin: Any) -> dict[str, float]:
    """``margin`` (``{metric: m}``, the equivalence margin per metric, or None) as a dict of positive
    finite floats, else ``ValueError`` naming the bad entry."""
    if margin is None:
        return {}
    if not isinstance(margin, Mapping):
        raise ValueError(
            f"margin must be a mapping {{metric: positive number}}, e.g. {{test_acc: 0.02}}; got {margin!r}"
        )
    for metric, m in margin.items():
        if not isinstance(metric, str) or not metric:
            raise ValueError(f"margin: {metric!r} is not a metric name (a column of differences.csv, e.g. test_acc)")
        if isinstance(m, bool) or not isinstance(m, (int, float)) or not (math.isfinite(m) and m > 0):
            raise ValueError(f"margin[{metric!r}] must be a positive finite number in the metric's units; got {m!r}")
    return {metric: float(m) for metric, m in margin.items()}


def check_seeds(seeds: Any) -> list[int]:
    """``seeds`` as a list of distinct integers in ``[0, 2**32)``, else ``ValueError`` naming ``seeds``."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of distinct integers in [0, 2**32); got {seeds!r}")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT]
    if bad:
        raise ValueError(
            f"seeds must be integers in [0, 2**32) (NumPy's seed range); got {bad[0]!r} in seeds {list(seeds)}"
        )
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds must be distinct; got {list(seeds)}")
    return list(seeds)


def _leaves(value: Any, prefix: str = "") -> set[str]:
    if isinstance(value, Mapping) and value:
        return {leaf for k, v in value.items() for leaf in _leaves(v, f"{prefix}{k}.")}
    return {prefix.rstrip(".")}


def seed_key_set_by(key: str, value: Any, seed_keys: Sequence[str]) -> str | None:
    """The seed key that the override ``key: value`` sets (directly or inside a mapping), if any."""
    for seed_key in seed_keys:
        if key == seed_key:
            return seed_key
        if seed_key.startswith(key + ".") and seed_key[len(key) + 1 :] in _leaves(value):
            return seed_key
    return None


def check_no_seed_keys(candidates: Sequence[Any], seed_keys: Sequence[str]) -> None:
    """Refuse an axis or grid key that sets a seed key: ``seeds`` sets those in every trial, so the
    study's value would be silently overridden and its comparisons would compare nothing."""
    for c in candidates:
        for key, value in c.overrides:
            if (seed_key := seed_key_set_by(key, value, seed_keys)) is not None:
                what = key if key == seed_key else f"{key} (its {seed_key[len(key) + 1 :]})"
                raise ValueError(
                    f"the study's space or grid sets {what}, which the study's seeds set in every trial "
                    f"({', '.join(seed_keys)}); list seeds under `seeds` instead, or leave {seed_key} "
                    "out of seed_keys"
                )


@contextmanager
def quiet_lightning() -> Iterator[None]:
    """Without "Seed set to …" and "GPU available …" once per candidate."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels, strict=True):
            lg.setLevel(level)


def _culprit(reason: str, overrides: Sequence[tuple[str, Any]]) -> tuple[str, Any] | None:
    """The override whose key the parser's reason names (``model > unlearner > lr: …``)."""
    path = reason.split(": ", 1)[0].replace(" > ", ".")
    for key, value in reversed(overrides):
        if key.replace(".init_args", "") == path or key == path:
            return key, value
    return None


def _refusal(candidate: Any, reason: str) -> ValueError:
    found = _culprit(reason, candidate.overrides)
    where = (
        f"{found[0]}: {found[1]!r}"
        if found
        else ", ".join(f"{k}: {v!r}" for k, v in candidate.overrides) or "the base config"
    )
    return ValueError(f"the study's value {where} (candidate {candidate.name!r}) is refused: {reason}")


def _goal_problem(goal: str, model: Any, datamodule: Any, score_on: str) -> str | None:
    from unlearn_pl.metrics import SplitAccuracy
    from unlearn_pl.metrics.mia import LossAttack
    from unlearn_pl.protocols import eval_splits

    metrics = list(getattr(model, "metrics", []))
    if getattr(datamodule, "val_fraction", 1) == 0:
        return f"goal {goal} is scored on validation data, and data.init_args.val_fraction is 0: give it a share > 0"
    if score_on not in eval_splits(datamodule):
        return (
            f"score_on {score_on}: the data module evaluates {list(eval_splits(datamodule))}, not {score_on}; "
            "give score_on val"
        )
    if not any(isinstance(m, SplitAccuracy) for m in metrics):
        return (
            f"goal {goal} needs forget and validation accuracy: add {{class_path: unlearn_pl.metrics.SplitAccuracy}} "
            "to model.init_args.metrics"
        )
    if goal == "privacy_mia" and not any(isinstance(m, LossAttack) and m.nonmembers == "val" for m in metrics):
        return (
            "goal privacy_mia needs the loss attack against validation data: add {class_path: "
            "unlearn_pl.metrics.LossAttack, init_args: {nonmembers: val}} to model.init_args.metrics"
        )
    return None


def check_candidates(objective: Any, score_on: str = "test") -> None:
    """Build every candidate's config with the study's trial runner (seed: the study's first) and
    check its metrics against the goal and ``score_on``; raise ``ValueError`` for the first refused one."""
    check_no_seed_keys(objective.candidates, objective.seed_keys)
    with tempfile.TemporaryDirectory(prefix="unlearn_pl-check-") as scratch, quiet_lightning():
        for c in objective.candidates:
            args = objective.fit_args(c, objective.seeds[0], "check", subcommand=None, subfolder=scratch)
            try:
                cli = objective.runner(args, run=False, parser_kwargs={"exit_on_error": False})
            except argparse.ArgumentError as e:
                raise _refusal(c, condense_parse_error(str(e))) from None
            except (*USER_ERRORS, TypeError) as e:
                raise _refusal(c, one_line_error(e)) from None
            if (problem := _goal_problem(objective.goal, cli.model, cli.datamodule, score_on)) is not None:
                raise ValueError(f"{problem} (candidate {c.name!r})")

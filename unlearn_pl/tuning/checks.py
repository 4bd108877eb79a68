"""A study's settings checked before its first trial, so a bad value costs seconds, not a study.

Every candidate's config is built by the CLI's own parser (``UnlearningCLI(run=False)``: parsed,
then the model, data module and trainer instantiated, nothing trained), so a value ``fit`` would
refuse is refused here, in one line naming the key, the value and the candidate. Also checked:
the seeds (integers in ``[0, 2**32)``, NumPy's seed range), that no axis or grid key sets what the
seeds set (:data:`~unlearn_pl.tuning.study.SEED_KEYS`), and that every candidate logs what the goal
is computed from.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

#: Seeds are NumPy's: integers in [0, 2**32).
SEED_LIMIT = 2**32


def check_seeds(seeds: Any) -> list[int]:
    """``seeds`` as a list of distinct integers in ``[0, 2**32)``, else ``ValueError`` naming ``seeds``."""
    if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a non-empty list of distinct integers in [0, 2**32); got {seeds!r}")
    bad = [s for s in seeds if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s < SEED_LIMIT]
    if bad:
        raise ValueError(f"seeds must be integers in [0, 2**32) (NumPy's seed range); got {bad[0]!r} in seeds {list(seeds)}")
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
        if seed_key.startswith(key + ".") and seed_key[len(key) + 1:] in _leaves(value):
            return seed_key
    return None


def check_no_seed_keys(candidates: Sequence[Any], seed_keys: Sequence[str]) -> None:
    """Refuse an axis or grid key that sets a seed key: ``seeds`` sets those in every trial, so the
    study's value would be silently overridden and its comparisons would compare nothing."""
    for c in candidates:
        for key, value in c.overrides:
            if (seed_key := seed_key_set_by(key, value, seed_keys)) is not None:
                what = key if key == seed_key else f"{key} (its {seed_key[len(key) + 1:]})"
                raise ValueError(f"the study's space or grid sets {what}, which the study's seeds set in every trial "
                                 f"({', '.join(seed_keys)}); list seeds under `seeds` instead, or leave {seed_key} "
                                 "out of seed_keys")


@contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Without "Seed set to …" and "GPU available …" once per candidate."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
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
    where = f"{found[0]}: {found[1]!r}" if found else ", ".join(f"{k}: {v!r}" for k, v in candidate.overrides) or "the base config"
    return ValueError(f"the study's value {where} (candidate {candidate.name!r}) is refused: {reason}")


def _goal_problem(goal: str, model: Any, datamodule: Any) -> str | None:
    from unlearn_pl.metrics import SplitAccuracy
    from unlearn_pl.metrics.mia import LossAttack

    metrics = list(getattr(model, "metrics", []))
    if getattr(datamodule, "val_fraction", 1) == 0:
        return f"goal {goal} is scored on validation data, and data.init_args.val_fraction is 0: give it a share > 0"
    if not any(isinstance(m, SplitAccuracy) for m in metrics):
        return (f"goal {goal} needs forget and validation accuracy: add {{class_path: unlearn_pl.metrics.SplitAccuracy}} "
                "to model.init_args.metrics")
    if goal == "privacy_mia" and not any(isinstance(m, LossAttack) and m.nonmembers == "val" for m in metrics):
        return ("goal privacy_mia needs the loss attack against validation data: add {class_path: "
                "unlearn_pl.metrics.LossAttack, init_args: {nonmembers: val}} to model.init_args.metrics")
    return None


def check_candidates(objective: Any) -> None:
    """Build every candidate's config with the CLI (seed: the study's first) and check its metrics
    against the goal; raise ``ValueError`` for the first refused one."""
    from unlearn_pl.cli.errors import USER_ERRORS, condense_parse_error, one_line_error
    from unlearn_pl.tuning.study import run_cli

    check_no_seed_keys(objective.candidates, objective.seed_keys)
    with tempfile.TemporaryDirectory(prefix="unlearn_pl-check-") as scratch, _quiet_lightning():
        for c in objective.candidates:
            args = objective.fit_args(c, objective.seeds[0], "check", subcommand=None, subfolder=scratch)
            try:
                cli = run_cli(args, run=False, parser_kwargs={"exit_on_error": False})
            except argparse.ArgumentError as e:
                raise _refusal(c, condense_parse_error(str(e))) from None
            except (*USER_ERRORS, TypeError) as e:
                raise _refusal(c, one_line_error(e)) from None
            if (problem := _goal_problem(objective.goal, cli.model, cli.datamodule)) is not None:
                raise ValueError(f"{problem} (candidate {c.name!r})")

"""ToW (tug-of-war): how closely a model matches the oracle's accuracies on forget, retain and test."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import lightning.pytorch as pl

from unlearn_pl.metrics.base import EvaluationCallback
from unlearn_pl.names import ORACLE, TOW, Results

#: The splits of the ToW product (Zhao et al., 2024).
TOW_SPLITS: tuple[str, ...] = ("forget", "retain", "test")


def tug_of_war(
    accuracy: Mapping[str, float], oracle_accuracy: Mapping[str, float], splits: Sequence[str] = TOW_SPLITS
) -> float:
    """``Π over splits of (1 − |acc − acc_oracle|)``, accuracies as fractions in ``[0, 1]``.

    1.0 = the model has exactly the oracle's accuracy on every split; any gap on any split
    pulls it down multiplicatively.

    Args:
        accuracy: the model's accuracy per split name.
        oracle_accuracy: the oracle's accuracy per split name.
        splits: the splits in the product.

    Example::

        tug_of_war({"forget": 0.9, "retain": 1.0, "test": 0.8}, {"forget": 0.8, "retain": 1.0, "test": 0.85})
        # (1 - 0.1) * 1.0 * (1 - 0.05) = 0.855
    """
    if not splits:
        raise ValueError("splits must name at least one split, e.g. ('forget', 'retain', 'test')")
    value = 1.0
    for split in splits:
        for who, acc in (("model", accuracy), ("oracle", oracle_accuracy)):
            if split not in acc:
                raise ValueError(f"the {who}'s accuracies have no split {split!r}; they have {sorted(acc)}")
            if not 0.0 <= acc[split] <= 1.0 or math.isnan(acc[split]):
                raise ValueError(f"the {who}'s {split!r} accuracy must be a fraction in [0, 1]; got {acc[split]}")
        value *= 1.0 - abs(accuracy[split] - oracle_accuracy[split])
    return value


class TugOfWar(EvaluationCallback):
    """ToW of every model but the oracle against the oracle (column ``tow``); nothing without an oracle.

    Args:
        splits: the splits in the product (default forget, retain, test).
        during_fit: also evaluate at the validation epochs of ``fit``.
    """

    def __init__(self, splits: Sequence[str] = TOW_SPLITS, during_fit: bool = True) -> None:
        super().__init__(during_fit=during_fit)
        if not splits:
            raise ValueError("splits must name at least one split, e.g. ['forget', 'retain', 'test']")
        self.splits = tuple(splits)

    def evaluate(self, trainer: pl.Trainer, pl_module) -> Results:
        per_example = pl_module.per_example()
        if ORACLE not in per_example:
            return {}
        acc = {
            model: {split: float(stats["correct"].mean()) for split, stats in splits.items() if len(stats["index"])}
            for model, splits in per_example.items()
        }
        return {
            model: {TOW: tug_of_war(values, acc[ORACLE], self.splits)}
            for model, values in acc.items()
            if model != ORACLE
        }

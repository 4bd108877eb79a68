"""A forget selector for the audit's tests: it ignores the data's seeded generator and draws with
NumPy's global one, which ``seed_everything`` seeds, so its forget set changes with the model seed."""

from __future__ import annotations

import numpy as np

from unlearn_pl.data.selectors import ForgetSelection, ForgetSelector


class GlobalRandomForget(ForgetSelector):
    """``size`` forget examples drawn with ``np.random`` (the global generator)."""

    def __init__(self, size: int = 20) -> None:
        self.size = size

    def select(self, pool, targets, num_classes, rng):
        return ForgetSelection(np.sort(np.random.choice(pool, size=self.size, replace=False)))

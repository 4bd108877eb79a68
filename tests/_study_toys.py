"""Top-level (picklable) objectives for the study engine's tests."""

from __future__ import annotations

import os
import time
from pathlib import Path

import optuna


class CountingObjective:
    """``10·x + seed`` after a short sleep; cell (3, 1) raises. Every call leaves a file in
    ``calls`` so a test can count how often each cell ran. With ``die_on`` set, the process exits
    abruptly on that cell (a killed worker: Optuna never hears of the trial's end)."""

    def __init__(self, calls: str, die_on: tuple[int, int] | None = None, sleep: float = 0.1) -> None:
        self.calls, self.die_on, self.sleep = calls, die_on, sleep

    def __call__(self, trial: optuna.Trial) -> float:
        x = trial.suggest_categorical("x", [0, 1, 2, 3])
        seed = trial.suggest_categorical("seed", [0, 1])
        if self.die_on == (x, seed):
            os._exit(3)
        Path(self.calls, f"{x}-{seed}-{trial.number}").touch()
        time.sleep(self.sleep)
        if (x, seed) == (3, 1):
            raise ValueError("boom")
        return float(10 * x + seed)


GRID = {"x": [0, 1, 2, 3], "seed": [0, 1]}

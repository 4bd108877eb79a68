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


def prepare_references(cache: str, log: str) -> None:
    """Prepare the original and oracle of a digits MLP in ``cache``, appending the training split
    of every model this process trains (not loads) to ``log``."""
    import torch

    import unlearn_pl.references.models as references
    from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule
    from unlearn_pl.data import Digits, RandomForget
    from unlearn_pl.models import MLP

    torch.set_num_threads(1)
    train = references.train_classifier

    def counted(network, data, recipe, **kwargs):  # noqa: ANN001, ANN202
        time.sleep(1.0)  # widen the window in which the other process would also train
        with open(log, "a") as f:
            f.write(f"{data.which}\n")
        return train(network, data, recipe, **kwargs)

    references.train_classifier = counted
    dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=64)
    torch.manual_seed(0)
    net = MLP(in_features=64, num_classes=10, hidden=(32,))
    ReferenceModels(TrainingRecipe(epochs=1, lr=0.1, batch_size=64, accelerator="cpu"), cache_dir=cache).prepare(net, dm)


def run_toy_study(folder: str, workers: int, sleep: float) -> None:
    """``CountingObjective``'s grid in ``folder`` (journal ``s.log``, calls in ``calls/``): the
    study a test interrupts, kills or damages from outside; exits 130 when interrupted."""
    from unlearn_pl.tuning.engine import StudyInterrupted, journal_storage, run_trials

    Path(folder, "calls").mkdir(parents=True, exist_ok=True)
    try:
        run_trials(CountingObjective(str(Path(folder, "calls")), sleep=sleep), study_name="toy",
                   storage=journal_storage(Path(folder, "s.log")), sampler=optuna.samplers.GridSampler(GRID),
                   workers=workers)
    except StudyInterrupted:
        raise SystemExit(130) from None


if __name__ == "__main__":
    import sys

    run_toy_study(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))

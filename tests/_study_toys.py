"""Top-level (picklable) objectives for the study engine's tests, and the digits study config
(``STUDY``) that the study tests share."""

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

#: A one-epoch digits study's base config: a small MLP, NegGrad+, split accuracy.
STUDY = {
    "seed_everything": 0,
    "trainer": {
        "accelerator": "cpu",
        "devices": 1,
        "max_epochs": 1,
        "num_sanity_val_steps": 0,
        "logger": False,
        "enable_checkpointing": False,
        "enable_progress_bar": False,
        "enable_model_summary": False,
    },
    "data": {
        "class_path": "unlearn_pl.UnlearningDataModule",
        "init_args": {
            "dataset": {"class_path": "unlearn_pl.data.Digits"},
            "forget": {"class_path": "unlearn_pl.data.RandomForget", "init_args": {"size": 0.1}},
            "val_fraction": 0.1,
            "batch_size": 64,
        },
    },
    "model": {
        "class_path": "unlearn_pl.UnlearningModule",
        "init_args": {
            "network": {
                "class_path": "unlearn_pl.models.MLP",
                "init_args": {"in_features": 64, "num_classes": 10, "hidden": [32]},
            },
            "references": {
                "class_path": "unlearn_pl.ReferenceModels",
                "init_args": {"recipe": {"epochs": 5, "lr": 0.1, "batch_size": 64, "accelerator": "cpu"}},
            },
            "metrics": [{"class_path": "unlearn_pl.metrics.SplitAccuracy"}],
            "unlearner": {"class_path": "unlearn_pl.unlearners.NegGradPlus", "init_args": {"lr": 0.01}},
        },
    },
}


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

    def counted(network, data, recipe, **kwargs):
        time.sleep(1.0)  # widen the window in which the other process would also train
        with open(log, "a") as f:
            f.write(f"{data.which}\n")
        return train(network, data, recipe, **kwargs)

    references.train_classifier = counted
    dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=64)
    torch.manual_seed(0)
    net = MLP(in_features=64, num_classes=10, hidden=(32,))
    ReferenceModels(TrainingRecipe(epochs=1, lr=0.1, batch_size=64, accelerator="cpu"), cache_dir=cache).prepare(
        net, dm
    )


def run_toy_study(folder: str, workers: int, sleep: float) -> None:
    """``CountingObjective``'s grid in ``folder`` (journal ``s.log``, calls in ``calls/``): the
    study a test interrupts, kills or damages from outside; exits 130 when interrupted."""
    from unlearn_pl.tuning.engine import StudyInterrupted, journal_storage, run_trials

    Path(folder, "calls").mkdir(parents=True, exist_ok=True)
    try:
        run_trials(
            CountingObjective(str(Path(folder, "calls")), sleep=sleep),
            study_name="toy",
            storage=journal_storage(Path(folder, "s.log")),
            sampler=optuna.samplers.GridSampler(GRID),
            workers=workers,
        )
    except StudyInterrupted:
        raise SystemExit(130) from None


if __name__ == "__main__":
    import sys

    run_toy_study(sys.argv[1], int(sys.argv[2]), float(sys.argv[3]))


# ----------------------------------------------------------------------------- a study's trials without training
class ToyCLI:
    """What a trial runner returns (``trainer``, ``model``, ``datamodule``), its metrics made up by
    :func:`toy_metrics` from the trial's ``--toy.arm``, ``--toy.lr`` and seeds instead of trained."""

    def __init__(self, args: list[str]) -> None:
        from types import SimpleNamespace

        from unlearn_pl.metrics import SplitAccuracy

        given = dict(a[2:].split("=", 1) for a in args if a.startswith("--") and "=" in a)
        model_seed, data_seed = int(given["seed_everything"]), int(given["data.init_args.seed"])
        metrics = toy_metrics(
            given.get("toy.arm", "a"), float(given.get("toy.lr", 0.1)), data_seed, retrain=model_seed != data_seed
        )
        self.trainer = SimpleNamespace(callback_metrics=metrics, validate=lambda *a, **k: None)
        self.model = SimpleNamespace(metrics=[SplitAccuracy()], prepare_models=lambda datamodule: None)
        self.datamodule = SimpleNamespace(val_fraction=0.1)


def toy_runner(args: list[str], run: bool = True, **kwargs: object) -> ToyCLI:
    """A trial runner (top level: picklable) whose trials are :class:`ToyCLI`'s made-up runs."""
    return ToyCLI(list(args))


def toy_metrics(arm: str, lr: float, seed: int, retrain: bool = False) -> dict[str, float]:
    """Made-up metrics of a trial (``unlearned/…`` and ``oracle/…``, as a run logs them).

    lr 0.1 and 0.2 give the same metrics (a tie in every J); lr 0.3 is the best cell on seed 0 and
    the worst elsewhere. Arm ``b`` forgets 0.03 less than ``a`` (its forget accuracy is higher),
    its test accuracy is within ±0.002 of ``a``'s. The oracle's forget accuracy is 0.69 + 0.01·seed,
    the independent retrain's 0.02 higher. Retain accuracy crowds 1 (its interval must be clipped).
    """
    jitter = (seed % 3) - 1  # -1, 0, 1
    sign = 1 if seed % 2 else -1
    if lr < 0.25:
        val, forget = 0.90 + 0.005 * jitter, 0.85 + 0.005 * jitter
    else:
        val, forget = (0.95, 0.93) if seed == 0 else (0.80, 0.70)
    test = 0.88 + 0.003 * jitter
    mia_loss, mia_efficacy = 0.55, 0.40 + 0.01 * jitter
    if arm == "b":
        forget += 0.03 + 0.002 * (seed % 2)
        test += 0.002 * sign
        mia_loss += 0.01 * sign
        mia_efficacy += 0.02 * sign
    unlearned = {
        "val_acc": val,
        "forget_acc": forget,
        "test_acc": test,
        "retain_acc": 0.999 if seed % 2 else 0.96,
        "mia_loss_acc": mia_loss,
        "mia_efficacy": mia_efficacy,
    }
    oracle = {
        "val_acc": 0.9,
        "forget_acc": 0.69 + 0.01 * seed + (0.02 if retrain else 0.0),
        "test_acc": 0.9,
        "retain_acc": 0.99,
        "mia_loss_acc": 0.5,
        "mia_efficacy": 0.30 + (0.04 if retrain else 0.0),
    }
    return {**{f"unlearned/{k}": v for k, v in unlearned.items()}, **{f"oracle/{k}": v for k, v in oracle.items()}}


class DeviceRecorder:
    """Records in each trial's user attrs what its worker process owns: ``CUDA_VISIBLE_DEVICES``,
    ``OMP_NUM_THREADS``, torch's thread count and the pid. A trial waits (up to ``wait`` seconds)
    until ``workers`` processes have each started a trial, so every worker runs one whatever the
    machine's load."""

    def __init__(self, folder: str, workers: int = 2, wait: float = 120.0) -> None:
        self.folder, self.workers, self.wait = folder, workers, wait

    def __call__(self, trial: optuna.Trial) -> float:
        import torch

        trial.suggest_categorical("x", [0, 1])
        Path(self.folder, str(os.getpid())).touch()
        deadline = time.monotonic() + self.wait
        while len(list(Path(self.folder).iterdir())) < self.workers and time.monotonic() < deadline:
            time.sleep(0.05)
        trial.set_user_attr("cuda_visible_devices", os.environ.get("CUDA_VISIBLE_DEVICES"))
        trial.set_user_attr("omp_num_threads", os.environ.get("OMP_NUM_THREADS"))
        trial.set_user_attr("torch_threads", torch.get_num_threads())
        trial.set_user_attr("pid", os.getpid())
        return 0.0

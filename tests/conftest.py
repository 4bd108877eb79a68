"""Shared fixtures: tiny data, tiny networks and fast trainers, so tests run in seconds on CPU."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from filelock import FileLock

from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.models import MLP, SmallCNN

REPO = Path(__file__).resolve().parents[1]

# One intra-op thread in every process of the suite: the pytest process (and each pytest-xdist
# worker), and through OMP_NUM_THREADS the processes it starts (CLI runs, DDP ranks, notebook
# kernels). Tiny models run faster that way, and several threads per process would spin-wait for
# cores the other workers hold.
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Run the slow tests first (in their collected order): the pytest-xdist workers share out the
    long tests while there are many, and then finish together on the short ones."""
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)


def run_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The temporary folder of this test run, shared by its pytest-xdist workers (each worker's
    own folder is inside it: pytest-xdist's documented pattern)."""
    root = tmp_path_factory.getbasetemp()
    return root.parent if os.environ.get("PYTEST_XDIST_WORKER") else root


def shared_run(tmp_path_factory: pytest.TempPathFactory, name: str, make: Callable[[Path], object]) -> Path:
    """The folder ``<run folder>/<name>`` filled by ``make(folder)`` once per test run: the first
    worker to ask makes it while holding a file lock; the others wait and read it. A ``make`` that
    raises leaves no folder to read, so every test that asks fails alike."""
    folder = run_folder(tmp_path_factory) / name
    complete = folder / ".complete"
    with FileLock(f"{folder}.lock"):
        if not complete.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            make(folder)
            complete.touch()
    return folder


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test run gets its own model cache, shared by all its tests and pytest-xdist workers
    (the cache locks an entry while it is written), so a reference model is trained once per run.
    Set for the whole session, it is in place for fixtures of every scope."""
    cache = run_folder(tmp_path_factory) / "model-cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("UNLEARN_PL_CACHE", str(cache))
        yield cache


@pytest.fixture(autouse=True)
def _run_in_tmp_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run every test in its own folder, so nothing (Lightning's default_root_dir is the working
    directory) can write run outputs into the repository."""
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def digits_dm() -> Callable[..., UnlearningDataModule]:
    """Factory of digits data modules (random 10% forget set by default)."""

    def make(**kwargs) -> UnlearningDataModule:
        kwargs.setdefault("dataset", Digits())
        kwargs.setdefault("forget", RandomForget(0.1))
        kwargs.setdefault("batch_size", 64)
        return UnlearningDataModule(**kwargs)

    return make


def tiny_mlp(seed: int = 0) -> MLP:
    torch.manual_seed(seed)
    return MLP(in_features=64, num_classes=10, hidden=(32,))


def tiny_cnn(seed: int = 0) -> SmallCNN:
    torch.manual_seed(seed)
    return SmallCNN(num_classes=10, in_channels=1, width=8)


#: A recipe that memorizes digits in a few seconds (original: ~100% train accuracy).
FAST_RECIPE = TrainingRecipe(epochs=15, lr=0.1, batch_size=64, accelerator="cpu")


def fast_trainer(tmp_path: Path, **kwargs) -> pl.Trainer:
    """A CPU trainer without loggers, checkpoints or progress bars."""
    defaults = dict(
        accelerator="cpu",
        devices=1,
        max_epochs=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(tmp_path),
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


@pytest.fixture
def prepared_module(digits_dm) -> Callable[..., tuple[UnlearningModule, UnlearningDataModule]]:
    """Factory: an UnlearningModule on digits with its original (and oracle) trained or cached.

    ``prepared_module(localizer=..., unlearner=..., network=tiny_mlp(), oracle=True)``
    """

    def make(network=None, oracle: bool = True, dm_kwargs: dict | None = None, **module_kwargs):
        dm = digits_dm(**(dm_kwargs or {}))
        module = UnlearningModule(
            network=network if network is not None else tiny_mlp(),
            references=ReferenceModels(recipe=FAST_RECIPE, oracle=oracle),
            **module_kwargs,
        )
        module.prepare_models(dm)
        return module, dm

    return make


def run_script(code: str, tmp_path: Path, timeout: int = 600) -> str:
    """Run ``code`` as a standalone script (needed for DDP, whose launcher re-executes the script)."""
    import subprocess
    import sys

    script = tmp_path / "script.py"
    script.write_text(code)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    out = subprocess.run(
        [sys.executable, str(script)], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=timeout
    )
    if out.returncode != 0:
        raise AssertionError(
            f"script failed ({out.returncode}):\nSTDOUT:\n{out.stdout[-4000:]}\nSTDERR:\n{out.stderr[-6000:]}"
        )
    return out.stdout


def write_config(tmp_path: Path, **overrides) -> Path:
    """A tiny CLI config: digits, a 32-unit MLP, cached references, one epoch, no metrics."""
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": 1,
            "num_sanity_val_steps": 0,
            "enable_model_summary": False,
            "enable_progress_bar": False,
            "logger": {
                "class_path": "lightning.pytorch.loggers.CSVLogger",
                "init_args": {"save_dir": str(tmp_path / "runs"), "name": "tiny"},
            },
        },
        "data": {
            "class_path": "unlearn_pl.UnlearningDataModule",
            "init_args": {"dataset": {"class_path": "unlearn_pl.data.Digits"}, "batch_size": 64},
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
                    "init_args": {
                        "oracle": False,
                        "recipe": {"epochs": 15, "lr": 0.1, "batch_size": 64, "accelerator": "cpu"},
                    },
                },
                "unlearner": {"class_path": "unlearn_pl.unlearners.Finetune"},
                "metrics": [],
            },
        },
    }
    for dotted, value in overrides.items():
        node = config
        *parents, leaf = dotted.split(".")
        for key in parents:
            node = node[key]
        node[leaf] = value
    path = tmp_path / "tiny.yaml"
    path.write_text(json.dumps(config))  # JSON is YAML
    return path

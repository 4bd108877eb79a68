"""The ``unlearn-pl`` command end to end, as a user runs it."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from conftest import REPO, shared_run

from unlearn_pl import UnlearningModule
from unlearn_pl.localizers import DEL
from unlearn_pl.models import CifarResNet
from unlearn_pl.unlearners import ResetFinetune

#: What the quick start used to print besides its table: warnings about causes since fixed and
#: Lightning's advertisements.
NOISE = (
    "was called before the ``update`` method",  # torchmetrics: reused reference rows computed again
    "log_every_n_steps",  # an epoch shorter than the logging interval
    "💡 Tip",  # Lightning's litlogger/litmodels advertisements
    "will override existing callbacks",  # the module's callbacks attached twice
    "sync_dist=True",  # Lightning's advice for epoch-level logs under DDP
)


def unlearn_pl(*args: str, cwd, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "unlearn_pl", *args],
        cwd=cwd,
        env=dict(os.environ),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


QUICKSTART = str(REPO / "configs" / "quickstart.yaml")


@pytest.fixture
def quickstart(tmp_path_factory) -> tuple[subprocess.CompletedProcess, Path]:
    """The README's quick start run as a user runs it, once per test run (the first test to ask
    runs it): its output and its run folder. Nothing else writes into its folder."""

    def run(folder: Path) -> None:
        out = unlearn_pl("fit", "--config", QUICKSTART, f"--trainer.logger.init_args.save_dir={folder}", cwd=folder)
        (folder / "run.json").write_text(
            json.dumps({"returncode": out.returncode, "stdout": out.stdout, "stderr": out.stderr})
        )

    folder = shared_run(tmp_path_factory, "quickstart", run)
    out = json.loads((folder / "run.json").read_text())
    completed = subprocess.CompletedProcess(["unlearn-pl", "fit"], out["returncode"], out["stdout"], out["stderr"])
    # The run folder is named after the localizer and unlearner.
    return completed, folder / "quickstart" / "DEL-ResetFinetune" / "version_0"


def test_quickstart_end_to_end(tmp_path, quickstart):
    out, run = quickstart
    assert out.returncode == 0, out.stderr[-5000:]
    assert f"results: {run}" in out.stdout  # the run says where its results went
    results = json.loads((run / "results.json").read_text())
    assert list(results) == ["original", "unlearned", "oracle"]
    orig, unl, oracle = (results[k] for k in ("original", "unlearned", "oracle"))
    # forget accuracy moves toward the oracle's, test accuracy stays within a few points
    assert abs(unl["forget_acc"] - oracle["forget_acc"]) < abs(orig["forget_acc"] - oracle["forget_acc"])
    assert unl["test_acc"] > orig["test_acc"] - 0.03
    assert (run / "results.csv").read_text().splitlines()[0].startswith("model,retain_acc")
    assert set(json.loads((run / "split.json").read_text())) >= {"retain", "forget", "val", "seed", "dataset"}
    assert "unlearned" in out.stdout and "forget_acc" in out.stdout  # the printed table
    for noise in NOISE:
        assert noise not in out.stdout + out.stderr, noise

    # a second run reuses the cached original/oracle and gives identical numbers (CPU determinism)
    again = unlearn_pl("fit", "--config", QUICKSTART, f"--trainer.logger.init_args.save_dir={tmp_path}", cwd=tmp_path)
    assert again.returncode == 0, again.stderr[-5000:]
    assert "Reusing the cached original model" in again.stdout + again.stderr
    assert (
        json.loads((tmp_path / "quickstart" / "DEL-ResetFinetune" / "version_0" / "results.json").read_text())
        == results
    )

    # validate the unlearned checkpoint: same unlearned row, results written to a new run folder
    ckpt = next((run / "checkpoints").glob("*.ckpt"))
    val = unlearn_pl(
        "validate",
        "--config",
        QUICKSTART,
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        f"--ckpt_path={ckpt}",
        cwd=tmp_path,
    )
    assert val.returncode == 0, val.stderr[-5000:]
    validated = json.loads((tmp_path / "quickstart" / "DEL-ResetFinetune" / "version_1" / "results.json").read_text())
    assert validated["unlearned"] == pytest.approx(results["unlearned"])

    # Lightning's usual load path rebuilds the module from the class_path blocks the CLI recorded
    loaded = UnlearningModule.load_from_checkpoint(ckpt)
    assert type(loaded.network) is CifarResNet and loaded.network.width == 0.25 and loaded.network.in_channels == 1
    assert type(loaded.localizer) is DEL and loaded.localizer.budget == 0.3
    assert type(loaded.unlearner) is ResetFinetune and loaded.unlearner.lr == 0.015
    assert loaded.references.recipe.epochs == 30
    state = torch.load(ckpt, weights_only=True)["state_dict"]
    for name, value in loaded.network.state_dict().items():
        assert torch.equal(state[f"network.{name}"], value), name


def test_bad_config_values_give_clear_errors(tmp_path):
    config = str(REPO / "configs" / "quickstart.yaml")
    out = unlearn_pl(
        "fit",
        "--config",
        config,
        "--model.init_args.localizer.init_args.budget=1.5",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        cwd=tmp_path,
    )
    # DEL's constructor check, or a restricted type's parse error where the signature has one
    assert out.returncode != 0 and ("budget must be a fraction" in out.stderr or "budget: Not of type" in out.stderr)
    out = unlearn_pl(
        "fit", "--config", config, "--data.init_args.dataset.class_path=unlearn_pl.data.NoSuchData", cwd=tmp_path
    )
    assert out.returncode != 0 and "NoSuchData" in out.stderr
    out = unlearn_pl(
        "fit",
        "--config",
        config,
        "--data.init_args.dataset.class_path=unlearn_pl.data.MNIST",
        f"--data.init_args.dataset.init_args.root={tmp_path / 'nope'}",
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        cwd=tmp_path,
    )
    assert out.returncode != 0 and "train-images-idx3-ubyte" in out.stderr


@pytest.mark.slow
def test_quickstart_under_two_process_ddp_matches_single_process_references(tmp_path, quickstart):
    """``unlearn-pl fit`` with ``devices=2, strategy=ddp``: Lightning re-executes the console
    script for rank 1, which finds the references cached by rank 0; the synced, de-duplicated
    evaluation gives the single-process numbers (the quick start's) for the unchanged reference
    models. One unlearning epoch: the reference rows do not depend on how long it unlearns."""
    single, run = quickstart
    assert single.returncode == 0, single.stderr[-5000:]
    ddp = unlearn_pl(
        "fit",
        "--config",
        QUICKSTART,
        f"--trainer.logger.init_args.save_dir={tmp_path}",
        "--trainer.max_epochs=1",
        "--trainer.devices=2",
        "--trainer.strategy=ddp",
        cwd=tmp_path,
    )
    assert ddp.returncode == 0, ddp.stderr[-5000:]
    for noise in NOISE:
        assert noise not in ddp.stdout + ddp.stderr, noise
    one = json.loads((run / "results.json").read_text())
    two = json.loads((tmp_path / "quickstart" / "DEL-ResetFinetune" / "version_0" / "results.json").read_text())
    for model in ("original", "oracle"):
        for metric in ("retain_acc", "forget_acc", "val_acc", "test_acc", "retain_loss", "forget_loss", "test_loss"):
            assert two[model][metric] == pytest.approx(one[model][metric], abs=1e-6), (model, metric)
    assert two["unlearned"]["forget_acc"] < two["original"]["forget_acc"]


def test_a_run_folder_is_named_after_its_localizer_and_unlearner():
    from jsonargparse import Namespace

    from unlearn_pl.cli.run_folder import run_name

    model = Namespace(
        class_path="unlearn_pl.UnlearningModule",
        init_args=Namespace(
            localizer=Namespace(class_path="unlearn_pl.localizers.DEL"),
            unlearner=Namespace(class_path="unlearn_pl.unlearners.NegGradPlus"),
        ),
    )
    assert run_name("quickstart/{localizer}-{unlearner}", model) == "quickstart/DEL-NegGradPlus"
    model.init_args.localizer = None
    assert run_name("{localizer}-{unlearner}", model) == "Full-NegGradPlus"
    assert run_name("fixed", model) == "fixed"


def test_only_the_subcommand_named_gets_a_parser(monkeypatch, capsys):
    """Each subcommand's parser reads the trainer, model and data signatures: a ``fit`` (every
    study trial) builds only its own; without a subcommand name all are built, for the help."""
    from unlearn_pl.cli import UnlearningCLI

    built: list[str] = []
    prepare = UnlearningCLI._prepare_subcommand_parser

    def recording(self, klass, subcommand, **kwargs):
        built.append(subcommand)
        return prepare(self, klass, subcommand, **kwargs)

    monkeypatch.setattr(UnlearningCLI, "_prepare_subcommand_parser", recording)
    with pytest.raises(SystemExit):
        UnlearningCLI(args=["fit", "--config", str(REPO / "configs" / "quickstart.yaml"), "--print_config"])
    assert built == ["fit"] and "localizer" in capsys.readouterr().out
    built.clear()
    with pytest.raises(SystemExit):
        UnlearningCLI(args=["--help"])
    assert built == list(UnlearningCLI.subcommands()) and "audit" in capsys.readouterr().out

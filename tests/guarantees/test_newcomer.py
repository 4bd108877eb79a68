"""What a new user meets first: honest commands, one-line errors, short help, Lightning's usual
checkpoint loading, TensorBoard, and result files that follow the umask."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import lightning.pytorch as pl
import pytest
import torch
from conftest import FAST_RECIPE, REPO, fast_trainer, tiny_cnn

from unlearn_pl import ReferenceModels, UnlearningDataModule, UnlearningModule
from unlearn_pl.cli import main
from unlearn_pl.cli.errors import condense_parse_error
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.localizers import DEL
from unlearn_pl.metrics import DecisionRegions, SplitAccuracy
from unlearn_pl.models import MLP, ImageClassifier, SmallCNN, cifar_resnet18
from unlearn_pl.unlearners import ResetFinetune
from unlearn_pl.utils.describe import NotDescribable, describe
from unlearn_pl.utils.io import atomic_write, write_json, write_text

QUICKSTART = str(REPO / "configs" / "quickstart.yaml")


@pytest.fixture(autouse=True)
def _bare_argv(monkeypatch):
    monkeypatch.setattr(sys, "argv", ["unlearn-pl"])  # pytest's own arguments are not the CLI's


def cli(*args: str, capsys) -> tuple[int, str, str]:
    """Run ``unlearn-pl *args`` in this process: (exit status, stdout, stderr)."""
    try:
        main(list(args))
        status = 0
    except SystemExit as e:
        status = e.code if isinstance(e.code, int) else 1
    out = capsys.readouterr()
    return status, out.out, out.err


# ---------------------------------------------------------------- command line
@pytest.mark.parametrize("subcommand", ["validate", "test"])
def test_validate_without_a_checkpoint_is_refused_before_any_work(tmp_path, capsys, subcommand):
    status, out, err = cli(subcommand, "--config", QUICKSTART, capsys=capsys)
    assert status == 2
    assert f"`unlearn-pl {subcommand}` evaluates unlearned weights: pass --ckpt_path" in err
    assert "unlearned" not in out and not (tmp_path / "runs").exists()  # no table, no run folder


def test_no_automatic_optimizer_arguments(capsys):
    """Lightning's --optimizer would silently replace the unlearner's SGD and schedule."""
    status, _, err = cli("fit", "--config", QUICKSTART, "--optimizer", "Adam", "--optimizer.lr", "0.1", capsys=capsys)
    assert status == 2 and "unrecognized arguments: --optimizer" in err
    status, out, err = cli("fit", "--config", QUICKSTART, "--print_config", capsys=capsys)
    assert status == 0, err
    assert "optimizer:" not in out and "lr_scheduler:" not in out and "unlearner:" in out


@pytest.mark.parametrize(
    ("argument", "message"),
    [
        # rejected by the restricted type in the signature while parsing
        ("--model.init_args.network.init_args.width=-1", "model > network > width: Not of type NetworkWidth"),
        ("--model.init_args.network.init_args.num_classes=0", "num_classes: Not of type PositiveInt"),
        (
            "--model.init_args.metrics=[{class_path: unlearn_pl.metrics.LossAttack, init_args: {n_splits: 1}}]",
            "n_splits: Not of type IntAtLeastTwo",
        ),
        (
            "--model.init_args.metrics=[{class_path: DecisionRegions, init_args: {num_planes: 0}}]",
            "num_planes: Not of type PositiveInt",
        ),
        # rejected by a constructor's own check (an instantiation error)
        (
            "--model.init_args.metrics=[{class_path: MIAEfficacy, init_args: {features: [nope]}}]",
            "ValueError: features must be one or more of",
        ),
        # DEL's budget: by its constructor, or by a restricted type where the signature has one
        ("--model.init_args.localizer.init_args.budget=1.5", "budget"),
    ],
)
def test_a_bad_value_prints_one_line(capsys, argument, message):
    status, _, err = cli("fit", "--config", QUICKSTART, argument, capsys=capsys)
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Seed set to")]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], err[-3000:]


def test_debug_switch_shows_the_traceback(monkeypatch):
    monkeypatch.setenv("JSONARGPARSE_DEBUG", "true")
    with pytest.raises(ValueError, match="features must be one or more of"):
        main(
            [
                "fit",
                "--config",
                QUICKSTART,
                "--model.init_args.metrics=[{class_path: MIAEfficacy, init_args: {features: [nope]}}]",
            ]
        )


def test_model_help_lists_what_fits(capsys):
    status, out, err = cli("fit", "--model.help", "unlearn_pl.UnlearningModule", capsys=capsys)
    assert status == 0, err
    text = " ".join(out.split())
    assert len(out.splitlines()) < 120  # was 778: every torch module listed as a network
    assert "unlearn_pl.models.CifarResNet" in text and "cifar_resnet18" in text
    assert "torch.nn.Linear" not in text and "torchmetrics" not in text
    metrics_help = text[text.index("--model.metrics.help") : text.rindex("--model.report")]
    assert "unlearn_pl.metrics.LossAttack" in metrics_help
    assert "unlearn_pl.localizers" not in metrics_help and "unlearn_pl.unlearners" not in metrics_help


def _help_of(option: str, help_text: str) -> str:
    """The help entry of ``option`` in ``--help`` output printed without line wrapping."""
    start = help_text.index(f"\n  {option}")
    end = help_text.index("\n  --", start + 1)
    return help_text[start:end]


def test_trainer_callbacks_help_lists_only_trainer_callbacks(capsys, monkeypatch):
    """Localizers and unlearners are Lightning callbacks, but the module runs them: they are
    passed as --model.init_args.localizer/unlearner, not listed among the trainer's callbacks."""
    monkeypatch.setenv("COLUMNS", "10000")  # argparse wraps at the terminal width; one line per entry
    status, out, err = cli("fit", "--help", capsys=capsys)
    assert status == 0, err
    callbacks = _help_of("--trainer.callbacks CALLBACKS,", out)
    assert "lightning.pytorch.callbacks.ModelCheckpoint" in callbacks
    assert "unlearn_pl.metrics.LossAttack" in callbacks  # evaluation callbacks work as trainer callbacks
    for name in ("unlearn_pl.localizers", "unlearn_pl.unlearners", "DEL", "ResetFinetune", "SCRUB"):
        assert name not in callbacks, name


@pytest.mark.parametrize(
    ("argument", "kind", "right_argument"),
    [
        ("--trainer.callbacks=unlearn_pl.localizers.DEL", "a localizer", "--model.init_args.localizer"),
        (
            "--trainer.callbacks=[{class_path: lightning.pytorch.callbacks.LearningRateMonitor}, "
            "{class_path: unlearn_pl.unlearners.ResetFinetune}]",
            "an unlearner",
            "--model.init_args.unlearner",
        ),
    ],
)
def test_a_localizer_or_unlearner_among_trainer_callbacks_is_refused(capsys, argument, kind, right_argument):
    status, out, err = cli("fit", "--config", QUICKSTART, argument, capsys=capsys)
    assert status == 2
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("Seed set to")]
    assert len(lines) == 1 and lines[0].startswith("error: --trainer.callbacks"), err[-3000:]
    assert kind in lines[0] and right_argument in lines[0]
    assert "unlearned" not in out  # refused before any training


def test_a_localizer_among_metrics_is_refused(capsys):
    status, _, err = cli(
        "fit",
        "--config",
        QUICKSTART,
        "--model.init_args.metrics=[{class_path: unlearn_pl.localizers.DEL}]",
        capsys=capsys,
    )
    assert status == 2 and "does not correspond to a subclass of EvaluationCallback" in err


def test_any_module_is_still_an_image_classifier():
    assert issubclass(torch.nn.Sequential, ImageClassifier) and isinstance(torch.nn.Linear(2, 2), ImageClassifier)
    assert not issubclass(int, ImageClassifier)


@pytest.mark.parametrize(
    "build",
    [
        lambda: cifar_resnet18(width=0),
        lambda: SmallCNN(num_classes=0),
        lambda: MLP(hidden=(0,)),
        lambda: SmallCNN(in_channels=1.5),
    ],
)
def test_models_check_their_arguments_from_python(build):
    with pytest.raises(ValueError, match="must be"):
        build()


# ---------------------------------------------------------------- Python path
def fit_from_python(folder: Path) -> tuple[UnlearningModule, pl.Trainer, Path]:
    """A module fit and validated from Python as the README does, with a TensorBoard logger and
    its own model cache in ``folder``: (module, trainer, unlearned checkpoint)."""
    from lightning.pytorch.loggers import TensorBoardLogger

    pl.seed_everything(0)
    dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=64)
    module = UnlearningModule(
        network=tiny_cnn(),
        localizer=DEL(budget=0.3),
        unlearner=ResetFinetune(lr=0.015),
        references=ReferenceModels(recipe=FAST_RECIPE, cache_dir=folder / "cache"),
        metrics=[SplitAccuracy(), DecisionRegions(num_planes=1, resolution=4, plot_resolution=8)],
    )
    module.prepare_models(dm)
    logger = TensorBoardLogger(folder / "tb", name="run")
    trainer = fast_trainer(folder, logger=logger, enable_model_summary=True, log_every_n_steps=5)
    trainer.fit(module, datamodule=dm)
    trainer.validate(module, datamodule=dm, verbose=False)
    ckpt = folder / "unlearned.ckpt"
    trainer.save_checkpoint(ckpt)
    return module, trainer, ckpt


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[UnlearningModule, pl.Trainer, Path, Path]:
    """One run of :func:`fit_from_python` for the tests of this module that read its results (one
    per pytest-xdist worker that runs them): (module, trainer, checkpoint, its folder)."""
    folder = tmp_path_factory.mktemp("python_run")
    return (*fit_from_python(folder), folder)


def test_python_path_prints_no_spurious_warnings(tmp_path, capfd):
    fit_from_python(tmp_path)  # its own run, so that its whole output is captured
    captured = capfd.readouterr()
    output = captured.out + captured.err
    assert "will override existing callbacks" not in output
    assert "Total FLOPs: 0" not in output and "Total FLOPs" in output  # the summary knows the input size
    assert "was called before the ``update`` method" not in output


#: The README's Python example at digits scale: three trainers (original, oracle, unlearning),
#: each with the default logger and checkpointing, the settings under which Lightning advertises.
PYTHON_EXAMPLE = """
import lightning.pytorch as pl
from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.localizers import DEL
from unlearn_pl.models import SmallCNN
from unlearn_pl.unlearners import ResetFinetune

pl.seed_everything(0)
dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=64)
module = UnlearningModule(
    network=SmallCNN(num_classes=10, in_channels=1, width=8),
    localizer=DEL(budget=0.3),
    unlearner=ResetFinetune(lr=0.015),
    references=ReferenceModels(recipe=TrainingRecipe(epochs=1, batch_size=64, accelerator="cpu")),
)
module.prepare_models(dm)
trainer = pl.Trainer(max_epochs=1, accelerator="cpu", enable_progress_bar=False)
trainer.fit(module, datamodule=dm)
"""


def test_python_path_prints_no_lightning_tips(tmp_path):
    """Lightning has no setting for its litlogger/litmodels tips; importing unlearn_pl drops
    exactly those lines. A fresh process, so no earlier CLI call has installed the filter."""
    import subprocess

    (tmp_path / "example.py").write_text(PYTHON_EXAMPLE)
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    run = subprocess.run(
        [sys.executable, "example.py"],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stdout[-4000:]
    assert "💡 Tip" not in run.stdout
    assert "GPU available:" in run.stdout  # Lightning's other messages on the same logger still pass
    assert (tmp_path / "lightning_logs" / "version_0" / "checkpoints").is_dir()  # the litmodels tip's case


def test_the_tip_filter_drops_only_the_advertisements():
    import logging

    from unlearn_pl.utils.lightning_tips import DropLightningTips

    def passes(message: str) -> bool:
        return DropLightningTips().filter(logging.LogRecord("x", logging.INFO, "f", 1, message, None, None))

    assert not passes(
        "💡 Tip: For seamless cloud logging and experiment tracking, try installing "
        "[litlogger](https://pypi.org/project/litlogger/) to enable LitLogger, …"
    )
    assert not passes(
        "💡 Tip: For seamless cloud uploads and versioning, try installing "
        "[litmodels](https://pypi.org/project/litmodels/) to enable LitModelCheckpoint, …"
    )
    for other in (
        "GPU available: False, used: False",
        "💡 Tip: use a smaller learning rate",
        "`Trainer.fit` stopped: `max_epochs=1` reached.",
        "litlogger is not installed",
    ):
        assert passes(other), other


def test_load_from_checkpoint_of_a_python_run(fitted):
    module, _, ckpt, _ = fitted
    loaded = UnlearningModule.load_from_checkpoint(ckpt)
    assert type(loaded.network) is SmallCNN and loaded.network.width == 8
    for name, value in module.network.state_dict().items():
        assert torch.equal(loaded.network.state_dict()[name], value), name
    assert type(loaded.localizer) is DEL and loaded.localizer.budget == 0.3
    assert type(loaded.unlearner) is ResetFinetune and loaded.unlearner.lr == 0.015
    assert loaded.references.recipe == FAST_RECIPE
    assert [type(m) for m in loaded.metrics] == [SplitAccuracy, DecisionRegions]
    assert loaded.metrics[1].resolution == 4


def test_an_undescribable_part_is_passed_to_load_from_checkpoint(tmp_path):
    class Opaque(torch.nn.Module):  # keeps no attribute for its constructor argument
        def __init__(self, hidden: int = 4) -> None:
            super().__init__()
            self.body = torch.nn.Linear(64, hidden)

    with pytest.raises(NotDescribable, match="hidden"):
        describe(Opaque())
    module = UnlearningModule(network=Opaque())
    assert "network" not in module.hparams and module.hparams["localizer"] is None


def test_region_plots_and_metrics_reach_tensorboard(fitted):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _, trainer, _, _ = fitted
    events = EventAccumulator(trainer.logger.log_dir, size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    tags = events.Tags()
    assert "regions/forget_plane_0" in tags["images"]
    assert {"unlearned/forget_acc", "oracle/test_acc", "unlearned/region_change"} <= set(tags["scalars"])


def test_result_files_follow_the_umask(fitted):
    _, trainer, _, folder = fitted
    run = Path(trainer.logger.log_dir)
    written = [run / "results.csv", run / "results.json", run / "split.json", *(folder / "cache").glob("*.pt")]
    assert len(written) == 5  # the original's and the oracle's cache files
    for path in written:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~_umask(), path


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_atomic_writes_follow_the_umask(tmp_path, umask):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        write_text(tmp_path / "b.csv", "x\n")
        atomic_write(tmp_path / "c.pt", lambda tmp: torch.save({"x": torch.zeros(1)}, tmp))
    finally:
        os.umask(old)
    for name in ("a.json", "b.csv", "c.pt"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask, name


def test_a_replaced_file_keeps_its_mode(tmp_path):
    path = tmp_path / "results.csv"
    path.write_text("old\n")
    path.chmod(0o640)
    write_text(path, "new\n")
    assert path.read_text() == "new\n" and stat.S_IMODE(path.stat().st_mode) == 0o640


def test_condense_parse_error_keeps_the_path_and_the_reason():
    message = """Parser key "model":
  Does not validate against any of the Union subtypes
  Subtypes: [<class 'unlearn_pl.module.UnlearningModule'>, <class 'NoneType'>]
  Errors:
    - Problem with given class_path 'unlearn_pl.UnlearningModule':
        Parser key "network":
          Problem with given class_path 'unlearn_pl.models.cifar_resnet18':
            Parser key "width":
              Not of type PositiveFloat: -1 does not conform to restriction v>0
    - Expected a <class 'NoneType'>
  Given value type: <class 'jsonargparse._util.NestedArg'>"""
    assert condense_parse_error(message) == (
        "model > network > width: Not of type PositiveFloat: -1 does not conform to restriction v>0"
    )
    assert (
        condense_parse_error("unrecognized arguments: --optimizer Adam") == "unrecognized arguments: --optimizer Adam"
    )


def test_print_config_shows_the_default_metrics_not_null(capsys):
    status, out, err = cli("fit", "--config", QUICKSTART, "--print_config", capsys=capsys)
    assert status == 0, err
    metrics = out[out.index("  metrics:") :]
    assert "metrics: null" not in out
    for name in ("SplitAccuracy", "TugOfWar", "LossAttack", "MIAEfficacy"):
        assert f"class_path: unlearn_pl.metrics.{name}" in metrics

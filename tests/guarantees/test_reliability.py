"""Reliability: diverged models, unsafe data files, degenerate batches and runs, resume and cache
mismatches, data validation and concurrent run folders each fail loudly (or recover) instead of
producing a plausible-looking result.

Each test fails without the check it exercises. Data is scikit-learn's digits or a few fake files.
"""

from __future__ import annotations

import json
import pickle
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import FAST_RECIPE, fast_trainer, tiny_cnn, tiny_mlp, write_config
from lightning.pytorch.callbacks import ModelCheckpoint

from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
from unlearn_pl.cli import UnlearningCLI
from unlearn_pl.data import (
    CIFAR10,
    ClassForget,
    DatasetReader,
    Digits,
    FashionMNIST,
    ImageFolder,
    IndexForget,
    RandomForget,
)
from unlearn_pl.data.datasets import ArrayDataset
from unlearn_pl.localizers import Random
from unlearn_pl.references import load_weights
from unlearn_pl.unlearners import Finetune, NegGradPlus, NoOp, ResetFinetune
from unlearn_pl.utils.errors import DivergenceError


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """LightningCLI(args=...) warns when sys.argv also holds arguments (here: pytest's)."""
    monkeypatch.setattr("sys.argv", ["unlearn-pl"])


@pytest.fixture
def cli_raises(monkeypatch: pytest.MonkeyPatch) -> None:
    """Let the CLI raise the exception itself rather than print it as one line and exit, so a
    test can check its type and whole message (jsonargparse's debug switch)."""
    monkeypatch.setenv("JSONARGPARSE_DEBUG", "true")


def raises(exc: type[Exception], *fragments: str):
    """``pytest.raises`` that also requires every fragment (plain text) in the message."""
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


class DigitsWith(DatasetReader):
    """Digits with some labels or pixels replaced, to feed bad data through the data module."""

    num_classes, in_channels = 10, 1

    def __init__(self, split: str = "train", label: int | None = None, nan_pixel: bool = False) -> None:
        self.split, self.label, self.nan_pixel = split, label, nan_pixel

    def load(self, split):
        data = Digits().load(split)
        images, targets = data.images.clone(), data.targets.clone()
        if split == self.split:
            if self.label is not None:
                targets[7] = self.label
            if self.nan_pixel:
                images[5, 0, 3, 3] = float("nan")
        return ArrayDataset(images, targets, f"digits-with-{split}")


# ------------------------------------------------------------------ 1. diverged models
def test_a_diverged_reference_model_fails_and_is_never_cached(digits_dm, tmp_path):
    refs = ReferenceModels(
        recipe=TrainingRecipe(epochs=1, lr=1e6, batch_size=64, accelerator="cpu"),
        oracle=False,
        cache_dir=str(tmp_path / "cache"),
    )
    with raises(ValueError, "original model", "lr=1000000.0", "NaN or infinite", "learning rate"):
        refs.prepare(tiny_mlp(), digits_dm())
    assert not list((tmp_path / "cache").glob("*.pt")), "a diverged model must not be cached"


def test_a_diverged_unlearning_run_fails_instead_of_reporting(prepared_module, tmp_path):
    module, dm = prepared_module(unlearner=Finetune(lr=1e6), oracle=False, metrics=[], report=False)
    # A class of its own (a ValueError too), so that a study can tell a setting that diverges from an error.
    with raises(DivergenceError, "after unlearning with Finetune", "NaN or infinite", "learning rate"):
        fast_trainer(tmp_path).fit(module, datamodule=dm)
    assert issubclass(DivergenceError, ValueError)


def test_the_cli_exits_with_an_error_for_a_diverged_run(tmp_path, cli_raises):
    config = write_config(
        tmp_path,
        **{"model.init_args.unlearner": {"class_path": "unlearn_pl.unlearners.Finetune", "init_args": {"lr": 1e6}}},
    )
    with raises(ValueError, "after unlearning with Finetune"):
        UnlearningCLI(args=["fit", "--config", str(config)])
    assert not list((tmp_path / "runs").rglob("results*.json")), "no results table of a diverged model"


def test_nan_pixels_are_refused_at_setup():
    with raises(ValueError, "train split", "image 5", "NaN or infinite"):
        UnlearningDataModule(DigitsWith(nan_pixel=True)).setup()


@pytest.mark.parametrize("where", ["original", "ckpt_path"])
def test_non_finite_weights_are_refused_when_loaded(prepared_module, tmp_path, where):
    state = tiny_mlp().state_dict()
    state["net.1.weight"][0, 0] = float("nan")
    if where == "original":
        path = tmp_path / "nan.pt"
        torch.save(state, path)
        with raises(ValueError, str(path), "NaN or infinite", "net.1.weight"):
            load_weights(tiny_mlp(), path)
        return
    module, dm = prepared_module(oracle=False, metrics=[], report=False)
    path = tmp_path / "nan.ckpt"
    torch.save(
        {
            "pytorch-lightning_version": "2.6.0",
            "epoch": 0,
            "global_step": 1,
            "state_dict": {f"network.{k}": v for k, v in state.items()},
        },
        path,
    )
    with raises(ValueError, "checkpoint (--ckpt_path)", "NaN or infinite"):
        fast_trainer(tmp_path).validate(module, datamodule=dm, ckpt_path=str(path), verbose=False)


# ------------------------------------------------------------------ 2. data files never run code
class _Payload:
    """Unpickling this calls ``Path.touch`` on the marker: the kind of call a crafted file makes."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_crafted_cifar_batch_does_not_run_code(tmp_path):
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    marker = tmp_path / "payload-ran"
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        batch = {b"data": np.zeros((2, 3072), np.uint8), b"labels": [0, 1]}
        if name == "data_batch_3":
            batch[b"extra"] = _Payload(marker)
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
    with raises(ValueError, "data_batch_3", "refusing to load global", "numpy arrays and builtins"):
        CIFAR10(str(tmp_path)).load("train")
    assert not marker.exists(), "the payload ran"
    assert len(CIFAR10(str(tmp_path)).load("test")) == 2  # the honest batches still load


@pytest.mark.parametrize("protocol", [2, 4, 5])
def test_numpy_arrays_load_through_the_restricted_unpickler(tmp_path, protocol):
    """Python 2 era (the official files), and the protocols a user's re-saved batch may use."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    data = np.arange(2 * 3072).reshape(2, 3072).astype(np.uint8)
    (folder / "test_batch").write_bytes(pickle.dumps({b"data": data, b"labels": [3, 4]}, protocol=protocol))
    ds = CIFAR10(str(tmp_path)).load("test")
    assert ds.targets.tolist() == [3, 4] and ds.images.shape == (2, 3, 32, 32)


# ------------------------------------------------------------------ 3. a last batch of one with BatchNorm
def test_a_last_batch_of_one_example_does_not_stop_a_batchnorm_run(digits_dm, tmp_path):
    dm = digits_dm()
    dm.setup()
    n = len(dm.split.retain)
    original = tmp_path / "original.pt"
    torch.save(tiny_cnn().state_dict(), original)
    # retain = (n - 1) + 1: the training loader and the BatchNorm pass would both end with one example
    dm = digits_dm(batch_size=n - 1, eval_batch_size=n - 1)
    module = UnlearningModule(
        tiny_cnn(),
        unlearner=ResetFinetune(),
        metrics=[],
        report=False,
        references=ReferenceModels(original=str(original), oracle=False),
    )
    trainer = fast_trainer(tmp_path, max_epochs=1)
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 1  # the one-example batch was dropped, the full one trained


# ------------------------------------------------------------------ 5. resume under another configuration
def _fit_with_checkpoint(digits_dm, tmp_path: Path, dm_kwargs: dict, localizer, ckpt_path: str | None = None):
    module = UnlearningModule(
        tiny_mlp(),
        localizer=localizer,
        unlearner=Finetune(),
        metrics=[],
        report=False,
        references=ReferenceModels(recipe=FAST_RECIPE, oracle=False),
    )
    checkpoint = ModelCheckpoint(dirpath=tmp_path / "ckpt", save_last=True)
    trainer = fast_trainer(
        tmp_path, max_epochs=2 if ckpt_path else 1, enable_checkpointing=True, callbacks=[checkpoint]
    )
    trainer.fit(module, datamodule=digits_dm(**dm_kwargs), ckpt_path=ckpt_path)
    return tmp_path / "ckpt" / "last.ckpt"


@pytest.mark.parametrize("change", ["forget", "localizer"])
def test_resuming_under_another_split_or_localizer_is_refused(digits_dm, tmp_path, change):
    first = dict(forget=ClassForget([8], size=0.05))
    last = _fit_with_checkpoint(digits_dm, tmp_path, first, Random(budget=0.3))
    second, localizer = (
        (dict(forget=ClassForget([3], size=0.05)), Random(budget=0.3))
        if change == "forget"
        else (first, Random(budget=0.05))
    )
    what = "split" if change == "forget" else "localizer settings"
    shown = ("checkpoint '", "this run '") if change == "forget" else ("'budget': 0.3", "'budget': 0.05")
    with raises(ValueError, f"another {what}", *shown, "config.yaml"):
        _fit_with_checkpoint(digits_dm, tmp_path, second, localizer, ckpt_path=str(last))
    # the same configuration resumes
    _fit_with_checkpoint(digits_dm, tmp_path, first, Random(budget=0.3), ckpt_path=str(last))


def test_the_recorded_run_loads_weights_only(tmp_path):
    """Values parsed by the CLI are jsonargparse types (float subclasses) that torch's weights-only
    unpickler refuses: the checkpoint must hold them as plain numbers."""
    from jsonargparse.typing import PositiveFloat

    module = UnlearningModule(tiny_mlp(), localizer=Random(budget=PositiveFloat(0.3)), metrics=[], report=False)
    checkpoint: dict = {}
    module.on_save_checkpoint(checkpoint)
    torch.save(checkpoint, tmp_path / "run.ckpt")
    loaded = torch.load(tmp_path / "run.ckpt", weights_only=True)
    from unlearn_pl.references.checkpoints import RUN_KEY

    assert loaded[RUN_KEY]["localizer"]["init_args"]["budget"] == 0.3


# ------------------------------------------------------------------ 6, 9. the reference-model cache
@pytest.fixture
def cached(digits_dm, tmp_path):
    refs = ReferenceModels(
        recipe=TrainingRecipe(epochs=1, batch_size=64, accelerator="cpu"), cache_dir=str(tmp_path / "cache")
    )
    dm = digits_dm()
    nets = refs.prepare(tiny_mlp(), dm)
    return refs, dm, nets


def _same(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


def test_a_cache_entry_under_another_key_is_not_trusted(cached):
    refs, dm, nets = cached
    oracle_path = refs.cache_path(tiny_mlp(), dm, "oracle")
    oracle_path.write_bytes(refs.cache_path(tiny_mlp(), dm, "original").read_bytes())  # the original, renamed
    with pytest.warns(UserWarning, match="saved under key 'original-"):
        again = refs.prepare(tiny_mlp(), dm)
    assert _same(again["oracle"], nets["oracle"]) and not _same(again["oracle"], nets["original"])


def test_a_non_finite_cache_entry_is_retrained(cached):
    refs, dm, nets = cached
    path = refs.cache_path(tiny_mlp(), dm, "original")
    entry = torch.load(path, weights_only=True)
    entry["state_dict"]["net.1.weight"][0, 0] = float("inf")
    torch.save(entry, path)
    with pytest.warns(UserWarning, match="NaN or infinite"):
        again = refs.prepare(tiny_mlp(), dm)
    assert _same(again["original"], nets["original"])


def test_a_cache_entry_that_is_a_folder_is_retrained(cached):
    refs, dm, nets = cached
    path = refs.cache_path(tiny_mlp(), dm, "original")
    path.unlink()
    path.mkdir()
    with pytest.warns(UserWarning) as warned:
        again = refs.prepare(tiny_mlp(), dm)
    messages = " ".join(str(w.message) for w in warned)
    assert "not a file" in messages and "continuing without caching" in messages
    assert _same(again["original"], nets["original"])


def test_an_unwritable_cache_warns_and_keeps_the_trained_model(digits_dm, tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    refs = ReferenceModels(
        recipe=TrainingRecipe(epochs=1, batch_size=64, accelerator="cpu"),
        oracle=False,
        cache_dir=str(blocker / "cache"),
    )
    with pytest.warns(UserWarning, match="Could not cache the original model.*continuing without caching"):
        nets = refs.prepare(tiny_mlp(), digits_dm())
    assert set(nets) == {"original"}


# ------------------------------------------------------------------ 7. data checked at setup, files named
@pytest.mark.parametrize("label", [10, -1, 255])
@pytest.mark.parametrize("split", ["train", "test"])
def test_labels_outside_the_classes_are_refused_at_setup(split, label):
    with raises(ValueError, f"{split} split", f"label {label} at index 7", "0..9", "num_classes=10"):
        UnlearningDataModule(DigitsWith(split, label=label)).setup()


def test_a_truncated_gzip_file_is_named(tmp_path):
    import gzip

    labels = (0x0801).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(3)
    whole = gzip.compress(labels)
    (tmp_path / "train-labels-idx1-ubyte.gz").write_bytes(whole[: len(whole) // 2])
    header = (0x0803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (3, 2, 2))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + bytes(12))
    with raises(ValueError, "train-labels-idx1-ubyte.gz", "truncated", "download it again"):
        FashionMNIST(root=str(tmp_path)).load("train")


def _image_folder(root: Path, classes=("a", "b")) -> None:
    from PIL import Image

    for split in ("train", "val"):
        for cls in classes:
            (root / split / cls).mkdir(parents=True)
            for i in range(2):
                Image.fromarray(np.full((4, 4, 3), 40 * i, np.uint8)).save(root / split / cls / f"{i}.png")


def test_an_undecodable_image_is_named_at_setup(tmp_path):
    _image_folder(tmp_path)
    (tmp_path / "train" / "b" / "broken.png").write_bytes(b"not an image at all")
    with raises(ValueError, "broken.png", "not a readable image"):
        UnlearningDataModule(ImageFolder(str(tmp_path), image_size=4)).setup()
    unchecked = ImageFolder(str(tmp_path), image_size=4, check_files=False).load("train")
    broken = [i for i, (path, _) in enumerate(unchecked.samples) if path.endswith("broken.png")][0]
    with raises(ValueError, "cannot decode image", "broken.png"):
        unchecked[broken]


# ------------------------------------------------------------------ 8. manifests and selectors
def _manifest(tmp_path: Path, **changes) -> Path:
    path = tmp_path / "split.json"
    UnlearningDataModule(Digits(), manifest=str(path)).setup()
    d = json.loads(path.read_text())
    d.update(changes)
    path.write_text(json.dumps(d))
    return path


def test_a_manifest_overriding_the_configured_selector_says_so(tmp_path):
    path = _manifest(tmp_path)
    with pytest.warns(UserWarning, match=r"configured forget, seed are ignored.*RandomForget.*0\.1.*0\.3"):
        UnlearningDataModule(Digits(), RandomForget(0.3), seed=4, manifest=str(path)).setup()


def test_non_integer_manifest_indices_are_refused(tmp_path):
    d = json.loads(_manifest(tmp_path).read_text())
    path = _manifest(tmp_path, forget=[0.5, *d["forget"][1:]])
    with raises(ValueError, str(path), "'forget'", "non-integer indices [0.5]"):
        UnlearningDataModule(Digits(), manifest=str(path)).setup()


def test_manifest_relabels_outside_the_classes_are_refused(tmp_path):
    d = json.loads(_manifest(tmp_path).read_text())
    path = _manifest(tmp_path, relabels={str(d["forget"][0]): 10})
    with raises(ValueError, str(path), "relabels", ": 10}", "0..9"):
        UnlearningDataModule(Digits(), manifest=str(path)).setup()


def test_manifest_num_train_must_match_the_data(tmp_path):
    path = _manifest(tmp_path, num_train=5000)
    with raises(ValueError, str(path), "num_train=5000", "1347 examples"):
        UnlearningDataModule(Digits(), manifest=str(path)).setup()


def test_a_json_list_is_not_a_manifest(tmp_path):
    path = tmp_path / "split.json"
    path.write_text("[1, 2, 3]")
    with raises(ValueError, str(path), "not a split manifest", "found a JSON list"):
        UnlearningDataModule(Digits(), manifest=str(path)).setup()


def test_float_indices_in_a_forget_file_are_refused(tmp_path):
    path = tmp_path / "forget.json"
    path.write_text("[3, 4.5, 9]")
    with raises(ValueError, "forget.json", "non-integer indices [4.5]"):
        UnlearningDataModule(Digits(), IndexForget(file=str(path))).setup()
    path.write_text("3\n4.5\n")
    with raises(ValueError, "forget.json", "one integer index per line"):
        UnlearningDataModule(Digits(), IndexForget(file=str(path))).setup()


@pytest.mark.parametrize("size", [float("nan"), float("inf")])
def test_a_non_finite_forget_size_names_size(size):
    with raises(ValueError, f"size={size!r}"):
        UnlearningDataModule(Digits(), RandomForget(size)).setup()


# ------------------------------------------------------------------ 10. --ckpt_path last
def test_ckpt_path_last_gets_the_checks_of_a_file(tmp_path, cli_raises):
    checkpoints = tmp_path / "runs" / "tiny" / "version_0" / "checkpoints"
    checkpoints.mkdir(parents=True)
    (checkpoints / "last.ckpt").write_bytes(pickle.dumps(_Payload(tmp_path / "payload-ran")))
    config = write_config(tmp_path)
    with pytest.raises(ValueError) as error:
        UnlearningCLI(
            args=["fit", "--config", str(config), "--trainer.logger.init_args.version=0", "--ckpt_path", "last"]
        )
    message = str(error.value)
    assert "last.ckpt" in message and "weights_only=True" in message, message
    assert "False" not in message and "if you trust" not in message and "safe_globals" not in message, message
    assert not (tmp_path / "payload-ran").exists()


# ------------------------------------------------------------------ 11. degenerate runs
def test_a_fit_without_a_training_step_is_refused(prepared_module, tmp_path):
    module, dm = prepared_module(unlearner=ResetFinetune(), oracle=False, metrics=[], report=False)
    with raises(ValueError, "without a single training step", "max_epochs=0", "ResetFinetune unlearned nothing"):
        fast_trainer(tmp_path, max_epochs=0).fit(module, datamodule=dm)


def test_noop_trains_no_epoch_whatever_the_trainer_says_and_scores_the_original(prepared_module, tmp_path):
    """The do-nothing unlearner is not refused as a fit without a step: it is one on purpose, and
    the network it leaves is the original's, weight for weight."""
    module, dm = prepared_module(unlearner=NoOp(), oracle=False, metrics=[], report=False)
    original = module.reference("original").state_dict()
    trainer = fast_trainer(tmp_path, max_epochs=3)
    trainer.fit(module, datamodule=dm)
    assert trainer.global_step == 0 and trainer.current_epoch == 0
    state = module.network.state_dict()
    assert state.keys() == original.keys() and all(
        torch.equal(state[k], original[k].to(state[k].device)) for k in state
    )


def test_a_one_class_image_folder_is_refused(tmp_path):
    _image_folder(tmp_path, classes=("only",))
    with raises(ValueError, "num_classes=1", "at least 2 classes"):
        UnlearningDataModule(ImageFolder(str(tmp_path), image_size=4)).setup()


# ------------------------------------------------------------------ 12. concurrent runs in one folder
def test_a_run_folder_taken_since_the_listing_is_not_shared(tmp_path, monkeypatch):
    """Simulates another run creating version_0 between Lightning's listing and its first write."""
    from lightning.pytorch.loggers import CSVLogger

    taken = tmp_path / "runs" / "tiny" / "version_0"
    taken.mkdir(parents=True)
    monkeypatch.setattr(CSVLogger, "_get_next_version", lambda self: 0)
    cli = UnlearningCLI(args=["fit", "--config", str(write_config(tmp_path))])
    assert Path(cli.trainer.log_dir) == tmp_path / "runs" / "tiny" / "version_1"
    assert list(taken.iterdir()) == [], "the other run's folder was written to"


# ------------------------------------------------------------------ data flow and the global batch
def test_the_data_module_serves_what_the_module_asks_for(prepared_module, tmp_path):
    import unlearn_pl.data as data_pkg

    source = "".join(p.read_text() for p in Path(data_pkg.__file__).parent.glob("*.py"))
    assert "lightning_module" not in source, "the data module reads the model"
    module, dm = prepared_module(unlearner=NegGradPlus(), oracle=False, metrics=[], report=False)
    fast_trainer(tmp_path, max_steps=1).fit(module, datamodule=dm)
    loader = dm.train_dataloader()
    assert set(next(iter(loader))[0]) == {"retain", "forget"}


def test_served_splits_modes_and_batch_sizes():
    from unlearn_pl.data.sequential import SequentialLoader

    dm = UnlearningDataModule(Digits(), batch_size=64, global_batch=True)
    dm.setup()
    dm.serve(("forget", "retain"), "sequential", {"forget": 16})
    loader = dm.train_dataloader()
    assert isinstance(loader, SequentialLoader)
    first = next(iter(loader))
    assert list(first) == ["forget"] and len(first["forget"][0]) == 16
    with raises(ValueError, "unknown training splits ['test']"):
        dm.serve(("retain", "test"))


def test_global_batch_divides_the_batch_across_processes():
    dm = UnlearningDataModule(Digits(), batch_size=64, global_batch=True)
    dm.setup()
    one = next(iter(dm.unlearning_dataloader(("retain",))))[0]["retain"][0]
    shards = [next(iter(dm.unlearning_dataloader(("retain",), num_replicas=2, rank=r)))[0]["retain"][0] for r in (0, 1)]
    assert [len(s) for s in shards] == [32, 32]
    assert sorted(torch.cat(shards).tolist()) == sorted(one.tolist()), "the two halves are the one-process batch"
    assert UnlearningDataModule(Digits(), batch_size=64).per_process_batch_size(2) == 64
    with raises(ValueError, "batch_size=64", "3 processes", "multiple of 3"):
        dm.per_process_batch_size(3)


def test_ddp_without_global_batch_says_what_the_global_batch_is(monkeypatch):
    from types import SimpleNamespace

    import unlearn_pl.data.datamodule as datamodule

    said: list[str] = []
    monkeypatch.setattr(datamodule, "rank_zero_info", said.append)
    dm = UnlearningDataModule(Digits(), batch_size=64)
    dm.trainer = SimpleNamespace(
        world_size=2, global_rank=0, num_devices=2, strategy=SimpleNamespace(root_device=torch.device("cpu"))
    )
    dm.train_dataloader()
    assert any("the global batch is 128" in s and "global_batch=true" in s for s in said), said


@pytest.mark.parametrize("arg,value", [("batch_size", "0"), ("val_fraction", "1.0"), ("num_workers", "-1")])
def test_data_module_ranges_are_checked_by_the_parser(tmp_path, capsys, arg, value):
    with pytest.raises(SystemExit):
        UnlearningCLI(
            args=["validate", "--config", str(write_config(tmp_path)), f"--data.init_args.{arg}", value], run=False
        )
    assert arg in capsys.readouterr().err


# ------------------------------------------------------------------ splits of one example
@pytest.mark.parametrize(
    "forget_size, dm_kwargs",
    [(1, {}), (2, {}), (20, {"train_size": 30, "val_fraction": 0.05})],
    ids=["forget-1", "forget-2", "val-1"],
)
def test_splits_of_one_or_two_examples_are_evaluated(prepared_module, tmp_path, forget_size, dm_kwargs):
    # torchmetrics squeezes a one-element result to a 0-d tensor; the per-example statistics keep their dimension.
    from unlearn_pl.metrics import SplitAccuracy

    module, dm = prepared_module(
        oracle=False,
        metrics=[SplitAccuracy()],
        report=False,
        dm_kwargs={"forget": RandomForget(size=forget_size), **dm_kwargs},
    )
    trainer = fast_trainer(tmp_path)
    trainer.validate(module, datamodule=dm, verbose=False)
    logged = {k.removeprefix("unlearned/"): float(v) for k, v in trainer.callback_metrics.items()}
    assert 0.0 <= logged["forget_acc"] <= 1.0 and 0.0 <= logged["val_acc"] <= 1.0
    if forget_size == 1:
        assert logged["forget_acc"] in (0.0, 1.0)

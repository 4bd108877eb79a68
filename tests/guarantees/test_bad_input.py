"""Bad input → a clear error, nothing lost.

One row per bad input. Each asserts the exception type *and* that the message
names the bad value and what is allowed, so a vague message fails the test. Related, narrower
checks live in ``test_data.py`` (selectors), ``test_references.py`` (``load_weights``) and
``test_cli.py`` (an unknown dataset class, a missing MNIST root, budget through the CLI).
"""

from __future__ import annotations

import json
import re

import pytest
import torch
from conftest import FAST_RECIPE, fast_trainer, tiny_mlp, write_config

from unlearn_pl import ReferenceModels, UnlearningDataModule, UnlearningModule
from unlearn_pl.cli import UnlearningCLI
from unlearn_pl.data import (
    CIFAR10,
    CIFAR100,
    MNIST,
    SVHN,
    ClassForget,
    DatasetReader,
    Digits,
    FashionMNIST,
    ImageFolder,
    IndexForget,
    Mislabeled,
    RandomForget,
)
from unlearn_pl.data.datasets import ArrayDataset
from unlearn_pl.localizers import DEL, Random
from unlearn_pl.models import MLP, SmallCNN
from unlearn_pl.unlearners import Finetune


@pytest.fixture(autouse=True)
def _no_pytest_argv(monkeypatch: pytest.MonkeyPatch) -> None:
    """LightningCLI(args=...) warns when sys.argv also holds arguments (here: pytest's)."""
    monkeypatch.setattr("sys.argv", ["unlearn-pl"])


def raises(exc: type[Exception], *fragments: str):
    """``pytest.raises`` that also requires every fragment (plain text, not a regex) in the message."""
    return pytest.raises(exc, match="(?s)" + "".join(f"(?=.*{re.escape(f)})" for f in fragments))


def setup_dm(**kwargs) -> UnlearningDataModule:
    kwargs.setdefault("dataset", Digits())
    dm = UnlearningDataModule(**kwargs)
    dm.setup()
    return dm


# ------------------------------------------------------------------ data roots
@pytest.mark.parametrize(
    "reader,expected",
    [
        (MNIST, "train-images-idx3-ubyte"),
        (FashionMNIST, "train-images-idx3-ubyte"),
        (CIFAR10, "data_batch_1"),
        (CIFAR100, "'train'"),
        (SVHN, "train_32x32.mat"),
    ],
)
@pytest.mark.parametrize("root_kind", ["missing", "wrong"])
def test_missing_or_wrong_data_root_names_the_root_and_the_expected_files(tmp_path, reader, expected, root_kind):
    root = tmp_path / "nope"
    if root_kind == "wrong":  # a folder that exists but holds something else
        root.mkdir()
        (root / "notes.txt").write_text("not a dataset")
    with raises(FileNotFoundError, str(root), expected):
        setup_dm(dataset=reader(root=str(root)))


def test_image_folder_without_train_and_val_names_the_expected_layout(tmp_path):
    with raises(FileNotFoundError, str(tmp_path / "train"), "<class>/<image>"):
        ImageFolder(root=str(tmp_path))


def test_truncated_idx_file_is_reported_not_reshaped(tmp_path):
    # a Fashion-MNIST download cut short: the header announces 3 images of 28x28, the body has 10 bytes
    header = (0x0803).to_bytes(4, "big") + b"".join(n.to_bytes(4, "big") for n in (3, 28, 28))
    (tmp_path / "train-images-idx3-ubyte").write_bytes(header + bytes(10))
    (tmp_path / "train-labels-idx1-ubyte").write_bytes((0x0801).to_bytes(4, "big") + (3).to_bytes(4, "big") + bytes(3))
    with raises(ValueError, "train-images-idx3-ubyte", "truncated", "[3, 28, 28]", "download it again"):
        FashionMNIST(root=str(tmp_path)).load("train")


# ------------------------------------------------------------------ forget selection
@pytest.mark.parametrize(
    "forget,fragments",
    [
        # out of range: the bad index and the valid range (digits' train split has 1347 examples)
        (IndexForget(indices=[3, 5000]), ["[5000]", "0..1346"]),
        (IndexForget(indices=[-1, 2]), ["[-1]", "0..1346"]),
        (IndexForget(indices=[4, 7, 4]), ["duplicated", "[4]", "may appear once"]),
        (IndexForget(indices=[]), ["empty", "non-empty"]),
        (RandomForget(0.0), ["0.0", "(0, 1]"]),
        (RandomForget(-3), ["-3", "non-empty"]),
        # the forget set may not be the whole training set (what the validation hold-out leaves)
        (RandomForget(1.0), ["retain set is empty", "whole training set"]),
        (ClassForget([3, 12]), ["[12]", "0..9"]),
        (ClassForget([-1]), ["[-1]", "0..9"]),
    ],
    ids=[
        "index-too-large",
        "index-negative",
        "duplicated",
        "empty-list",
        "fraction-zero",
        "count-negative",
        "whole-train-set",
        "unknown-class",
        "negative-class",
    ],
)
def test_bad_forget_selection(forget, fragments):
    with raises(ValueError, *fragments):
        setup_dm(forget=forget)


def test_forget_indices_overlapping_validation_are_named():
    val = setup_dm(seed=0).split.val
    with raises(ValueError, str(val[:2]), "validation set", "not held out"):
        setup_dm(forget=IndexForget(indices=[*val[:2]]), seed=0)


def test_forget_indices_equal_to_the_whole_train_set():
    n = len(Digits().load("train"))
    with raises(ValueError, "whole training set", f"{n} examples"):
        setup_dm(forget=IndexForget(indices=list(range(n))), val_fraction=0.0)


class OneClass(DatasetReader):
    """A degenerate dataset whose every example has label 0."""

    num_classes, in_channels = 1, 1

    def load(self, split):
        return ArrayDataset(torch.zeros(40, 1, 8, 8), torch.zeros(40, dtype=torch.long), f"one-class-{split}")


class OneClassOfTwo(OneClass):
    """Declares two classes, but every example has label 0."""

    num_classes = 2


def test_a_single_class_dataset_is_refused_at_setup():
    """One class: every model is 100% accurate, so a run would report a meaningless success."""
    with raises(ValueError, "OneClass", "num_classes=1", "at least 2 classes"):
        setup_dm(dataset=OneClass(), forget=Mislabeled(0.2))
    with raises(ValueError, "OneClassOfTwo", "only class(es) [0]", "at least 2 classes"):
        setup_dm(dataset=OneClassOfTwo())


def test_mislabeled_with_a_single_class_pool():
    import numpy as np

    with raises(ValueError, "Mislabeled", "at least 2 classes", "num_classes=1", "1 class(es) [0]"):
        Mislabeled(0.2).select(np.arange(40), np.zeros(40, dtype=np.int64), 1, np.random.default_rng(0))


# ------------------------------------------------------------------ localizer arguments
@pytest.mark.parametrize("budget", [0.0, -0.1, 1.5, float("nan")])
@pytest.mark.parametrize("localizer", [DEL, Random])
def test_budget_outside_zero_one(localizer, budget):
    with raises(ValueError, "budget", repr(budget), "(0, 1]"):
        localizer(budget=budget)


@pytest.mark.parametrize("top_h", [0.0, -0.5, 1.01])
def test_top_h_outside_zero_one(top_h):
    with raises(ValueError, "top_h", str(top_h), "(0, 1]"):
        DEL(top_h=top_h)


# ------------------------------------------------------------------ network vs data
def test_network_with_another_number_of_classes_fails_at_setup_naming_both(digits_dm):
    module = UnlearningModule(
        MLP(in_features=64, num_classes=5, hidden=(16,)),
        unlearner=Finetune(),
        references=ReferenceModels(recipe=FAST_RECIPE, oracle=False),
    )
    # before the fix: IndexError "Target 8 is out of bounds" from deep inside reference training
    with raises(ValueError, "outputs 5 classes", "has 10", "num_classes=10"):
        module.prepare_models(digits_dm())


def test_network_with_other_input_channels_fails_at_setup(digits_dm):
    module = UnlearningModule(
        SmallCNN(num_classes=10, in_channels=3, width=4),
        unlearner=Finetune(),
        references=ReferenceModels(recipe=FAST_RECIPE, oracle=False),
    )
    with raises(ValueError, "cannot process", "(1, 8, 8)", "in_channels=1"):
        module.prepare_models(digits_dm())


# ------------------------------------------------------------------ references.original checkpoints
def five_class_mlp() -> MLP:
    return MLP(in_features=64, num_classes=5, hidden=(32,))


@pytest.mark.parametrize("case", ["missing", "corrupt", "other-architecture", "other-num-classes"])
def test_bad_original_checkpoint(digits_dm, tmp_path, case):
    path = tmp_path / "original.pt"
    if case == "corrupt":
        path.write_bytes(b"PK\x03\x04 half a zip file")
    elif case == "other-architecture":
        torch.save(SmallCNN(num_classes=10, in_channels=1, width=4).state_dict(), path)
    elif case == "other-num-classes":
        torch.save(five_class_mlp().state_dict(), path)
    expected = {
        "missing": (FileNotFoundError, [str(path), "does not exist"]),
        "corrupt": (ValueError, [str(path), "corrupt", "weights_only=True"]),
        "other-architecture": (
            ValueError,
            [str(path), "another architecture", "missing in the checkpoint", "not in the network"],
        ),
        # both numbers of classes, side by side
        "other-num-classes": (ValueError, [str(path), "net.3.weight: checkpoint (5, 32), network (10, 32)"]),
    }[case]
    refs = ReferenceModels(recipe=FAST_RECIPE, original=str(path), oracle=False, cache_dir=str(tmp_path / "cache"))
    before = path.read_bytes() if path.exists() else None
    with raises(expected[0], *expected[1]):
        refs.prepare(tiny_mlp(), digits_dm())
    assert (path.read_bytes() if path.exists() else None) == before, "a user's file is never written"


# ------------------------------------------------------------------ the CLI: unknown class_path, --ckpt_path


@pytest.mark.parametrize(
    "where,class_path,named",
    [
        ("model.init_args.localizer", "unlearn_pl.localizers.NoSuchLocalizer", "NoSuchLocalizer"),
        ("model.init_args.unlearner", "unlearn_pl.unlearners.NoSuchUnlearner", "NoSuchUnlearner"),
        ("data.init_args.forget", "no_such_package.Selector", "no_such_package"),  # the missing package
    ],
)
def test_unknown_class_path_in_a_config_is_named(tmp_path, capsys, where, class_path, named):
    config = write_config(tmp_path, **{where: {"class_path": class_path}})
    with pytest.raises(SystemExit) as exit_info:
        UnlearningCLI(args=["fit", "--config", str(config)])
    assert exit_info.value.code != 0
    err = capsys.readouterr().err
    assert named in err, err[-3000:]
    assert not (tmp_path / "runs").exists(), "nothing runs (or is written) after a parse error"


@pytest.mark.parametrize("case", ["missing", "corrupt", "not-lightning", "other-num-classes"])
def test_bad_ckpt_path_through_the_cli(tmp_path, case, monkeypatch):
    monkeypatch.setenv("JSONARGPARSE_DEBUG", "true")  # the CLI raises the error instead of printing one line
    path = tmp_path / "bad.ckpt"
    if case == "corrupt":
        path.write_bytes(b"\x80\x02garbage")
    elif case == "not-lightning":  # a plain state dict: belongs in references.original, not --ckpt_path
        torch.save(tiny_mlp().state_dict(), path)
    elif case == "other-num-classes":
        state = {f"network.{k}": v for k, v in five_class_mlp().state_dict().items()}
        torch.save({"pytorch-lightning_version": "2.6.0", "state_dict": state}, path)
    expected = {
        "missing": (FileNotFoundError, [str(path), "does not exist"]),
        # Lightning alone: an UnpicklingError that recommends the unsafe weights_only=False
        "corrupt": (ValueError, [str(path), "corrupt", "weights_only=True"]),
        # Lightning alone: KeyError: 'pytorch-lightning_version'
        "not-lightning": (ValueError, [str(path), "not a Lightning checkpoint", "references.init_args.original"]),
        "other-num-classes": (ValueError, [str(path), "net.3.weight: checkpoint (5, 32), network (10, 32)"]),
    }[case]
    with raises(expected[0], *expected[1]):
        UnlearningCLI(args=["validate", "--config", str(write_config(tmp_path)), "--ckpt_path", str(path)])


def test_mismatched_ckpt_path_through_the_python_api(prepared_module, tmp_path):
    module, dm = prepared_module(oracle=False, metrics=[], report=False)
    path = tmp_path / "five.ckpt"
    state = {f"network.{k}": v for k, v in five_class_mlp().state_dict().items()}
    torch.save({"pytorch-lightning_version": "2.6.0", "state_dict": state, "epoch": 0, "global_step": 0}, path)
    before = {k: v.clone() for k, v in module.network.state_dict().items()}
    with raises(ValueError, "--ckpt_path", "net.3.weight: checkpoint (5, 32), network (10, 32)"):
        fast_trainer(tmp_path).validate(module, datamodule=dm, ckpt_path=str(path), verbose=False)
    assert all(torch.equal(before[k], v) for k, v in module.network.state_dict().items()), "weights untouched"


# ------------------------------------------------------------------ a run folder that already holds results
def test_a_folder_with_results_is_never_overwritten(prepared_module, tmp_path):
    module, dm = prepared_module(oracle=False)
    old = {"results.csv": "model,x\nmine,1\n", "results.json": '{"mine": {"x": 1}}\n', "split.json": '{"mine": 1}\n'}
    for name, text in old.items():
        (tmp_path / name).write_text(text)
    fast_trainer(tmp_path).validate(module, datamodule=dm, verbose=False)
    for name, text in old.items():
        assert (tmp_path / name).read_text() == text, f"{name} was overwritten"
    assert json.loads((tmp_path / "results-1.json").read_text())["unlearned"]["forget_acc"] == 1.0
    assert (tmp_path / "results-1.csv").read_text().startswith("model,")
    assert json.loads((tmp_path / "split-1.json").read_text())["forget"] == dm.split.forget
    # a second evaluation in the same folder: another new pair, the split already recorded
    fast_trainer(tmp_path).validate(module, datamodule=dm, verbose=False)
    assert (tmp_path / "results-2.json").exists() and not (tmp_path / "split-2.json").exists()


def test_the_cli_refuses_a_fixed_run_folder_that_already_holds_a_run(tmp_path):
    config = write_config(tmp_path)
    folder = tmp_path / "runs" / "tiny" / "version_0"
    folder.mkdir(parents=True)
    (folder / "config.yaml").write_text("an earlier run's config\n")
    (folder / "results.json").write_text("{}\n")
    # LightningCLI's SaveConfigCallback (overwrite=False, our default) refuses at setup, before the
    # folder is written to (the reference models may be trained into the cache first: harmless).
    with raises(RuntimeError, str(folder / "config.yaml"), "to NOT exist", "avoid overwriting"):
        UnlearningCLI(args=["fit", "--config", str(config), "--trainer.logger.init_args.version=0"])
    assert (folder / "config.yaml").read_text() == "an earlier run's config\n"
    assert sorted(p.name for p in folder.iterdir()) == ["config.yaml", "results.json"]

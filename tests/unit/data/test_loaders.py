"""Device-resident data gives the DataLoader's batches; DataLoader settings follow the data and the device."""

from __future__ import annotations

import copy
import pickle

import numpy as np
import pytest
import torch
from conftest import fast_trainer, tiny_cnn
from lightning.fabric.utilities.data import suggested_max_num_workers

from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, ImageFolder, Mislabeled, RandomForget
from unlearn_pl.data.loaders import DeviceLoader, loader_options
from unlearn_pl.localizers import DEL
from unlearn_pl.metrics import LossAttack, SplitAccuracy
from unlearn_pl.unlearners import NegGradPlus


def pair(**kwargs) -> tuple[UnlearningDataModule, UnlearningDataModule]:
    """The same data module without and with device-resident data (the device is the CPU here)."""
    kwargs = {"dataset": Digits(), "forget": Mislabeled(0.1), "batch_size": 50, "seed": 3, **kwargs}
    plain, device = UnlearningDataModule(**kwargs), UnlearningDataModule(device_data=True, **kwargs)
    plain.setup()
    device.setup()
    return plain, device


def assert_same_batches(a, b) -> int:
    """Every batch equal in structure, dtype and value; returns how many."""
    a, b = list(a), list(b)
    assert len(a) == len(b) and a
    for u, v in zip(a, b, strict=True):
        assert type(u) is type(v) is list and len(u) == len(v) == 3
        for s, t in zip(u, v, strict=True):
            assert s.dtype == t.dtype and s.device == t.device and torch.equal(s, t)
    return len(a)


@pytest.mark.parametrize("which", ["retain", "forget", "val", "test", "train"])
def test_device_loaders_serve_the_dataloader_batches(which):
    plain, device = pair()
    loader = device.dataloader(which)
    assert isinstance(loader, DeviceLoader) and not isinstance(plain.dataloader(which), DeviceLoader)
    assert_same_batches(plain.dataloader(which), loader)
    # Shuffled, sharded across 2 processes, over three epochs and a second pass in one epoch (a cycled loader).
    for rank in (0, 1):
        a, b = (
            dm.dataloader(which, shuffle=True, batch_size=16, num_replicas=2, rank=rank, drop_last=True)
            for dm in (plain, device)
        )
        assert len(a) == len(b)
        for epoch in range(3):
            for loader in (a, b):
                loader.sampler.set_epoch(epoch)
            assert_same_batches(a, b)
        assert_same_batches(a, b)


def test_device_batches_carry_the_training_labels():
    """Mislabeled forget examples train with their wrong labels in both modes."""
    plain, device = pair()
    relabels = plain.split.relabels
    assert relabels
    index, _, y = next(iter(device.dataloader("forget", batch_size=10_000)))
    wrong = {int(i): int(label) for i, label in zip(index, y, strict=True)}
    assert all(wrong[i] == label for i, label in relabels.items())
    assert any(label != int(device.train_set.targets[i]) for i, label in relabels.items())


def test_unlearning_data_loader_with_device_data_keeps_the_order():
    plain, device = pair(global_batch=True, batch_size=32)
    for name in ("retain", "forget"):
        a = plain.unlearning_dataloader(("retain", "forget"), num_replicas=2, rank=1).iterables[name]
        b = device.unlearning_dataloader(("retain", "forget"), num_replicas=2, rank=1).iterables[name]
        assert isinstance(b, DeviceLoader)
        assert_same_batches(a, b)


def run(device_data: bool, tmp_path) -> tuple[dict, dict]:
    """References trained, one unlearning fit (two splits, cycled) and its evaluation."""
    dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=64, seed=0, device_data=device_data)
    module = UnlearningModule(
        tiny_cnn(),
        localizer=DEL(budget=0.3),
        unlearner=NegGradPlus(lr=0.02),
        references=ReferenceModels(
            TrainingRecipe(epochs=2, lr=0.1, batch_size=64, accelerator="cpu"), cache_dir=str(tmp_path / "cache")
        ),
        metrics=[SplitAccuracy(), LossAttack()],
        report=False,
    )
    module.prepare_models(dm)
    fast_trainer(tmp_path, max_epochs=2, limit_val_batches=0).fit(module, datamodule=dm)
    fast_trainer(tmp_path).validate(module, datamodule=dm, verbose=False)
    states = {
        "unlearned": module.network.state_dict(),
        **{m: module.reference(m).state_dict() for m in ("original", "oracle")},
    }
    return states, {type(cb).__name__: cb.results for cb in module.metrics}


def test_a_run_with_device_data_is_the_run_without(tmp_path):
    """Reference training (its own cache), localization, unlearning and evaluation: bit-identical on CPU."""
    states_a, results_a = run(False, tmp_path / "a")
    states_b, results_b = run(True, tmp_path / "b")
    for model, state in states_a.items():
        assert all(torch.equal(v, states_b[model][k]) for k, v in state.items()), model
    assert results_a == results_b
    assert any(not torch.equal(v, states_a["original"][k]) for k, v in states_a["unlearned"].items()), (
        "the run unlearned"
    )


def test_a_copied_or_pickled_dataset_holds_no_device_copy():
    _, device = pair()
    dataset = device.train_set
    dataset._device_images["meta"] = torch.empty(0)  # stands in for a GPU copy
    for twin in (copy.deepcopy(dataset), pickle.loads(pickle.dumps(dataset))):
        assert twin._device_images == {} and torch.equal(twin.images, dataset.images)
    assert dataset.images_on("cpu") is dataset.images  # the CPU needs no copy


def image_folder(root) -> ImageFolder:
    from PIL import Image

    for split in ("train", "val"):
        for cls in ("cat", "dog"):
            (root / split / cls).mkdir(parents=True)
            for k in range(3):
                Image.fromarray(np.full((6, 6, 3), 40 * k, np.uint8)).save(root / split / cls / f"{k}.png")
    return ImageFolder(str(root), image_size=4)


def test_device_data_refuses_file_backed_readers(tmp_path):
    dm = UnlearningDataModule(image_folder(tmp_path), RandomForget(1), val_fraction=0.0, device_data=True)
    with pytest.raises(
        ValueError, match="device_data=True keeps in-memory data on the device, but ImageFolder reads files"
    ):
        dm.setup()


def test_loader_defaults_follow_the_data_and_the_device(tmp_path):
    dm = UnlearningDataModule(image_folder(tmp_path), RandomForget(1), val_fraction=0.0)
    digits = UnlearningDataModule(Digits())
    files, memory = dm.split_dataset("train"), digits.split_dataset("train")
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert loader_options(memory, cuda, 1, None, None) == {
        "num_workers": 0,
        "pin_memory": True,
        "persistent_workers": False,
    }
    assert loader_options(files, cpu, 2, None, None) == {
        "num_workers": suggested_max_num_workers(2),
        "pin_memory": False,
        "persistent_workers": True,
    }
    assert loader_options(files, cuda, 1, 0, False) == {
        "num_workers": 0,
        "pin_memory": False,
        "persistent_workers": False,
    }
    loader = dm.dataloader("train")  # no trainer: the CPU, one process
    assert loader.num_workers == suggested_max_num_workers(1) and not loader.pin_memory
    assert digits.dataloader("train").num_workers == 0
    assert UnlearningDataModule(Digits(), num_workers=2).dataloader("test").num_workers == 2

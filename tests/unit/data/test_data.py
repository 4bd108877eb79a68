"""Splits, selectors, manifests and the data module."""

import json

import numpy as np
import pytest
import torch
from conftest import REPO

from unlearn_pl.data import (
    ClassForget,
    Digits,
    IndexForget,
    Mislabeled,
    RandomForget,
    SplitManifest,
    UnlearningDataModule,
)


def dm(**kw):
    kw.setdefault("dataset", Digits())
    return UnlearningDataModule(**kw)


def setup(**kw):
    d = dm(**kw)
    d.setup()
    return d


def test_splits_are_disjoint_and_cover_the_training_set():
    d = setup(forget=RandomForget(0.2), val_fraction=0.1)
    s = d.split
    r, f, v = set(s.retain), set(s.forget), set(s.val)
    assert not (r & f) and not (r & v) and not (f & v)
    assert r | f | v == set(range(len(d.train_set)))
    assert len(f) == round(0.2 * (len(d.train_set) - len(v)))


def test_splits_are_reproducible_for_a_seed_and_differ_across_seeds():
    a, b, c = setup(seed=3).split, setup(seed=3).split, setup(seed=4).split
    assert (a.retain, a.forget, a.val) == (b.retain, b.forget, b.val)
    assert a.forget != c.forget


def test_manifest_round_trips_and_is_reused(tmp_path):
    path = tmp_path / "split.json"
    first = setup(forget=Mislabeled(0.05), manifest=str(path), seed=1)
    assert path.exists()
    loaded = SplitManifest.load(path)
    assert loaded == first.split
    # a data module pointed at the manifest uses it even with another seed/selector
    again = setup(forget=RandomForget(0.5), manifest=str(path), seed=99)
    assert again.split == first.split


def test_manifest_from_other_data_is_rejected(tmp_path):
    path = tmp_path / "split.json"
    s = setup(manifest=str(path)).split
    s.dataset = "0123456789abcdef"
    s.save(path)
    with pytest.raises(ValueError, match="fingerprint"):
        setup(manifest=str(path))


def test_corrupt_manifest_is_rejected(tmp_path):
    path = tmp_path / "split.json"
    path.write_text(json.dumps({"retain": [1], "bogus": 2}))
    with pytest.raises(ValueError, match="not a split manifest"):
        SplitManifest.load(path)
    path.write_text(json.dumps({"retain": [1, 2], "forget": [2], "val": [], "num_train": 5}))
    with pytest.raises(ValueError, match="overlap"):
        SplitManifest.load(path)


def test_classes_selector_draws_only_from_named_classes():
    d = setup(forget=ClassForget([2, 5], size=0.1))
    labels = d.train_set.targets[d.split.forget]
    assert set(labels.tolist()) == {2, 5}
    assert len(d.split.forget) == round(0.1 * (len(d.split.retain) + len(d.split.forget)))


def test_mislabeled_selector_changes_every_forget_label_and_the_loaders_serve_them():
    d = setup(forget=Mislabeled(0.1))
    s = d.split
    true = d.train_set.targets
    assert set(s.relabels) == set(s.forget)
    assert all(true[i] != wrong for i, wrong in s.relabels.items())
    index, _, y = next(iter(d.dataloader("forget", batch_size=1000)))
    assert all(int(yy) == s.relabels[int(i)] for i, yy in zip(index, y, strict=True))
    # test and retain labels are untouched
    index, _, y = next(iter(d.dataloader("retain", batch_size=1000)))
    assert torch.equal(y, true[index])


def test_index_selector_from_list_and_file(tmp_path):
    assert setup(forget=IndexForget(indices=[5, 3, 9]), val_fraction=0.0).split.forget == [3, 5, 9]
    f = tmp_path / "forget.txt"
    f.write_text("7\n1\n")
    assert setup(forget=IndexForget(file=str(f)), val_fraction=0.0).split.forget == [1, 7]


def test_batches_carry_dataset_indices():
    d = setup()
    index, x, y = next(iter(d.dataloader("val", batch_size=8)))
    assert torch.equal(x[0], d.train_set[int(index[0])][0])
    assert int(y[0]) == d.train_set[int(index[0])][1]


def test_train_size_subsamples_before_splitting():
    d = setup(train_size=500, forget=RandomForget(50))
    s = d.split
    assert len(s.retain) + len(s.forget) + len(s.val) == 500
    assert len(s.forget) == 50


def test_unlearning_loader_serves_the_required_splits():
    d = setup()
    combined = d.unlearning_dataloader(("retain", "forget"))
    batch, _, _ = next(iter(combined))
    assert set(batch) == {"retain", "forget"}
    assert set(batch["forget"][0].tolist()) <= set(d.split.forget)


@pytest.mark.parametrize(
    "selector,match",
    [
        (ClassForget([3, 12]), r"unknown forget classes \[12\]"),
        (IndexForget(indices=[0, 99999]), "out of range"),
        (IndexForget(indices=[4, 4]), "duplicated"),
        (IndexForget(indices=[]), "empty"),
        (RandomForget(0.0), r"\(0, 1\]"),
        (RandomForget(1.0), "retain set is empty"),
        (RandomForget(10**6), "pool has"),
        (ClassForget([0], size=0.5), "have only"),
    ],
)
def test_bad_forget_selection_is_rejected(selector, match):
    with pytest.raises(ValueError, match=match):
        setup(forget=selector)


def test_forget_indices_in_the_validation_set_are_rejected():
    val = setup(seed=0).split.val
    with pytest.raises(ValueError, match="validation"):
        setup(forget=IndexForget(indices=val[:2]), seed=0)


def test_mislabeled_needs_two_classes():
    from unlearn_pl.data.selectors import Mislabeled as M

    with pytest.raises(ValueError, match="at least 2 classes"):
        M(0.5).select(np.arange(10), np.zeros(10, dtype=np.int64), 1, np.random.default_rng(0))


@pytest.mark.parametrize(
    "size, dumped", [("0.1", "size: 0.1"), ("100", "size: 100"), ("1", "size: 1"), ("1.0", "size: 1.0")]
)
def test_forget_size_keeps_its_value_and_kind_in_the_saved_config(size, dumped):
    # The run folder's config.yaml (and a study's base.yaml) must re-create the same forget set:
    # a union of restricted types made jsonargparse write a fraction of 0.1 as `size: 0`.
    from unlearn_pl.cli import UnlearningCLI

    cli = UnlearningCLI(
        args=["--config", str(REPO / "configs" / "quickstart.yaml"), f"--data.init_args.forget.init_args.size={size}"],
        run=False,
    )
    dump = cli.parser.dump(cli.config, skip_none=False)
    assert dumped in [line.strip() for line in dump.splitlines()]


def test_test_size_scores_every_seed_on_the_same_test_subset():
    full = UnlearningDataModule(Digits(), RandomForget(0.1), seed=0)
    full.setup()
    num_test = len(full.indices("test"))
    a = UnlearningDataModule(Digits(), RandomForget(0.1), seed=0, test_size=100)
    b = UnlearningDataModule(Digits(), RandomForget(0.1), seed=1, test_size=100)
    a.setup(), b.setup()
    assert len(a.indices("test")) == 100 and a.indices("test") == b.indices("test")
    assert a.indices("test") != list(range(100))  # a draw over the whole split, not its head
    assert len(a.split_dataset("test")) == 100 and a.fingerprint("test") != full.fingerprint("test")
    assert a.indices("retain") == full.indices("retain")  # the training split does not depend on it
    with pytest.raises(ValueError, match=f"test_size must be at most {num_test}.*got {num_test + 1}"):
        UnlearningDataModule(Digits(), RandomForget(0.1), test_size=num_test + 1).setup()

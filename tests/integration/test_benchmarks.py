"""Smoke tests of the ratio benchmarks (tiny sizes, digits) and of the optimizations they led to.

The benchmarks are run by hand for their numbers (see the README's "Performance" section);
here each runs with tiny sizes so it cannot rot. The tests check that the output parses and
that every ratio is a positive finite number — never any speed.
"""

from __future__ import annotations

import copy
import importlib
import math
import os
import re
import subprocess
import sys

import pytest
import torch
from conftest import REPO

from unlearn_pl.data import Digits, Mislabeled, UnlearningDataModule
from unlearn_pl.data.datasets import IndexedSubset
from unlearn_pl.functional import make_plane
from unlearn_pl.functional.masks import MaskGuard
from unlearn_pl.metrics import DecisionRegions
from unlearn_pl.models import SmallCNN

LINE = re.compile(r"^(RATIO|METRIC) (\S+) (\S+) ([<>]=\S+) (ok|MISSED)$")


@pytest.fixture
def bench(monkeypatch: pytest.MonkeyPatch):
    """Import a benchmark module from ``benchmarks/`` (they import their sibling ``_common``)."""
    monkeypatch.syspath_prepend(str(REPO / "benchmarks"))
    threads = torch.get_num_threads()
    cache = os.environ.get("UNLEARN_PL_CACHE")

    def load(name: str):
        sys.modules.pop(name, None)
        return importlib.import_module(name)

    yield load
    torch.set_num_threads(threads)  # the benchmarks pin 1 thread
    # A benchmark's own model cache must not outlive it: the later tests in this process would train
    # their reference models again, in a cache removed with the benchmark's temporary folder.
    assert os.environ.get("UNLEARN_PL_CACHE") == cache, "the benchmark left UNLEARN_PL_CACHE changed"


def parse(out: str) -> tuple[dict[str, float], dict[str, float], str]:
    """``(ratios, metrics, summary)`` from a benchmark's stdout; fails on malformed lines."""
    ratios: dict[str, float] = {}
    metrics: dict[str, float] = {}
    summaries = []
    for line in out.splitlines():
        if line.startswith(("RATIO", "METRIC")):
            m = LINE.match(line)
            assert m, f"malformed line: {line!r}"
            (ratios if m[1] == "RATIO" else metrics)[m[2]] = float(m[3])
        elif line.startswith("SUMMARY "):
            summaries.append(line)
    assert len(summaries) == 1, f"expected one SUMMARY line, got {summaries}"
    assert ratios, "no RATIO lines"
    for name, value in ratios.items():
        assert math.isfinite(value) and value > 0, f"{name} = {value}"
    for name, value in metrics.items():
        assert math.isfinite(value) and value >= 0, f"{name} = {value}"
    return ratios, metrics, summaries[0]


def run_bench(bench, capsys, name: str, argv: list[str]) -> tuple[dict[str, float], dict[str, float], str]:
    bench(name).main(argv)
    return parse(capsys.readouterr().out)


# ------------------------------------------------------------------ the benchmarks run and parse
def test_bench_del_vs_retrain(bench, capsys, tmp_path):
    ratios, metrics, summary = run_bench(
        bench,
        capsys,
        "bench_del_vs_retrain",
        [
            "--dataset",
            "digits",
            "--train-size",
            "500",
            "--oracle-epochs",
            "1",
            "--del-epochs",
            "1",
            "--cache-dir",
            str(tmp_path),
        ],
    )
    assert set(ratios) == {"del_time_over_retrain[random]", "del_time_over_retrain[classes]"}
    assert set(metrics) == {"forget_acc_gap_points[random]", "forget_acc_gap_points[classes]"}
    assert summary.startswith("SUMMARY bench_del_vs_retrain:")


def test_sweep_del_settings(bench, capsys, tmp_path):
    bench("sweep_del_settings").main(
        [
            "--dataset",
            "digits",
            "--train-size",
            "500",
            "--oracle-epochs",
            "1",
            "--del-epochs",
            "1",
            "--budgets",
            "0.1",
            "0.3",
            "--lrs",
            "0.02",
            "--seeds",
            "1",
            "--cache-dir",
            str(tmp_path),
        ]
    )
    out = capsys.readouterr().out
    scores = {}
    for line in out.splitlines():
        if line.startswith("METRIC"):
            m = LINE.match(line)
            assert m, f"malformed line: {line!r}"
            scores[m[2]] = float(m[3])
    assert set(scores) == {
        f"forget_acc_gap_points[{f},budget={b},lr=0.02]" for f in ("random", "classes") for b in (0.1, 0.3)
    }
    assert all(math.isfinite(v) and v >= 0 for v in scores.values())
    summary = [line for line in out.splitlines() if line.startswith("SUMMARY sweep_del_settings:")]
    assert len(summary) == 1 and "random: best budget" in summary[0] and "classes: best budget" in summary[0]


def test_bench_localization(bench, capsys):
    ratios, _, _ = run_bench(
        bench,
        capsys,
        "bench_localization",
        [
            "--dataset",
            "digits",
            "--forget-size",
            "40",
            "--train-size",
            "400",
            "--repeats",
            "1",
        ],
    )
    assert set(ratios) == {"del_localize_over_fwd_bwd"}


def test_bench_lightning_overhead(bench, capsys):
    ratios, _, _ = run_bench(
        bench,
        capsys,
        "bench_lightning_overhead",
        [
            "--dataset",
            "digits",
            "--train-size",
            "300",
            "--batch-size",
            "64",
            "--repeats",
            "1",
        ],
    )
    assert set(ratios) == {"lightning_throughput_over_plain"}


def test_bench_callbacks(bench, capsys, tmp_path):
    ratios, _, _ = run_bench(
        bench,
        capsys,
        "bench_callbacks",
        [
            "--dataset",
            "digits",
            "--train-size",
            "400",
            "--recipe-epochs",
            "1",
            "--num-planes",
            "1",
            "--resolution",
            "6",
            "--cache-dir",
            str(tmp_path),
        ],
    )
    # The speed targets: MIA <= +20% of a validation epoch (judged at width >= 0.5), a region grid
    # point <= 1.0x a validated example (regions stay off during fit by default).
    assert set(ratios) == {"mia_validation_over_plain", "regions_cost_per_point_over_validation_per_example"}


@pytest.mark.slow
def test_bench_quickstart(bench, capsys):
    ratios, _, _ = run_bench(
        bench,
        capsys,
        "bench_quickstart",
        [
            "--modes",
            "cold",
            "--",
            "--trainer.max_epochs",
            "1",
            "--model.init_args.references.init_args.recipe.epochs",
            "1",
        ],
    )
    assert set(ratios) == {"quickstart_cold_over_budget"}


# ------------------------------------------------------------------ the optimizations change nothing
def test_batched_fetch_gives_the_per_item_batches():
    """``IndexedSubset.__getitems__`` (the DataLoader's batched path) yields bit-identical
    batches, mislabeled relabels included."""
    dm = UnlearningDataModule(Digits(), Mislabeled(0.2), batch_size=32)
    dm.setup()
    assert dm.split.relabels
    for which in ("train", "forget", "test"):
        dataset = dm.split_dataset(which)
        order = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(0)).tolist()
        batched = list(torch.utils.data.DataLoader(dataset, batch_size=32, sampler=order))
        per_item = list(torch.utils.data.DataLoader(_PerItem(dataset), batch_size=32, sampler=order))
        assert len(batched) == len(per_item)
        for a, b in zip(batched, per_item, strict=True):
            for u, v in zip(a, b, strict=True):
                assert u.dtype == v.dtype and torch.equal(u, v)
    # and the data module's own loaders take the batched path
    assert hasattr(dm.dataloader("train").dataset, "__getitems__")


class _PerItem(torch.utils.data.Dataset):
    """Hides ``__getitems__``: the DataLoader falls back to ``__getitem__`` per example."""

    def __init__(self, subset: IndexedSubset) -> None:
        self.subset = subset

    def __len__(self) -> int:
        return len(self.subset)

    def __getitem__(self, k: int):
        return self.subset[k]


def test_mask_guard_follows_replaced_parameters():
    """The guard's resolved parameter list is rebuilt when a parameter object is replaced."""
    torch.manual_seed(0)
    model = SmallCNN(num_classes=10, in_channels=1, width=4)
    masks = {n: torch.rand_like(p) < 0.5 for n, p in model.named_parameters()}
    guard = MaskGuard(model, masks)
    guard.restore()  # resolves and caches the parameter list
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    model.load_state_dict({k: v + 1.0 for k, v in model.state_dict().items()}, assign=True)
    guard.restore()
    for n, p in model.named_parameters():
        assert torch.equal(p[~masks[n]], before[n][~masks[n]])
        assert torch.equal(p[masks[n]], before[n][masks[n]] + 1.0)


def _frozen_model_and_first_grid():
    """A frozen model, a plane, a DecisionRegions and the model's grid predicted through it."""
    torch.manual_seed(0)
    model = SmallCNN(num_classes=10, in_channels=1, width=4).eval().requires_grad_(False)
    x = torch.randn(3, 1, 8, 8)
    plane = make_plane(x[0], x[1], x[2])
    regions = DecisionRegions(num_planes=1, resolution=8, plot=False)
    return model, plane, regions, regions.predict(model, plane, 8)


def test_region_grids_of_frozen_models_are_cached_by_content():
    model, plane, regions, first = _frozen_model_and_first_grid()
    assert regions.predict(model, plane, 8) is first  # reused
    twin = copy.deepcopy(model)  # another object with the same weights: the same key
    assert regions.predict(twin, plane, 8) is first
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(-1.0)  # other weights: another key, recomputed
    again = regions.predict(model, plane, 8)
    assert again is not first
    assert torch.equal(
        again, DecisionRegions(num_planes=1, resolution=8, plot=False).predict(copy.deepcopy(model), plane, 8)
    )
    trainable = copy.deepcopy(model).requires_grad_(True)  # a model being trained is never cached
    assert regions.predict(trainable, plane, 8) is not regions.predict(trainable, plane, 8)
    assert len(copy.deepcopy(regions)._frozen_grids) == len(regions._frozen_grids)  # a copy holds its own values


def test_bench_loader(bench, capsys):
    ratios, _, _ = run_bench(
        bench,
        capsys,
        "bench_loader",
        [
            "--dataset",
            "digits",
            "--train-size",
            "300",
            "--repeats",
            "1",
        ],
    )
    assert set(ratios) == {"loader_per_item_over_batched[train]", "loader_per_item_over_batched[test]"}


def test_region_grids_of_inference_tensor_models_are_cached_by_content():
    """Parameters made under ``torch.inference_mode`` (no version counters) are keyed by content too."""
    with torch.inference_mode():
        model = SmallCNN(num_classes=10, in_channels=1, width=4).eval().requires_grad_(False)
    x = torch.randn(3, 1, 8, 8)
    plane = make_plane(x[0], x[1], x[2])
    regions = DecisionRegions(num_planes=1, resolution=8, plot=False)
    first = regions.predict(model, plane, 8)
    assert regions.predict(model, plane, 8) is first


def test_bench_gpu_runs_tiny_on_a_cpu(bench, capsys):
    """Every side, both data paths and both precisions, at a size a CPU runs in seconds."""
    ratios, _, summary = run_bench(
        bench,
        capsys,
        "bench_gpu",
        [
            "--device",
            "cpu",
            "--train-size",
            "128",
            "--batch-size",
            "32",
            "--width",
            "0.0625",
            "--epochs",
            "2",
        ],
    )
    precisions = ("32-true", "bf16-mixed")
    sides = ("reference", "unlearning", "shadow")
    assert set(ratios) == (
        {f"{side}_over_plain[{p}]" for side in sides for p in precisions}
        | {f"device_data_over_dataloader[{side},{p}]" for side in sides for p in precisions}
        | {"bf16_over_fp32[plain]"}
    )
    assert summary.startswith("SUMMARY bench_gpu: cpu, bf16-mixed: plain loop ")


@pytest.mark.slow  # two small studies, one of them in two worker processes: ~60 s
def test_bench_study_workers(bench, capsys, tmp_path):
    ratios, _, summary = run_bench(
        bench,
        capsys,
        "bench_study_workers",
        [
            "--dataset",
            "digits",
            "--lrs",
            "0.01",
            "0.02",
            "--seeds",
            "0",
            "--oracle-epochs",
            "1",
            "--cache-dir",
            str(tmp_path),
        ],
    )
    assert set(ratios) == {"trials_per_minute[2_workers_over_1]"}
    assert summary.startswith("SUMMARY bench_study_workers:")


def test_bench_study_workers_on_gpus_says_there_are_none_and_fails(tmp_path):
    # CUDA_VISIBLE_DEVICES="" hides any GPU, so the refusal is checked on every machine.
    proc = subprocess.run(
        [sys.executable, str(REPO / "benchmarks" / "bench_study_workers.py"), "--gpus"],
        cwd=tmp_path,
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode != 0 and "RATIO" not in proc.stdout and "SUMMARY" not in proc.stdout
    assert proc.stderr.strip() == (
        "error: --gpus compares one worker per GPU with one worker, and needs at least 2 "
        "visible GPUs; this machine has 0: no figure measured"
    )


def test_bench_audit_overhead(bench, capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("sys.argv", ["unlearn-pl"])
    ratios, _, summary = run_bench(
        bench,
        capsys,
        "bench_audit_overhead",
        [
            "--seeds",
            "2",
            "--resamples",
            "5",
            "--cache-dir",
            str(tmp_path),
            "--",
            "--model.init_args.network",
            "unlearn_pl.models.MLP",
            "--model.init_args.network.hidden",
            "[16]",
            "--data.init_args.train_size",
            "150",
            "--data.init_args.forget.init_args.size",
            "20",
            "--model.init_args.references.init_args.recipe.epochs",
            "2",
            "--trainer.max_epochs",
            "1",
        ],
    )
    assert set(ratios) == {"audit_recording_over_training"}
    assert summary.startswith("SUMMARY bench_audit_overhead:")


def test_calibrate_audit_intervals(bench, capsys):
    bench("calibrate_audit_intervals").main(
        [
            "--models",
            "4",
            "--forget",
            "3",
            "--examples",
            "20",
            "--repetitions",
            "2",
            "--resamples",
            "5",
            "--truth",
            "3",
        ]
    )
    out = capsys.readouterr().out
    coverage = {}
    for line in out.splitlines():
        if line.startswith("METRIC"):
            m = LINE.match(line)
            assert m, f"malformed line: {line!r}"
            coverage[m[2]] = float(m[3])
    assert set(coverage) == {
        f"coverage[{s},{m}]" for s in ("forget_quality", "klom_median") for m in ("plain", "smoothed")
    }
    assert all(0.0 <= v <= 1.0 for v in coverage.values())
    assert sum(line.startswith("SUMMARY calibrate_audit_intervals:") for line in out.splitlines()) == 1

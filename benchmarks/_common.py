"""Shared plumbing of the ratio benchmarks: argument parsing, timing and the output format.

Every benchmark prints

* one ``RATIO <name> <value> <target>`` line per measured ratio (``<target>`` is e.g. ``<=0.10``
  or ``>=0.95``, followed by ``ok`` or ``MISSED``), and
* ``METRIC <name> <value> <target>`` lines for values that are not ratios (accuracy gaps), and
* one ``SUMMARY <benchmark>: ...`` line at the end,

so ``tests/integration/test_benchmarks.py`` (and a reader) can parse them. Ratios are always
measured side by side in one process: on a machine shared with other jobs the load then affects
both sides alike.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def base_parser(description: str, data_args: bool = True, seed_arg: bool = True) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares (``data_args=False``: only
    ``--threads``, for benchmarks whose data and model come from elsewhere, e.g. a config;
    ``seed_arg=False``: no ``--seed``, for benchmarks that take several seeds)."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="torch.set_num_threads; 1 keeps runs comparable on a shared 2-core machine",
    )
    if not data_args:
        return parser
    parser.add_argument(
        "--dataset",
        choices=("fashion", "digits"),
        default="fashion",
        help="Fashion-MNIST (the benchmark) or scikit-learn's digits (smoke tests)",
    )
    parser.add_argument("--width", type=float, default=0.125, help="CIFAR ResNet-18 width scale")
    if seed_arg:
        parser.add_argument("--seed", type=int, default=0)
    return parser


def setup_torch(threads: int) -> None:
    """Pin the intra-op thread count (both sides of every ratio run with the same count)."""
    import torch

    torch.set_num_threads(threads)


def reader(name: str) -> Any:
    """The dataset reader of ``--dataset``."""
    from unlearn_pl.data import Digits, FashionMNIST

    return FashionMNIST() if name == "fashion" else Digits()


def network(width: float, seed: int) -> Any:
    """A seeded CIFAR ResNet-18 for one-channel, 10-class images."""
    import torch

    from unlearn_pl.models import cifar_resnet18

    torch.manual_seed(seed)
    return cifar_resnet18(width=width, num_classes=10, in_channels=1)


def trainer(**kwargs: Any) -> Any:
    """A quiet CPU trainer (no logger, checkpoints, progress bar or sanity check)."""
    import lightning.pytorch as pl

    defaults: dict[str, Any] = dict(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
    )
    defaults.update(kwargs)
    return pl.Trainer(**defaults)


@contextmanager
def cache_dir(path: str | None) -> Iterator[str]:
    """The benchmark's model cache: ``path`` if given, else a temporary directory removed afterwards
    (a cold cache). ``UNLEARN_PL_CACHE`` names it for the duration (child processes inherit it) and
    is restored after, so a benchmark run inside another program (the tests) leaves that program's
    cache in place."""
    saved = os.environ.get("UNLEARN_PL_CACHE")
    with contextlib.ExitStack() as stack:
        folder = path or stack.enter_context(tempfile.TemporaryDirectory(prefix="unlearn_pl-bench-"))
        os.environ["UNLEARN_PL_CACHE"] = folder
        try:
            yield folder
        finally:
            os.environ.pop("UNLEARN_PL_CACHE") if saved is None else os.environ.update(UNLEARN_PL_CACHE=saved)


@contextmanager
def quiet() -> Iterator[None]:
    """Silence Lightning's info logging and warnings for the duration (they would swamp the output)."""
    import logging
    import warnings

    names = ("lightning", "lightning.pytorch", "lightning.fabric", "pytorch_lightning")
    levels = {n: logging.getLogger(n).level for n in names}
    for n in names:
        logging.getLogger(n).setLevel(logging.ERROR)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            yield
        finally:
            for n, level in levels.items():
                logging.getLogger(n).setLevel(level)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    """Wall time of ``fn()`` in seconds, and its result."""
    start = time.perf_counter()
    out = fn()
    return time.perf_counter() - start, out


def median(values: list[float]) -> float:
    """The median of repeated timings (robust to a run slowed by another job)."""
    return statistics.median(values)


def _target_line(kind: str, name: str, value: float, target: str) -> str:
    """Format and print one ``<kind> name value target ok|MISSED`` line; ``target`` is ``"<=x"`` or ``">=x"``."""
    op, bound = target[:2], float(target[2:])
    met = value <= bound if op == "<=" else value >= bound
    line = f"{kind} {name} {value:.4g} {target} {'ok' if met else 'MISSED'}"
    print(line, flush=True)
    return line


def ratio_line(name: str, value: float, target: str) -> str:
    """Format (and print) one ``RATIO`` line. ``target`` is ``"<=x"`` or ``">=x"``."""
    return _target_line("RATIO", name, value, target)


def metric_line(name: str, value: float, target: str) -> str:
    """Like :func:`ratio_line` for a value that is not a ratio (may be 0), e.g. an accuracy gap."""
    return _target_line("METRIC", name, value, target)


def info(message: str) -> None:
    """A free-form line of context (settings, absolute times); never parsed."""
    print(f"  {message}", flush=True)


def header(name: str, args: argparse.Namespace) -> None:
    """Print the benchmark's settings and the machine it runs on."""
    import torch

    settings = " ".join(f"{k}={v}" for k, v in sorted(vars(args).items()))
    print(f"# {name}: {settings}", flush=True)
    print(
        f"# machine: {os.cpu_count()} logical CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} intra-op thread(s), load average {os.getloadavg()[0]:.2f}",
        flush=True,
    )


def summary(name: str, text: str) -> None:
    """The one-line summary that ends every benchmark's output."""
    print(f"SUMMARY {name}: {text}", flush=True)


def accuracy(model: Any, loader: Any) -> float:
    """Top-1 accuracy of ``model`` (eval mode) over an ``(index, x, y)`` loader."""
    import torch

    model.eval()
    correct = total = 0
    with torch.inference_mode():
        for _, x, y in loader:
            correct += int((model(x).argmax(1) == y).sum())
            total += len(y)
    return correct / max(total, 1)


def run(main: Callable[[list[str] | None], Any]) -> None:
    """``if __name__ == "__main__": run(main)`` — exit code 0 even when a target is missed
    (a benchmark reports; it does not judge)."""
    main(sys.argv[1:])

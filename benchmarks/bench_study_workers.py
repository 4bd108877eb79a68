"""Completed study trials per minute with 1 vs 2 worker processes (or, with ``--gpus``, one per GPU).

A study of ``--lrs`` × ``--seeds`` trials (each an ``unlearn-pl fit`` run: NegGrad+ on a CIFAR
ResNet-18 of ``--width``, digits or Fashion-MNIST) runs twice on the package's engine
(:func:`unlearn_pl.tuning.run_study`): with ``workers=1`` and with ``workers=2``, each a fresh
study on its own journal file. The reference models are trained beforehand by a one-trial-per-seed
warm-up study (not timed), so both sides measure trials and the workers' start-up. It reports

    (completed trials per minute with 2 workers) / (with 1 worker)       target >= 1.5

on a 2-core machine, with the digits example's trials of about 1.4 s, where the workers' start-up
weighs most (>= 1.8 on trials of about 20 s: ``--dataset fashion``). Both sides run in one invocation, one after the other, so a changing load
from other jobs on the machine shows up as noise in the ratio: the load average is printed
before and after.

Example::

    python benchmarks/bench_study_workers.py --dataset digits --lrs 0.005 0.01 0.02 0.04 --seeds 0 1
    python benchmarks/bench_study_workers.py --gpus --lrs 0.005 0.01 0.02 0.04 0.08 0.16 0.32 0.64 --seeds 0 1
"""

from __future__ import annotations

import argparse
import os
import tempfile
from functools import partial
from pathlib import Path

import yaml
from _common import base_parser, cache_dir, header, info, ratio_line, run, setup_torch, summary, timed


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = base_parser(__doc__.splitlines()[0], seed_arg=False)
    p.add_argument("--train-size", type=int, default=2000, help="training examples (Fashion-MNIST)")
    p.add_argument("--lrs", type=float, nargs="+", default=[0.005, 0.01, 0.02, 0.04], help="the grid of NegGrad+ lr")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    p.add_argument("--epochs", type=int, default=1, help="unlearning epochs per trial")
    p.add_argument("--oracle-epochs", type=int, default=5)
    p.add_argument("--cache-dir", default=None, help="cache of the original and oracle models")
    p.add_argument("--gpus", action="store_true", help="one worker per visible GPU against one worker, trials on GPUs")
    return p.parse_args(argv)


def base_config(args: argparse.Namespace, folder: Path) -> list[str]:
    """The ``unlearn-pl fit`` arguments of the study's base config (written to ``folder``)."""
    dataset = (
        {"class_path": "unlearn_pl.data.Digits"}
        if args.dataset == "digits"
        else {"class_path": "unlearn_pl.data.FashionMNIST"}
    )
    accelerator = "gpu" if args.gpus else "cpu"
    config = {
        "seed_everything": 0,
        "trainer": {
            "accelerator": accelerator,
            "devices": 1,
            "max_epochs": args.epochs,
            "logger": False,
            "enable_checkpointing": False,
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "num_sanity_val_steps": 0,
        },
        "data": {
            "class_path": "unlearn_pl.UnlearningDataModule",
            "init_args": {
                "dataset": dataset,
                "forget": {"class_path": "unlearn_pl.data.RandomForget", "init_args": {"size": 0.1}},
                "train_size": None if args.dataset == "digits" else args.train_size,
                "batch_size": 128,
            },
        },
        "model": {
            "class_path": "unlearn_pl.UnlearningModule",
            "init_args": {
                "network": {
                    "class_path": "unlearn_pl.models.cifar_resnet18",
                    "init_args": {"width": args.width, "num_classes": 10, "in_channels": 1},
                },
                "references": {
                    "class_path": "unlearn_pl.ReferenceModels",
                    "init_args": {
                        "recipe": {
                            "epochs": args.oracle_epochs,
                            "lr": 0.05,
                            "batch_size": 128,
                            "accelerator": accelerator,
                        }
                    },
                },
                "metrics": [{"class_path": "unlearn_pl.metrics.SplitAccuracy"}],
                "unlearner": {"class_path": "unlearn_pl.unlearners.NegGradPlus", "init_args": {"lr": 0.01}},
                "report": False,
            },
        },
    }
    path = folder / "base.yaml"
    path.write_text(yaml.safe_dump(config))
    return ["--config", str(path)]


def main(argv: list[str] | None = None) -> dict[int, float]:
    args = parse(argv)
    saved = os.environ.get("OMP_NUM_THREADS")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)  # the workers' threads: the same on both sides
    try:
        return measure(args)
    finally:
        os.environ.pop("OMP_NUM_THREADS") if saved is None else os.environ.update(OMP_NUM_THREADS=saved)


def measure(args: argparse.Namespace) -> dict[int, float]:
    from unlearn_pl.tuning.engine.devices import visible_gpus

    gpus = visible_gpus() if args.gpus else []
    if args.gpus and len(gpus) < 2:
        raise SystemExit(
            f"error: --gpus compares one worker per GPU with one worker, and needs at least 2 visible GPUs; "
            f"this machine has {len(gpus)}: no figure measured"
        )
    import optuna

    from unlearn_pl.cli import run_cli
    from unlearn_pl.tuning import run_study

    sides = (1, len(gpus)) if args.gpus else (1, 2)
    setup_torch(args.threads)
    header("bench_study_workers", args)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    key = "model.init_args.unlearner.init_args.lr"
    rates: dict[int, float] = {}
    # cache_dir names the model cache in UNLEARN_PL_CACHE for the duration (child processes inherit it).
    with cache_dir(args.cache_dir), tempfile.TemporaryDirectory(prefix="unlearn_pl-bench-") as tmp:
        base = base_config(args, Path(tmp))
        common = dict(
            runner=run_cli,
            seeds=args.seeds,
            noise_floor=False,
            quiet=True,
            output_dir=tmp,
            gpus_per_trial=1 if args.gpus else 0,
        )
        run_study(base, grid={key: args.lrs[:1]}, study_name="warmup", **common)  # reference models, not timed
        if args.gpus:
            info(f"GPUs: {','.join(gpus)}; one worker each on the second side")
        for workers in sides:
            load = os.getloadavg()[0]
            seconds, result = timed(
                partial(
                    run_study, base, grid={key: args.lrs}, study_name=f"workers{workers}", workers=workers, **common
                )
            )
            done = sum(r["state"] == "COMPLETE" for r in result.trials)
            rates[workers] = 60 * done / seconds
            info(
                f"{workers} worker(s): {done} trials completed in {seconds:.1f} s = {rates[workers]:.2f} trials/min "
                f"(load average {load:.2f} before, {os.getloadavg()[0]:.2f} after)"
            )
    many = sides[1]
    ratio = rates[many] / rates[1]
    if args.gpus:
        ratio_line(f"trials_per_minute[{many}_gpus_over_1]", ratio, f">={0.8 * many:g}")
        summary(
            "bench_study_workers",
            f"{rates[1]:.2f} vs {rates[many]:.2f} trials/min with 1 worker vs one per GPU "
            f"({many} GPUs): {ratio:.2f}x (target >= {0.8 * many:g}x)",
        )
        return rates
    ratio_line("trials_per_minute[2_workers_over_1]", ratio, ">=1.5")
    summary(
        "bench_study_workers",
        f"{rates[1]:.2f} vs {rates[2]:.2f} trials/min with 1 vs 2 workers: {ratio:.2f}x "
        f"(target >= 1.5x on 2 cores with ~1.4 s trials, >= 1.8x with ~20 s trials; {os.cpu_count()} logical CPUs here)",
    )
    return rates


if __name__ == "__main__":
    run(main)

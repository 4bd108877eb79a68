"""The quick start end to end: ``unlearn-pl fit --config configs/quickstart.yaml``, timed.

Runs the command in subprocesses with a fresh model cache: **cold** (trains the original and the
oracle, as a first-time user does), then **warm** (reuses them, as the README's table was made;
``--modes`` picks either or both). Reports each wall time over the 90 s budget (target ≤ 1.0) and the share of the cold
run spent training the reference models. Extra arguments after ``--`` go to the CLI, e.g. the
smoke test's ``-- --trainer.max_epochs 1``.

Example::

    python benchmarks/bench_quickstart.py --threads 2
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

from _common import REPO, base_parser, header, info, ratio_line, run, setup_torch, summary


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = base_parser(__doc__.splitlines()[0], data_args=False)
    p.add_argument("--config", default=str(REPO / "configs" / "quickstart.yaml"))
    p.add_argument("--budget-seconds", type=float, default=90.0)
    p.add_argument(
        "--modes",
        nargs="+",
        choices=("cold", "warm"),
        default=["cold", "warm"],
        help="which runs to make (warm reuses the cold run's cache, or trains it untimed)",
    )
    p.add_argument("cli_args", nargs="*", help="extra unlearn-pl arguments (after --)")
    return p.parse_args(argv)


def run_cli(args: argparse.Namespace, cache: str, out_dir: str) -> float:
    """Wall time of one quick-start run in a fresh interpreter (imports included, as for a user)."""
    env = {**os.environ, "UNLEARN_PL_CACHE": cache, "OMP_NUM_THREADS": str(args.threads)}
    cmd = [
        sys.executable,
        "-m",
        "unlearn_pl",
        "fit",
        "--config",
        args.config,
        f"--trainer.logger.init_args.save_dir={out_dir}",
        *args.cli_args,
    ]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=out_dir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"quick start failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    return seconds


def main(argv: list[str] | None = None) -> dict[str, float]:
    args = parse(argv)
    setup_torch(args.threads)
    header("bench_quickstart", args)
    seconds: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="unlearn_pl-qs-") as tmp:
        cache = os.path.join(tmp, "cache")
        cold = run_cli(args, cache, tmp)  # a warm-only run still needs the cache filled
        if "cold" in args.modes:
            seconds["cold"] = cold
        if "warm" in args.modes:
            seconds["warm"] = run_cli(args, cache, tmp)
    if len(seconds) == 2:
        info(
            f"cold (trains original + oracle) {seconds['cold']:.1f} s, warm (cached references) {seconds['warm']:.1f} s; "
            f"reference training ~{seconds['cold'] - seconds['warm']:.1f} s of the cold run"
        )
    for mode, value in seconds.items():
        ratio_line(f"quickstart_{mode}_over_budget", value / args.budget_seconds, "<=1.0")
    summary(
        "bench_quickstart",
        ", ".join(f"{v:.1f} s {m} ({v / args.budget_seconds:.2f}x)" for m, v in seconds.items())
        + f" of the {args.budget_seconds:.0f} s budget",
    )
    return seconds


if __name__ == "__main__":
    run(main)

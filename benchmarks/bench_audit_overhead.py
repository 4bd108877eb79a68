"""What ``unlearn-pl audit`` adds to the trials it audits: its forward passes, and its report.

One audit (``--config``, default ``configs/audit/digits.yaml``, with ``--seeds`` model seeds and
the configured method plus ``--methods``) runs in this process from a cold model cache. Every
trial times its three parts (``outputs/<method>/seed_<s>.pt``): training or loading the original
and the oracle, unlearning, and recording the per-example outputs (one forward pass of the
unlearned model, and of the original and the oracle once per seed, over the forget, retain,
validation and test sets). It reports, measured in the same run,

    (recording time) / (reference training + unlearning time)              target <= 0.10

and, as information, the report's time (the bootstraps of F and KLOM, timed by computing the
report again from the same folder) against the same denominator. Arguments after ``--`` go to
``unlearn-pl audit`` (e.g. a smaller network for a smoke test).

Example::

    python benchmarks/bench_audit_overhead.py --seeds 4 --methods configs/methods/retrain.yaml
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from _common import REPO, base_parser, cache_dir, header, info, ratio_line, run, setup_torch, summary


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = base_parser(__doc__.splitlines()[0], data_args=False)
    p.add_argument("--config", default=str(REPO / "configs" / "audit" / "digits.yaml"))
    p.add_argument("--seeds", type=int, default=4, help="model seeds (N)")
    p.add_argument("--methods", nargs="*", default=[], help="method config files besides the configured run")
    p.add_argument("--resamples", type=int, default=200, help="bootstrap resamples of the report")
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--cache-dir", default=None, help="cache of the original and oracle models (default: a cold one)")
    p.add_argument("audit_args", nargs="*", help="after --: further `unlearn-pl audit` arguments")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    import sys

    from unlearn_pl.audit import AuditStore, audit_methods
    from unlearn_pl.cli import UnlearningCLI

    args = parse(argv)
    setup_torch(args.threads)
    header("bench_audit_overhead", args)
    # cache_dir names the model cache in UNLEARN_PL_CACHE for the duration (child processes inherit it).
    with cache_dir(args.cache_dir), tempfile.TemporaryDirectory(prefix="unlearn_pl-bench-") as tmp:
        folder = Path(tmp) / "audit"
        argv_before, sys.argv = sys.argv, ["unlearn-pl"]  # the audit's own arguments are complete
        try:
            start = time.perf_counter()
            UnlearningCLI(
                args=[
                    "audit",
                    "--config",
                    args.config,
                    "--seeds",
                    str(args.seeds),
                    "--methods",
                    f"[{', '.join(args.methods)}]",
                    "--workers",
                    str(args.workers),
                    "--n_resamples",
                    str(args.resamples),
                    "--folder",
                    str(folder),
                    *args.audit_args,
                ]
            )
            total = time.perf_counter() - start
        finally:
            sys.argv = argv_before
        store = AuditStore(folder)
        parts = {"references": 0.0, "unlearning": 0.0, "recording": 0.0}
        entries = list((folder / "outputs").rglob("seed_*.pt"))
        methods = list(store.settings()["methods"])
        for method in methods:
            for seed in range(args.seeds):
                for part, seconds in store.load(method, seed)["seconds"].items():
                    parts[part] += seconds
        start = time.perf_counter()
        audit_methods(store, methods, list(range(args.seeds)), args.resamples, args.workers)
        report = time.perf_counter() - start
    training = parts["references"] + parts["unlearning"]
    info(
        f"{len(entries)} trials ({len(methods)} method(s) x {args.seeds} seeds) in {total:.1f} s wall: references "
        f"{parts['references']:.1f} s, unlearning {parts['unlearning']:.1f} s, recording {parts['recording']:.1f} s"
    )
    info(
        f"report (bootstraps, {args.resamples} resamples, {args.workers} worker(s)): {report:.1f} s = "
        f"{report / training:.3f} x the training"
    )
    ratio = parts["recording"] / training
    ratio_line("audit_recording_over_training", ratio, "<=0.10")
    summary(
        "bench_audit_overhead",
        f"recording the per-example outputs adds {100 * ratio:.1f}% to the trials' "
        f"training ({parts['recording']:.1f} s of {training:.1f} s); the report takes {report:.1f} s more",
    )
    return {"recording": ratio, "report": report / training}


if __name__ == "__main__":
    run(main)

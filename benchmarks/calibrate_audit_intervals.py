"""How well the audit's intervals over models cover: plain and smoothed bootstrap on Gaussian banks.

For each repetition, fresh banks of ``--models`` unlearned and oracle models are drawn from known
per-example Gaussians (the unlearned ones shifted by ``--shift``); the challenge's forgetting
quality F and the median of KLOM get a 95% interval from the paired bootstrap over models
(:func:`~unlearn_pl.functional.bootstrap_many_over_models`, percentile) and from the smoothed,
recentred one the audit uses (:func:`~unlearn_pl.functional.smoothed_bootstrap_over_models`). The
truth is the mean of the statistic over ``--truth`` further fresh pairs of banks. It prints, per
statistic and method, the coverage (target 0.95) and the mean half-width against the fresh banks'
standard deviation times 1.96 (the half-width an exact interval would have):

    METRIC coverage[klom_median,smoothed] 0.95 >=0.80

Example::

    python benchmarks/calibrate_audit_intervals.py --repetitions 20 --resamples 100
"""

from __future__ import annotations

import argparse

import numpy as np
from _common import base_parser, header, info, metric_line, run, setup_torch, summary


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = base_parser(__doc__.splitlines()[0], data_args=False)
    p.add_argument("--models", type=int, default=32, help="models per bank (N)")
    p.add_argument("--forget", type=int, default=100, help="forget examples (F)")
    p.add_argument("--examples", type=int, default=300, help="examples of KLOM's distribution")
    p.add_argument("--shift", type=float, default=0.5, help="mean shift of the unlearned confidences")
    p.add_argument("--repetitions", type=int, default=20)
    p.add_argument("--resamples", type=int, default=100)
    p.add_argument("--truth", type=int, default=20, help="fresh pairs of banks that estimate the truth")
    p.add_argument("--seed", type=int, default=0)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    from unlearn_pl.functional import (
        bootstrap_many_over_models,
        forgetting_quality,
        klom,
        smoothed_bootstrap_over_models,
    )

    args = parse(argv)
    setup_torch(args.threads)
    header("calibrate_audit_intervals", args)
    rng = np.random.default_rng(args.seed)
    statistics = {
        "forget_quality": (args.forget, lambda u, o: [forgetting_quality(u, o)]),
        "klom_median": (args.examples, lambda u, o: [np.nanmedian(klom(u, o))]),
    }
    out: dict[str, float] = {}
    for name, (examples, statistic) in statistics.items():
        mean, spread = rng.uniform(-2, 8, examples), rng.uniform(0.5, 2, examples)

        def banks(mean=mean, spread=spread, examples=examples):
            n = (args.models, examples)
            return rng.normal(mean + args.shift, spread, n), rng.normal(mean, spread, n)

        fresh = np.array([statistic(*banks())[0] for _ in range(args.truth)])
        truth, exact = fresh.mean(), 1.96 * fresh.std(ddof=1)
        hits = {"plain": [], "smoothed": []}
        widths = {"plain": [], "smoothed": []}
        for _ in range(args.repetitions):
            u, o = banks()
            intervals = {
                "plain": bootstrap_many_over_models(
                    statistic, u, o, n_resamples=args.resamples, paired=True, seed=int(rng.integers(1 << 31))
                )[0],
                "smoothed": smoothed_bootstrap_over_models(
                    statistic, u, o, smooth=[True, True], n_resamples=args.resamples, seed=int(rng.integers(1 << 31))
                )[0],
            }
            for method, e in intervals.items():
                hits[method].append(e.low <= truth <= e.high)
                widths[method].append((e.high - e.low) / 2)
        for method in hits:
            coverage = float(np.mean(hits[method]))
            out[f"coverage[{name},{method}]"] = coverage
            out[f"half_width_over_exact[{name},{method}]"] = float(np.mean(widths[method]) / exact)
            metric_line(f"coverage[{name},{method}]", coverage, ">=0.80")
            info(
                f"{name}, {method} bootstrap: coverage {coverage:.2f} over {args.repetitions} repetitions; half-width "
                f"{np.mean(widths[method]):.4f} vs 1.96 x fresh SD {exact:.4f} (truth {truth:.4f})"
            )
    summary("calibrate_audit_intervals", ", ".join(f"{k} {v:.2f}" for k, v in out.items() if k.startswith("coverage")))
    return out


if __name__ == "__main__":
    run(main)

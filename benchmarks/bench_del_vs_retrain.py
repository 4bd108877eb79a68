"""DEL (localize + reset-finetune) vs retraining the oracle from scratch: wall time and forget accuracy.

For each forget-set selector (random IID and class non-IID, 10% of the training set) this trains
the original model (not timed; cached under ``--cache-dir`` when given), then times, in the same
process and one after the other:

* **retrain**: the oracle trained from the same initial weights on the retain set with the same
  recipe (exactly what :class:`~unlearn_pl.ReferenceModels` does on a cache miss), and
* **DEL**: ``trainer.fit`` of an :class:`~unlearn_pl.UnlearningModule` with the ``DEL``
  localizer and ``ResetFinetune`` (localization at fit start included, no validation),

and reports ``time(DEL) / time(retrain)`` (target ≤ 0.10) and the forget-accuracy gap
``|acc_F(DEL) − acc_F(oracle)|`` in points (target ≤ 2).

Every setting runs for each of ``--seeds`` (the seed sets the split, the initial weights and
DEL's re-initialization): the ratio is total DEL time over total retrain time, the gap is the
mean over seeds of the absolute gap. With a few hundred forget examples one seed's gap is
mostly noise (one example is 0.37 points at 270), so the benchmark also measures the **noise
floor**: the forget-accuracy gap between the oracle and a second, independent retrain (other
initial weights and data order; not timed, ``--no-noise-floor`` skips it). A DEL gap at or
below that floor is as close to the oracle as another retrain gets.

Example (the README's numbers)::

    python benchmarks/bench_del_vs_retrain.py --train-size 3000 --oracle-epochs 30 --del-epochs 2 \
        --forget random classes --budget 0.2 0.1 --del-lr 0.04 0.02 --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import statistics

from _common import (
    accuracy,
    base_parser,
    cache_dir,
    header,
    info,
    metric_line,
    network,
    quiet,
    ratio_line,
    reader,
    run,
    setup_torch,
    summary,
    timed,
    trainer,
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = base_parser(__doc__.splitlines()[0], seed_arg=False)
    p.add_argument("--train-size", type=int, default=3000, help="training examples (before the validation hold-out)")
    p.add_argument("--forget", nargs="+", choices=("random", "classes"), default=["random", "classes"])
    p.add_argument("--forget-fraction", type=float, default=0.1)
    p.add_argument("--forget-classes", type=int, nargs="+", default=[2, 5], help="classes of the non-IID forget set")
    p.add_argument("--oracle-epochs", type=int, default=30, help="epochs of the original/oracle recipe")
    p.add_argument("--recipe-lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--del-epochs", type=int, default=2, help="ResetFinetune epochs")
    # A 2-epoch fine-tune needs other settings than DEL's 30-epoch CIFAR recipe (lr 0.015, budget
    # 0.3), and the two forget sets want different ones: sweep_del_settings.py picked these on
    # seeds 10 and 11, which this benchmark does not report (README, Performance).
    p.add_argument(
        "--budget", type=float, nargs="+", default=[0.2, 0.1], help="DEL budget: one value, or one per --forget entry"
    )
    p.add_argument(
        "--del-lr",
        type=float,
        nargs="+",
        default=[0.04, 0.02],
        help="ResetFinetune lr: one value, or one per --forget entry",
    )
    p.add_argument(
        "--seeds",
        type=int,
        nargs="+",
        default=[0, 1, 2],
        help="one run per seed (split, initial weights, DEL's re-initialization)",
    )
    p.add_argument(
        "--no-noise-floor",
        dest="noise_floor",
        action="store_false",
        help="skip the second, independent retrain that measures the oracle-to-oracle gap",
    )
    p.add_argument("--cache-dir", default=None, help="cache of the original model (default: a fresh temp dir)")
    args = p.parse_args(argv)
    for name in ("budget", "del_lr"):
        values = getattr(args, name)
        if len(values) not in (1, len(args.forget)):
            p.error(
                f"--{name.replace('_', '-')} takes one value or one per --forget entry ({len(args.forget)}); got {values}"
            )
        setattr(
            args, name, dict(zip(args.forget, values * len(args.forget) if len(values) == 1 else values, strict=True))
        )
    return args


def one_setting(args: argparse.Namespace, selector_name: str, seed: int, cache: str) -> dict[str, float]:
    """Time retrain vs DEL for one forget selector and seed; returns times and accuracies."""
    from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
    from unlearn_pl.data import ClassForget, RandomForget
    from unlearn_pl.localizers import DEL
    from unlearn_pl.references import train_classifier
    from unlearn_pl.unlearners import ResetFinetune

    selector = (
        RandomForget(args.forget_fraction)
        if selector_name == "random"
        else ClassForget(args.forget_classes, size=args.forget_fraction)
    )
    dm = UnlearningDataModule(
        reader(args.dataset), selector, train_size=args.train_size, batch_size=args.batch_size, seed=seed
    )
    dm.setup("fit")
    recipe = TrainingRecipe(epochs=args.oracle_epochs, lr=args.recipe_lr, batch_size=args.batch_size, accelerator="cpu")
    initial = network(args.width, seed)
    module = UnlearningModule(
        network=copy.deepcopy(initial),
        localizer=DEL(budget=args.budget[selector_name]),
        unlearner=ResetFinetune(lr=args.del_lr[selector_name], seed=seed),
        references=ReferenceModels(recipe=recipe, oracle=False, cache_dir=cache),
        metrics=[],
        report=False,
    )
    module.prepare_models(dm)  # the original: trained or loaded from the cache, not timed
    original = module.reference("original")

    # Retraining from scratch, exactly as ReferenceModels trains the oracle on a cache miss.
    oracle = copy.deepcopy(initial)
    loader = dm.dataloader("retain", shuffle=True, batch_size=recipe.batch_size, seed=recipe.seed, drop_last=True)
    t_retrain, _ = timed(lambda: train_classifier(oracle, loader, recipe))

    fit_trainer = trainer(max_epochs=args.del_epochs, limit_val_batches=0)
    t_del, _ = timed(lambda: fit_trainer.fit(module, datamodule=dm))

    forget, test = dm.dataloader("forget"), dm.dataloader("test")
    out = {
        "t_retrain": t_retrain,
        "t_del": t_del,
        "forget_original": accuracy(original, forget),
        "forget_oracle": accuracy(oracle, forget),
        "forget_del": accuracy(module.network, forget),
        "test_oracle": accuracy(oracle, test),
        "test_del": accuracy(module.network, test),
        "retain": len(dm.indices("retain")),
        "forget": len(dm.indices("forget")),
    }
    if args.noise_floor:
        # An independent retrain: other initial weights and shuffling order, same data and recipe.
        other_seed = seed + 1000
        second = network(args.width, other_seed)
        other = dataclasses.replace(recipe, seed=other_seed)
        train_classifier(
            second,
            dm.dataloader("retain", shuffle=True, batch_size=other.batch_size, seed=other_seed, drop_last=True),
            other,
        )
        out["forget_oracle2"] = accuracy(second, forget)
    return out


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse(argv)
    setup_torch(args.threads)
    header("bench_del_vs_retrain", args)
    results: dict[str, dict[str, float]] = {}
    with quiet(), cache_dir(args.cache_dir) as cache:
        for name in args.forget:
            runs = []
            for seed in args.seeds:
                r = one_setting(args, name, seed, cache)
                runs.append(r)
                floor = f", independent retrain {r['forget_oracle2']:.4f}" if "forget_oracle2" in r else ""
                info(
                    f"[{name}, seed {seed}] retain {r['retain']}, forget {r['forget']}: retrain {r['t_retrain']:.1f} s, "
                    f"DEL {r['t_del']:.1f} s; forget acc original {r['forget_original']:.4f}, "
                    f"oracle {r['forget_oracle']:.4f}, DEL {r['forget_del']:.4f}{floor}; "
                    f"test acc oracle {r['test_oracle']:.4f}, DEL {r['test_del']:.4f}"
                )
            gaps = [100 * (r["forget_del"] - r["forget_oracle"]) for r in runs]
            agg = {
                "ratio": sum(r["t_del"] for r in runs) / sum(r["t_retrain"] for r in runs),
                "gap_points": statistics.fmean(abs(g) for g in gaps),
                "signed_gap_points": statistics.fmean(gaps),
                "test_drop_points": statistics.fmean(100 * (r["test_oracle"] - r["test_del"]) for r in runs),
            }
            if args.noise_floor:
                agg["noise_floor_points"] = statistics.fmean(
                    abs(100 * (r["forget_oracle2"] - r["forget_oracle"])) for r in runs
                )
            results[name] = agg
            info(
                f"[{name}] over seeds {args.seeds}: forget-acc gap DEL - oracle per seed "
                f"{', '.join(f'{g:+.1f}' for g in gaps)} pts (mean |gap| {agg['gap_points']:.2f}); "
                + (
                    f"oracle vs independent retrain mean |gap| {agg['noise_floor_points']:.2f} pts; "
                    if args.noise_floor
                    else ""
                )
                + f"test acc DEL {agg['test_drop_points']:.2f} pts below the oracle"
            )
            ratio_line(f"del_time_over_retrain[{name}]", agg["ratio"], "<=0.10")
            # Not a ratio (a gap may be exactly 0): a METRIC line, which the smoke test only parses.
            metric_line(f"forget_acc_gap_points[{name}]", agg["gap_points"], "<=2.0")
    parts = [
        f"{n}: DEL/retrain {r['ratio']:.3f}x, forget-acc gap {r['gap_points']:.1f} pts"
        + (f" (independent retrain: {r['noise_floor_points']:.1f})" if "noise_floor_points" in r else "")
        for n, r in results.items()
    ]
    summary("bench_del_vs_retrain", "; ".join(parts) + f" over {len(args.seeds)} seed(s) (targets <= 0.10x, <= 2 pts)")
    return results


if __name__ == "__main__":
    run(main)

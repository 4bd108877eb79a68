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

Example (the README's numbers)::

    python benchmarks/bench_del_vs_retrain.py --train-size 3000 --oracle-epochs 30 --del-epochs 2 \
        --budget 0.2 --del-lr 0.03
"""

from __future__ import annotations

import argparse
import copy

from _common import (
    accuracy, base_parser, cache_dir, header, info, metric_line, network, quiet, ratio_line, reader, run, setup_torch,
    summary, timed, trainer,
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--train-size", type=int, default=3000, help="training examples (before the validation hold-out)")
    p.add_argument("--forget", nargs="+", choices=("random", "classes"), default=["random", "classes"])
    p.add_argument("--forget-fraction", type=float, default=0.1)
    p.add_argument("--forget-classes", type=int, nargs="+", default=[2, 5], help="classes of the non-IID forget set")
    p.add_argument("--oracle-epochs", type=int, default=30, help="epochs of the original/oracle recipe")
    p.add_argument("--recipe-lr", type=float, default=0.05)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--del-epochs", type=int, default=2, help="ResetFinetune epochs")
    # A 2-epoch fine-tune needs a larger step than DEL's 30-epoch CIFAR recipe (lr 0.015, budget
    # 0.3): with those, DEL under-fits here (forget acc 3.7 / 9.3 points below the oracle's).
    # 0.03 / 0.2 came from a small sweep on this split (see the README's Performance section).
    p.add_argument("--del-lr", type=float, default=0.03)
    p.add_argument("--budget", type=float, default=0.2)
    p.add_argument("--cache-dir", default=None, help="cache of the original model (default: a fresh temp dir)")
    return p.parse_args(argv)


def one_setting(args: argparse.Namespace, selector_name: str, cache: str) -> dict[str, float]:
    """Time retrain vs DEL for one forget selector; returns times and accuracies."""
    from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
    from unlearn_pl.classifier import train_classifier
    from unlearn_pl.data import ClassForget, RandomForget
    from unlearn_pl.localizers import DEL
    from unlearn_pl.unlearners import ResetFinetune

    selector = (RandomForget(args.forget_fraction) if selector_name == "random"
                else ClassForget(args.forget_classes, size=args.forget_fraction))
    dm = UnlearningDataModule(reader(args.dataset), selector, train_size=args.train_size,
                              batch_size=args.batch_size, seed=args.seed)
    dm.setup("fit")
    recipe = TrainingRecipe(epochs=args.oracle_epochs, lr=args.recipe_lr, batch_size=args.batch_size, accelerator="cpu")
    initial = network(args.width, args.seed)
    module = UnlearningModule(
        network=copy.deepcopy(initial),
        localizer=DEL(budget=args.budget),
        unlearner=ResetFinetune(lr=args.del_lr, seed=args.seed),
        references=ReferenceModels(recipe=recipe, oracle=False, cache_dir=cache),
        metrics=[], report=False,
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
    return {
        "t_retrain": t_retrain, "t_del": t_del,
        "forget_original": accuracy(original, forget), "forget_oracle": accuracy(oracle, forget),
        "forget_del": accuracy(module.network, forget),
        "test_oracle": accuracy(oracle, test), "test_del": accuracy(module.network, test),
        "retain": len(dm.indices("retain")), "forget": len(dm.indices("forget")),
    }


def main(argv: list[str] | None = None) -> dict[str, dict[str, float]]:
    args = parse(argv)
    setup_torch(args.threads)
    header("bench_del_vs_retrain", args)
    results: dict[str, dict[str, float]] = {}
    with quiet(), cache_dir(args.cache_dir) as cache:
        for name in args.forget:
            r = one_setting(args, name, cache)
            results[name] = r
            info(f"[{name}] retain {r['retain']}, forget {r['forget']}: retrain {r['t_retrain']:.1f} s, "
                 f"DEL {r['t_del']:.1f} s; forget acc original {r['forget_original']:.4f}, "
                 f"oracle {r['forget_oracle']:.4f}, DEL {r['forget_del']:.4f}; "
                 f"test acc oracle {r['test_oracle']:.4f}, DEL {r['test_del']:.4f}")
            r["ratio"] = r["t_del"] / r["t_retrain"]
            r["gap_points"] = abs(r["forget_del"] - r["forget_oracle"]) * 100
            ratio_line(f"del_time_over_retrain[{name}]", r["ratio"], "<=0.10")
            # Not a ratio (a gap may be exactly 0): a METRIC line, which the smoke test only parses.
            metric_line(f"forget_acc_gap_points[{name}]", r["gap_points"], "<=2.0")
    parts = [f"{n}: DEL/retrain {r['ratio']:.3f}x, forget-acc gap {r['gap_points']:.1f} pts" for n, r in results.items()]
    summary("bench_del_vs_retrain", "; ".join(parts) + " (targets <= 0.10x, <= 2 pts)")
    return results


if __name__ == "__main__":
    run(main)

"""What the MIA and decision-region callbacks add to a plain validation epoch.

One prepared :class:`~unlearn_pl.UnlearningModule` (original + oracle, trained with a short
recipe and cached, not timed) is validated with ``SplitAccuracy``, ``LossAttack``,
``MIAEfficacy`` and ``DecisionRegions`` (scores; plots only with ``--plot-planes``), twice with the
same callbacks. The first evaluates all three models everywhere; the second is what every later
validation epoch of a fit does: the frozen reference models' per-example results, attack results
and region grids are reused, so only the unlearned model is evaluated, attacked and predicted.
Each callback's ``on_validation_epoch_end`` is timed inside the run; the rest is the **plain**
validation epoch (the evaluated models × retain, forget, val and test, plus ``SplitAccuracy``). Timing both inside one run keeps the ratio meaningful on
a machine whose load changes from minute to minute. It reports ``(plain + added) / plain``
for MIA, MIA + regions, and the repeated evaluation, and the decision regions' cost per grid point
relative to the validation epoch's cost per example.

The targets:

- **MIA** adds ≤ 20 % to a validation epoch (``mia_validation_over_plain`` ≤ 1.20), judged at
  ``--width`` ≥ 0.5: at smaller widths the plain epoch is so cheap that the attacks' fixed cost
  (scikit-learn fits) dominates, and the ratio says little about a real study.
- **Decision regions** stay off during ``fit`` by default (``DecisionRegions(during_fit=False)``:
  they run once, in the final validation). Their target is a grid point costing ≤ 1.0× a
  validated example (``regions_cost_per_point_over_validation_per_example`` ≤ 1.0): how many
  grid points to ask for (``3 models · 2 · num_planes · resolution²``) is the user's choice, so
  the MIA + regions ratios are reported without a target.

Example::

    python benchmarks/bench_callbacks.py --train-size 10000 --num-planes 10 --resolution 50
"""

from __future__ import annotations

import argparse

from _common import (
    base_parser,
    cache_dir,
    header,
    info,
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
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--train-size", type=int, default=10000, help="training examples (the test split is used whole)")
    p.add_argument("--recipe-epochs", type=int, default=2, help="epochs of the (untimed) reference models")
    p.add_argument("--batch-size", type=int, default=256, help="evaluation batch size")
    p.add_argument("--num-planes", type=int, default=10)
    p.add_argument("--resolution", type=int, default=50)
    p.add_argument(
        "--region-batch-size", type=int, default=256, help="DecisionRegions(batch_size=...): grid points per forward"
    )
    p.add_argument(
        "--mia-max-samples",
        type=int,
        default=None,
        help="MIAEfficacy(max_samples=...): cap of each SVC training group (default: none, as published)",
    )
    p.add_argument("--plot-planes", type=int, default=0, help="decision-region plots (0: scores only)")
    p.add_argument("--plot-resolution", type=int, default=150)
    p.add_argument("--cache-dir", default=None, help="cache of the reference models (default: a fresh temp dir)")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    import tempfile

    import numpy as np

    from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
    from unlearn_pl.data import RandomForget
    from unlearn_pl.metrics import DecisionRegions, LossAttack, MIAEfficacy, SplitAccuracy, loss_attack, mia_efficacy

    args = parse(argv)
    setup_torch(args.threads)
    header("bench_callbacks", args)
    with quiet(), cache_dir(args.cache_dir) as cache, tempfile.TemporaryDirectory() as root:

        def data() -> UnlearningDataModule:
            return UnlearningDataModule(
                reader(args.dataset),
                RandomForget(0.1),
                train_size=args.train_size,
                batch_size=128,
                eval_batch_size=args.batch_size,
                seed=args.seed,
            )

        dm = data()
        recipe = TrainingRecipe(epochs=args.recipe_epochs, lr=0.05, batch_size=128, accelerator="cpu")
        module = UnlearningModule(
            network=network(args.width, args.seed),
            references=ReferenceModels(recipe=recipe, cache_dir=cache),
            report=False,
        )
        module.prepare_models(dm)  # untimed
        # The unlearned network differs from the original (as after unlearning), so the
        # decision regions compare three distinct models.
        module.network.load_state_dict(module.reference("oracle").state_dict())
        with __import__("torch").no_grad():
            for p in module.network.parameters():
                p.mul_(0.9)

        def validate(metrics: list, datamodule: UnlearningDataModule) -> tuple[float, dict[str, float]]:
            """Wall time of ``trainer.validate`` and the time spent in each callback's
            ``on_validation_epoch_end`` during it (measured inside the same run)."""
            spent: dict[str, float] = {}
            for cb in metrics:
                hook = type(cb).on_validation_epoch_end.__get__(cb)  # the class's hook, never a wrapper
                name = type(cb).__name__

                def timed_hook(trainer_, pl_module, _hook=hook, _name=name):
                    seconds, _ = timed(lambda: _hook(trainer_, pl_module))
                    spent[_name] = spent.get(_name, 0.0) + seconds

                cb.on_validation_epoch_end = timed_hook  # an instance attribute: what Lightning calls
            module.metrics = metrics
            t = trainer(default_root_dir=root, limit_train_batches=0)
            return timed(lambda: t.validate(module, datamodule=datamodule, verbose=False))[0], spent

        def regions() -> DecisionRegions:
            return DecisionRegions(
                num_planes=args.num_planes,
                resolution=args.resolution,
                plot=args.plot_planes > 0,
                plot_planes=args.plot_planes,
                plot_resolution=args.plot_resolution,
                batch_size=args.region_batch_size,
            )

        # Warm-up (first-call allocations, oneDNN kernel selection). The module would reuse the
        # reference models' results it computes (same weights, same data): they are dropped after.
        validate([SplitAccuracy()], data())
        module.reference_evaluation.held = None  # the first timed evaluation below evaluates every model
        # The attacks import scikit-learn lazily: pay that import before timing, as a long run would.
        rng = np.random.default_rng(0)
        loss_attack(rng.random(20), rng.random(20))
        mia_efficacy(rng.random(20), rng.random(20), rng.random(5))
        # SplitAccuracy comes first, so the per-example sync it triggers counts as the plain epoch.
        metrics = [SplitAccuracy(), LossAttack(), MIAEfficacy(max_samples=args.mia_max_samples), regions()]
        t_first, spent_first = validate(metrics, dm)
        # A second evaluation with the same callbacks, as at every validation epoch of a fit with
        # ``during_fit=True``: the frozen reference models' grids are reused.
        t_again, spent_again = validate(metrics, dm)
    n_eval = sum(len(dm.indices(s)) for s in ("retain", "forget", "val", "test"))
    n_models = 3
    n_grid = n_models * 2 * args.num_planes * args.resolution**2
    n_plot = n_models * args.plot_planes * args.plot_resolution**2

    def split(total: float, spent: dict[str, float]) -> tuple[float, float, float]:
        mia = spent.get("LossAttack", 0.0) + spent.get("MIAEfficacy", 0.0)
        dr = spent.get("DecisionRegions", 0.0)
        return total - mia - dr, mia, dr

    plain, mia, dr = split(t_first, spent_first)
    plain2, mia2, dr2 = split(t_again, spent_again)
    info(
        f"first validate {t_first:.2f} s: plain epoch {plain:.2f} s ({n_models} models x {n_eval} examples), "
        f"LossAttack {spent_first.get('LossAttack', 0):.2f} s, MIAEfficacy {spent_first.get('MIAEfficacy', 0):.2f} s, "
        f"DecisionRegions {dr:.2f} s ({n_grid} grid points + {n_plot} plot points)"
    )
    info(
        f"second validate {t_again:.2f} s: plain epoch {plain2:.2f} s (1 model: reference results reused), "
        f"MIA {mia2:.2f} s, DecisionRegions {dr2:.2f} s (reference attacks and grids reused)"
    )
    r_mia, r_all, r_again = (plain + mia) / plain, t_first / plain, t_again / plain2
    per_point = (dr / max(n_grid + n_plot, 1)) / (plain / (n_models * n_eval))
    ratio_line("mia_validation_over_plain", r_mia, "<=1.20")
    info(
        f"MIA + regions: {r_all:.3f}x a plain epoch, {r_again:.3f}x when repeated (no target: the grid size is the user's)"
    )
    ratio_line("regions_cost_per_point_over_validation_per_example", max(per_point, 1e-6), "<=1.0")
    judged = "judged" if args.width >= 0.5 else "not judged: target applies at width >= 0.5"
    summary(
        "bench_callbacks",
        f"MIA adds {100 * (r_mia - 1):.1f}% to a plain validation epoch (target <= 20%, {judged}); "
        f"MIA + decision regions add {100 * (r_all - 1):.1f}% ({100 * (r_again - 1):.1f}% when repeated); "
        f"a grid point costs {per_point:.2f}x an evaluated example (target <= 1.0)",
    )
    return {
        "plain": plain,
        "mia": mia,
        "regions": dr,
        "regions_again": dr2,
        "ratio_mia": r_mia,
        "ratio_all": r_all,
        "ratio_again": r_again,
        "per_point": per_point,
    }


if __name__ == "__main__":
    run(main)

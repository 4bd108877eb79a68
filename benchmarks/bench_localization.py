"""DEL localization vs one plain forward+backward pass over the forget set.

Both sides iterate the same forget-set loader of an :class:`~unlearn_pl.UnlearningDataModule`
with the network in eval mode (DEL's setting). The baseline is the minimum work DEL must do:
``cross_entropy(model(x), y, reduction="sum").backward()`` per batch. DEL adds the per-scalar
scores, the channel grouping with top-h means, the global ranking and the masks. The two
alternate ``--repeats`` times and the medians are compared (target ≤ 1.5×).

Example::

    python benchmarks/bench_localization.py --forget-size 2000 --width 0.125 --repeats 5
"""

from __future__ import annotations

import argparse

from _common import (
    base_parser,
    header,
    info,
    median,
    network,
    quiet,
    ratio_line,
    reader,
    run,
    setup_torch,
    summary,
    timed,
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--forget-size", type=int, default=2000, help="forget-set examples")
    p.add_argument("--train-size", type=int, default=20000, help="training examples the forget set is drawn from")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--budget", type=float, default=0.3)
    p.add_argument("--repeats", type=int, default=5)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    import torch
    import torch.nn.functional as F

    from unlearn_pl import UnlearningDataModule
    from unlearn_pl.data import RandomForget
    from unlearn_pl.functional.grouping import masks_from_scores
    from unlearn_pl.functional.scores import criticality_scores
    from unlearn_pl.localizers import DEL

    args = parse(argv)
    setup_torch(args.threads)
    header("bench_localization", args)
    with quiet():
        dm = UnlearningDataModule(
            reader(args.dataset),
            RandomForget(args.forget_size),
            train_size=args.train_size,
            batch_size=args.batch_size,
            seed=args.seed,
        )
        dm.setup("fit")
    loader = dm.dataloader("forget")
    model = network(args.width, args.seed).eval()
    localizer = DEL(budget=args.budget)

    def plain() -> None:
        for _, x, y in loader:
            F.cross_entropy(model(x), y, reduction="sum").backward()
        model.zero_grad(set_to_none=True)

    def localize() -> None:
        localizer.localize(model, loader)

    plain()  # warm-up: first-call allocations and oneDNN kernel selection
    localize()
    t_plain: list[float] = []
    t_del: list[float] = []
    for _ in range(args.repeats):
        t_plain.append(timed(plain)[0])
        t_del.append(timed(localize)[0])
    # Where DEL's time goes: the gradient pass vs the grouping/ranking on the scores.
    t_scores, scores = timed(lambda: criticality_scores(model, loader))
    t_masks, _ = timed(lambda: masks_from_scores(scores, args.budget))
    n_params = sum(p.numel() for p in model.parameters())
    info(f"forget set {len(dm.indices('forget'))} examples, {n_params} parameters in {len(scores)} tensors")
    info(
        f"median plain fwd+bwd {median(t_plain) * 1e3:.1f} ms, DEL localize {median(t_del) * 1e3:.1f} ms "
        f"(of which scores {t_scores * 1e3:.1f} ms, grouping+selection {t_masks * 1e3:.1f} ms, one run each)"
    )
    ratio = median(t_del) / median(t_plain)
    ratio_line("del_localize_over_fwd_bwd", ratio, "<=1.5")
    summary(
        "bench_localization",
        f"DEL localization {ratio:.3f}x one forward+backward pass over the forget set (target <= 1.5x)",
    )
    torch.set_grad_enabled(True)
    return {"ratio": ratio, "plain": median(t_plain), "del": median(t_del), "masks": t_masks}


if __name__ == "__main__":
    run(main)

"""A Lightning unlearning epoch vs a plain PyTorch loop doing the same work.

Same network (the original's weights), same DEL mask, same retain-set loader, same optimizer
recipe. The Lightning side is ``trainer.fit`` of an :class:`~unlearn_pl.UnlearningModule` with
``ResetFinetune`` for one epoch (the epoch is timed from ``on_train_epoch_start`` to
``on_train_epoch_end``, so localization and trainer set-up are excluded). The plain side does,
per batch: forward, cross-entropy, ``zero_grad``, backward, zeroing of unselected gradients
(:class:`~unlearn_pl.functional.masks.MaskGuard`), SGD step, restoring unselected scalars, and
the cosine scheduler step. The two alternate ``--repeats`` times; the ratio of median
throughputs ``lightning / plain`` is reported (target ≥ 0.95).

Example::

    python benchmarks/bench_lightning_overhead.py --train-size 3000 --repeats 3
"""

from __future__ import annotations

import argparse
import copy
import time

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
    trainer,
)


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = base_parser(__doc__.splitlines()[0])
    p.add_argument("--train-size", type=int, default=3000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--budget", type=float, default=0.3)
    p.add_argument("--repeats", type=int, default=3)
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> dict[str, float]:
    import lightning.pytorch as pl
    import torch
    import torch.nn.functional as F

    from unlearn_pl import ReferenceModels, UnlearningDataModule, UnlearningModule
    from unlearn_pl.data import RandomForget
    from unlearn_pl.functional.init import reset_selected_
    from unlearn_pl.functional.masks import MaskGuard
    from unlearn_pl.localizers import DEL
    from unlearn_pl.unlearners import ResetFinetune
    from unlearn_pl.utils.optimizers import sgd_cosine

    args = parse(argv)
    setup_torch(args.threads)
    header("bench_lightning_overhead", args)
    with quiet():
        dm = UnlearningDataModule(
            reader(args.dataset),
            RandomForget(0.1),
            train_size=args.train_size,
            batch_size=args.batch_size,
            seed=args.seed,
        )
        dm.setup("fit")
    # The work does not depend on the weights' values; a seeded untrained network stands in
    # for the original, so no reference model needs training.
    start = network(args.width, args.seed)
    masks = DEL(budget=args.budget).localize(copy.deepcopy(start), dm.dataloader("forget"))
    n_examples = len(dm.indices("retain"))

    class EpochTimer(pl.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            self.start = time.perf_counter()

        def on_train_epoch_end(self, trainer, pl_module):
            self.seconds = time.perf_counter() - self.start

    def lightning_epoch() -> float:
        localizer = DEL(budget=args.budget)
        localizer.masks = {n: m.clone() for n, m in masks.items()}  # skip re-localizing: same mask
        module = UnlearningModule(
            network=copy.deepcopy(start),
            localizer=localizer,
            unlearner=ResetFinetune(),
            references=ReferenceModels(oracle=False),
            metrics=[],
            report=False,
        )
        # The reference models are not used by training; mark the module prepared without training them.
        module._frozen.hold({"original": copy.deepcopy(start)})
        timer = EpochTimer()
        with quiet():
            trainer(max_epochs=1, limit_val_batches=0, callbacks=[timer]).fit(module, datamodule=dm)
        return timer.seconds

    def plain_epoch() -> float:
        model = copy.deepcopy(start)
        reset_selected_(model, masks, seed=0)
        guard = MaskGuard(model, masks)
        loader = dm.unlearning_dataloader(("retain",))  # the loader the Lightning side gets
        iterator = iter(loader)
        cfg = sgd_cosine(model.parameters(), lr=0.015, total_steps=len(loader), momentum=0.9, final_lr_fraction=0.01)
        opt, sched = cfg["optimizer"], cfg["lr_scheduler"]["scheduler"]
        model.train()
        begin = time.perf_counter()
        for batch, _, _ in iterator:
            _, x, y = batch["retain"]
            loss = F.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            guard.zero_grads()
            opt.step()
            guard.restore()
            sched.step()
            float(loss.detach())  # Lightning reads the loss for its progress bar / logging: so do we
        return time.perf_counter() - begin

    plain_epoch()  # warm-up (allocator, oneDNN kernels)
    t_light: list[float] = []
    t_plain: list[float] = []
    for _ in range(args.repeats):
        t_plain.append(plain_epoch())
        t_light.append(lightning_epoch())
    info(
        f"retain set {n_examples} examples/epoch; median epoch plain {median(t_plain):.3f} s "
        f"({n_examples / median(t_plain):.0f} ex/s), Lightning {median(t_light):.3f} s "
        f"({n_examples / median(t_light):.0f} ex/s)"
    )
    ratio = median(t_plain) / median(t_light)  # = throughput(Lightning) / throughput(plain)
    ratio_line("lightning_throughput_over_plain", ratio, ">=0.95")
    summary(
        "bench_lightning_overhead", f"Lightning epoch throughput {ratio:.3f}x the plain PyTorch loop (target >= 0.95x)"
    )
    torch.set_grad_enabled(True)
    return {"ratio": ratio, "plain": median(t_plain), "lightning": median(t_light)}


if __name__ == "__main__":
    run(main)

"""Batched vs per-example fetching in the data module's loaders (the ``__getitems__`` fix).

``IndexedSubset.__getitems__`` lets PyTorch's ``DataLoader`` fetch a whole batch with one
gather from an in-memory :class:`~unlearn_pl.data.ArrayDataset`. This benchmark iterates the same
loaders (train with mislabeled relabels, and test) once through that path and once through
per-example ``__getitem__`` calls (the dataset wrapped so ``__getitems__`` is hidden),
alternating ``--repeats`` times, and reports the ratio of median epoch times
``per-item / batched`` (> 1: the batched path is faster) next to a training step's time, so
the share of a step spent loading is visible.

Example::

    python benchmarks/bench_loader.py --train-size 20000 --repeats 5
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
    p.add_argument("--train-size", type=int, default=20000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--repeats", type=int, default=5)
    return p.parse_args(argv)


class PerItem:
    """Wraps a dataset without ``__getitems__``: the ``DataLoader`` falls back to ``__getitem__``."""

    def __init__(self, dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, k: int):
        return self.dataset[k]


def main(argv: list[str] | None = None) -> dict[str, float]:
    import torch
    import torch.nn.functional as F
    from torch.utils.data import DataLoader

    from unlearn_pl import UnlearningDataModule
    from unlearn_pl.data import Mislabeled

    args = parse(argv)
    setup_torch(args.threads)
    header("bench_loader", args)
    with quiet():
        dm = UnlearningDataModule(
            reader(args.dataset),
            Mislabeled(0.1),
            train_size=args.train_size,
            batch_size=args.batch_size,
            seed=args.seed,
        )
        dm.setup("fit")
    out: dict[str, float] = {}
    per_batch: dict[str, float] = {}
    for which in ("train", "test"):
        batched = dm.dataloader(which)
        per_item = DataLoader(PerItem(dm.split_dataset(which)), batch_size=args.batch_size)  # type: ignore[arg-type]
        t_b: list[float] = []
        t_p: list[float] = []
        for _ in range(args.repeats):
            t_p.append(timed(lambda loader=per_item: sum(1 for _ in loader))[0])
            t_b.append(timed(lambda loader=batched: sum(1 for _ in loader))[0])
        n = len(batched)
        info(
            f"{which}: {n} batches of {args.batch_size}; median epoch per-item {median(t_p) * 1e3:.0f} ms "
            f"({median(t_p) / n * 1e3:.2f} ms/batch), batched {median(t_b) * 1e3:.0f} ms ({median(t_b) / n * 1e3:.2f} ms/batch)"
        )
        out[which] = median(t_p) / median(t_b)
        per_batch[which] = median(t_b) / n
        ratio_line(f"loader_per_item_over_batched[{which}]", out[which], ">=1.0")
    # For scale: one training step of the benchmark network on one batch.
    model = network(args.width, args.seed).train()
    _, x, y = next(iter(dm.dataloader("train")))
    F.cross_entropy(model(x), y).backward()  # warm-up
    t_step = median([timed(lambda: F.cross_entropy(model(x), y).backward())[0] for _ in range(3)])
    info(f"one forward+backward step on a batch: {t_step * 1e3:.1f} ms")
    torch.set_grad_enabled(True)
    summary(
        "bench_loader",
        f"batched fetching {out['train']:.2f}x (train) / {out['test']:.2f}x (test) faster than per-item; "
        f"loading a training batch costs {100 * per_batch['train'] / t_step:.2f}% of a training step",
    )
    return out


if __name__ == "__main__":
    run(main)

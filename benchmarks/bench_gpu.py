"""Training throughput on a GPU: reference training, an unlearning epoch and a shadow model, each
against a plain PyTorch loop on the same device, precision and device-resident data.

The data is CIFAR-shaped and synthetic (3×32×32 normalized random images, 10 classes; offline), the
network a CIFAR ResNet-18 at ``--width`` (1: the papers' network). For every precision of
``--precisions`` and for device-resident data (``device_data=True``) and the DataLoader path:

* **plain**: a hand-written loop: the training images on the device, each batch index-selected
  there from a per-epoch permutation, ``torch.autocast`` for mixed precision, SGD with the
  package's cosine schedule. The practical limit of the device.
* **reference**: :func:`~unlearn_pl.references.train_classifier` with a :class:`~unlearn_pl.TrainingRecipe`
  of that precision (the original model's training).
* **unlearning**: ``trainer.fit`` of an :class:`~unlearn_pl.UnlearningModule` with ``Finetune``
  (cross-entropy on the retain set, the plain loop's work) and no localization or metrics.
* **shadow**: one U-LiRA shadow model (:func:`~unlearn_pl.ulira.shadow.train_and_unlearn`):
  its reference training on half the pool, then its unlearning, timed end to end with every
  set-up it pays (a bank pays it K + T times).

Throughput is images per second. Plain, reference and unlearning are timed per epoch from the
second epoch on (the first pays allocation, kernel selection and compilation); the shadow model
from start to end. Every side is deterministic (``torch.use_deterministic_algorithms``), as the
reference trainers are. Ratios: each side with device data over the plain loop of its precision
(target ≥ 0.9), each side with device data over the same side on the DataLoader path (target ≥ 2,
for CIFAR-sized data at batch ≥ 256), and the plain loop in bf16-mixed over fp32 (target ≥ 1: mixed
precision must not be slower). Absolute images/s of every side are printed above the ratios.

Example (a GPU node)::

    python benchmarks/bench_gpu.py                       # 50 000 images, batch 512, ResNet-18 width 1
    python benchmarks/bench_gpu.py --channels-last --compile

On a CPU it runs at a tiny size (``--device cpu --train-size 256 --width 0.0625``); its figures
say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from _common import base_parser, header, info, quiet, ratio_line, run, setup_torch, summary

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")


def parse(argv: list[str] | None) -> argparse.Namespace:
    p = base_parser(__doc__.splitlines()[0], data_args=False)
    p.add_argument("--device", choices=("auto", "cuda", "cpu"), default="auto", help="auto: cuda when available")
    p.add_argument("--train-size", type=int, default=50_000, help="synthetic training images (CIFAR-10: 50 000)")
    p.add_argument("--width", type=float, default=1.0, help="CIFAR ResNet-18 width scale")
    p.add_argument("--batch-size", type=int, default=512)
    p.add_argument("--epochs", type=int, default=3, help="epochs per measurement; all but the first are timed")
    p.add_argument("--precisions", nargs="+", choices=PRECISIONS, default=["32-true", "bf16-mixed"])
    p.add_argument("--channels-last", action="store_true", help="channels-last weights on every side")
    p.add_argument("--compile", action="store_true", help="torch.compile on every side")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.epochs < 2:
        p.error(f"--epochs must be >= 2 (the first epoch is not timed); got {args.epochs}")
    return args


class SyntheticCIFAR:
    """A CIFAR-shaped in-memory dataset reader: normalized random images, uniform random labels."""

    num_classes, in_channels, name = 10, 3, "synthetic-cifar"

    def __init__(self, train_size: int, seed: int) -> None:
        self.sizes, self.seed = {"train": train_size, "test": 256}, seed

    def load(self, split: str) -> Any:
        import torch

        from unlearn_pl.data import ArrayDataset

        g = torch.Generator().manual_seed(self.seed + (split == "test"))
        n = self.sizes[split]
        return ArrayDataset(torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g), self.name)


def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def epoch_timer(device: Any) -> Any:
    """A callback recording each epoch's wall time and images (synchronized with the device)."""
    import lightning.pytorch as pl

    class EpochTimer(pl.Callback):
        def __init__(self) -> None:
            self.epochs: list[tuple[float, int]] = []

        def on_train_epoch_start(self, trainer, pl_module) -> None:
            synchronize(device)
            self.start, self.images = time.perf_counter(), 0

        def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
            self.images += sum(len(b[2]) for b in (batch.values() if isinstance(batch, dict) else [batch]))

        def on_train_epoch_end(self, trainer, pl_module) -> None:
            synchronize(device)
            self.epochs.append((time.perf_counter() - self.start, self.images))

        def throughput(self) -> float:
            return statistics.median(n / t for t, n in self.epochs[1:])

    return EpochTimer()


def plain_throughput(
    network: Any, images: Any, labels: Any, args: argparse.Namespace, precision: str, device: Any
) -> float:
    """Images/s of the hand-written loop (median over epochs after the first)."""
    import contextlib
    import copy

    import torch
    import torch.nn.functional as F

    from unlearn_pl.utils.optimizers import sgd_cosine

    model = copy.deepcopy(network).to(device).train()
    if args.channels_last:
        model.to(memory_format=torch.channels_last)
    step_model = torch.compile(model) if args.compile else model
    batch, n = args.batch_size, len(labels)
    steps = n // batch
    config = sgd_cosine(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4, total_steps=steps * args.epochs)
    optimizer, scheduler = config["optimizer"], config["lr_scheduler"]["scheduler"]
    dtype = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}.get(precision)
    scaler = torch.amp.GradScaler(device.type, enabled=dtype is torch.float16)
    generator = torch.Generator(device).manual_seed(args.seed)
    rates = []
    for _ in range(args.epochs):
        synchronize(device)
        start = time.perf_counter()
        order = torch.randperm(n, device=device, generator=generator)
        for b in range(steps):
            index = order[b * batch : (b + 1) * batch]
            with torch.autocast(device.type, dtype=dtype) if dtype else contextlib.nullcontext():
                loss = F.cross_entropy(step_model(images[index]), labels[index])
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
        synchronize(device)
        rates.append(steps * batch / (time.perf_counter() - start))
    return statistics.median(rates[1:])


def measure(args: argparse.Namespace, precision: str, device_data: bool, device: Any, folder: Path) -> dict[str, float]:
    """Images/s of reference training, an unlearning epoch and one shadow model."""
    import copy

    import lightning.pytorch as pl
    import torch

    from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
    from unlearn_pl.data import RandomForget
    from unlearn_pl.localizers import Full
    from unlearn_pl.models import NetworkExecution, cifar_resnet18
    from unlearn_pl.references import ReferenceData, train_classifier
    from unlearn_pl.ulira.design import shadow_datamodule
    from unlearn_pl.ulira.shadow import make_spec, train_and_unlearn
    from unlearn_pl.unlearners import Finetune

    accelerator = "gpu" if device.type == "cuda" else "cpu"
    tag = f"{precision}-{'device' if device_data else 'loader'}"
    dm = UnlearningDataModule(
        SyntheticCIFAR(args.train_size, args.seed),
        RandomForget(0.1),
        batch_size=args.batch_size,
        seed=args.seed,
        device_data=device_data,
    )
    recipe = TrainingRecipe(
        epochs=args.epochs,
        batch_size=args.batch_size,
        accelerator=accelerator,
        precision=precision,
        compile=args.compile,
        channels_last=args.channels_last,
        seed=args.seed,
    )
    execution = NetworkExecution(compile=args.compile, channels_last=args.channels_last)
    torch.manual_seed(args.seed)
    network = cifar_resnet18(width=args.width, num_classes=10, in_channels=3)
    out: dict[str, float] = {}

    timer = epoch_timer(device)
    original = train_classifier(copy.deepcopy(network), ReferenceData(dm, "train", recipe), recipe, False, [timer])
    out["reference"] = timer.throughput()
    torch.save(original.state_dict(), folder / f"original-{tag}.pt")

    timer = epoch_timer(device)
    module = UnlearningModule(
        copy.deepcopy(network),
        localizer=Full(),
        unlearner=Finetune(lr=0.01),
        metrics=[],
        references=ReferenceModels(original=str(folder / f"original-{tag}.pt"), oracle=False),
        report=False,
        execution=execution,
    )
    module.prepare_models(dm)
    pl.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_epochs=args.epochs,
        limit_val_batches=0,
        callbacks=[timer],
        deterministic=True,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        num_sanity_val_steps=0,
        default_root_dir=str(folder),
    ).fit(module, datamodule=dm)
    out["unlearning"] = timer.throughput()

    shadow = UnlearningModule(
        copy.deepcopy(network),
        localizer=Full(),
        unlearner=Finetune(lr=0.01),
        metrics=[],
        references=ReferenceModels(recipe, oracle=False, cache_dir=str(folder / f"cache-{tag}"), progress_bar=False),
        report=False,
        execution=execution,
    )
    trainer_kwargs = {"accelerator": accelerator, "devices": 1, "precision": precision, "max_epochs": args.epochs}
    spec = make_spec(shadow, dm, trainer_kwargs, num_shadow=2, num_target_models=2, bank=str(folder / f"bank-{tag}"))
    model_dm, _ = shadow_datamodule(spec, 0)
    trained = len(model_dm.indices("train")) // args.batch_size * args.batch_size  # drop_last
    images = args.epochs * (trained + len(model_dm.indices("retain")))
    synchronize(device)
    start = time.perf_counter()
    train_and_unlearn(spec, 0)
    synchronize(device)
    out["shadow"] = images / (time.perf_counter() - start)
    return out


def main(argv: list[str] | None = None) -> dict[str, Any]:
    import torch

    from unlearn_pl import UnlearningDataModule
    from unlearn_pl.data import RandomForget
    from unlearn_pl.models import cifar_resnet18

    args = parse(argv)
    # Deterministic cuBLAS needs this before CUDA starts (Lightning sets the same for deterministic=True).
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    setup_torch(args.threads)
    cuda = args.device == "cuda" or (args.device == "auto" and torch.cuda.is_available())
    if cuda and not torch.cuda.is_available():
        raise SystemExit("error: --device cuda, but torch sees no CUDA device")
    device = torch.device("cuda" if cuda else "cpu")
    header("bench_gpu", args)
    info(f"device: {torch.cuda.get_device_name(device) if cuda else 'cpu (a smoke run: no GPU figure)'}")
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    plain: dict[str, float] = {}
    sides: dict[tuple[str, bool], dict[str, float]] = {}
    try:
        with quiet(), tempfile.TemporaryDirectory(prefix="unlearn_pl-bench-gpu-") as tmp:
            dm = UnlearningDataModule(SyntheticCIFAR(args.train_size, args.seed), RandomForget(0.1), seed=args.seed)
            dm.setup("fit")
            index = torch.as_tensor(dm.indices("train"))
            images, labels = dm.train_set.images_on(device)[index.to(device)], dm.train_set.targets[index].to(device)
            torch.manual_seed(args.seed)
            network = cifar_resnet18(width=args.width, num_classes=10, in_channels=3)
            for precision in args.precisions:
                plain[precision] = plain_throughput(network, images, labels, args, precision, device)
                for device_data in (True, False):
                    sides[precision, device_data] = measure(args, precision, device_data, device, Path(tmp))
    finally:
        torch.use_deterministic_algorithms(deterministic)
    for precision in args.precisions:
        info(
            f"{precision}: plain loop {plain[precision]:.0f} images/s; "
            + "; ".join(
                f"{'device data' if mode else 'DataLoader'}: "
                + ", ".join(f"{k} {v:.0f}" for k, v in sides[precision, mode].items())
                for mode in (True, False)
            )
        )
        for side in ("reference", "unlearning", "shadow"):
            ratio_line(f"{side}_over_plain[{precision}]", sides[precision, True][side] / plain[precision], ">=0.9")
        for side in ("reference", "unlearning", "shadow"):
            ratio_line(
                f"device_data_over_dataloader[{side},{precision}]",
                sides[precision, True][side] / sides[precision, False][side],
                ">=2.0",
            )
    if "32-true" in plain and "bf16-mixed" in plain:
        ratio_line("bf16_over_fp32[plain]", plain["bf16-mixed"] / plain["32-true"], ">=1.0")
    best = args.precisions[-1]
    summary(
        "bench_gpu",
        f"{device.type}, {best}: plain loop {plain[best]:.0f} images/s; with device data: "
        + ", ".join(
            f"{side} {sides[best, True][side] / plain[best]:.2f}x" for side in ("reference", "unlearning", "shadow")
        )
        + f" of it; reference training with device data {sides[best, True]['reference'] / sides[best, False]['reference']:.2f}x "
        "the DataLoader path",
    )
    return {"plain": plain, "sides": sides}


if __name__ == "__main__":
    run(main)

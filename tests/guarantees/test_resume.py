"""Resume: a run interrupted after an epoch and resumed from its checkpoint ends with the
same weights and mask as an uninterrupted run, bit for bit on CPU.

The shuffling order is the crux: it comes from :class:`EpochShuffleSampler`, a function of
``(seed, epoch)``, where a ``DataLoader(generator=...)`` would restart its stream on resume.
"""

from __future__ import annotations

from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
import torch
from conftest import FAST_RECIPE, fast_trainer, tiny_cnn
from lightning.pytorch.callbacks import Callback, ModelCheckpoint
from torch.utils.data import DataLoader

from unlearn_pl import ReferenceModels, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.data.samplers import EpochShuffleSampler
from unlearn_pl.localizers import DEL
from unlearn_pl.unlearners import SCRUB, NegGradPlus, RandomLabel, ResetFinetune


# ------------------------------------------------------------------ the sampler
def passes(loader: DataLoader, n: int) -> list[torch.Tensor]:
    return [torch.cat([b[0] for b in loader]) for _ in range(n)]


def test_sampler_order_is_a_seeded_permutation_of_seed_epoch_and_pass():
    """A plain permutation drawn from (seed, epoch, pass): no hidden generator state."""
    s = EpochShuffleSampler(103, 7)
    s.set_epoch(5)
    seed = int(np.random.SeedSequence([7, 5, 0]).generate_state(1)[0])
    assert list(s) == torch.randperm(103, generator=torch.Generator().manual_seed(seed)).tolist()
    # torch's DistributedSampler seeds with seed + epoch, so (1, 0) and (0, 1) would share an order
    assert list(EpochShuffleSampler(50, 1).permutation(0)) != list(EpochShuffleSampler(50, 0).permutation(1))


def test_sharded_orders_together_are_the_one_process_order():
    whole = EpochShuffleSampler(10, 3).permutation(2).tolist()
    shards = []
    for rank in range(2):
        s = EpochShuffleSampler(10, 3, num_replicas=2, rank=rank)
        s.set_epoch(2)
        shards.append(list(s))
    assert [i for pair in zip(*shards, strict=True) for i in pair] == whole


def test_sampler_order_is_a_function_of_the_epoch():
    reference = [torch.tensor(list(EpochShuffleSampler(50, 3).permutation(e))) for e in range(4)]
    assert not torch.equal(reference[0], reference[1])
    resumed = EpochShuffleSampler(50, 3)  # a fresh process, resuming at epoch 2
    for epoch in (2, 3, 1, 3):  # jumps ahead and back replay the same orders
        resumed.set_epoch(epoch)
        assert torch.equal(torch.tensor(list(resumed)), reference[epoch])
    # a second pass within an epoch (a cycled loader) differs from the first, reproducibly
    s = EpochShuffleSampler(50, 3)
    s.set_epoch(1)
    first, second = list(s), list(s)
    assert first != second and sorted(second) == list(range(50))
    s.set_epoch(1)
    assert (list(s), list(s)) == (first, second)
    assert list(EpochShuffleSampler(50, 4).permutation(0)) != list(EpochShuffleSampler(50, 3).permutation(0))


def test_shuffling_does_not_consume_the_global_rng():
    dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=64)
    torch.manual_seed(0)
    expected = torch.rand(3)
    torch.manual_seed(0)
    for _ in dm.dataloader("retain", shuffle=True):
        pass
    assert torch.equal(torch.rand(3), expected)


# ------------------------------------------------------------------ end-to-end resume
class Interrupted(Exception):
    """Raised to simulate a run killed after its first epoch (its checkpoint saved)."""


class InterruptAfterFirstEpoch(Callback):
    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.current_epoch == 1:
            raise Interrupted()


def make(unlearner) -> tuple[UnlearningModule, UnlearningDataModule]:
    # A BatchNorm CNN: running statistics and the reset's fresh init are part of what must match.
    pl.seed_everything(0, verbose=False)
    dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=64, seed=0)
    module = UnlearningModule(
        tiny_cnn(),
        localizer=DEL(budget=0.3),
        unlearner=unlearner,
        references=ReferenceModels(recipe=FAST_RECIPE, oracle=False),
        metrics=[],
        report=False,
    )
    module.prepare_models(dm)
    return module, dm


def fit(unlearner, folder: Path, *, interrupt: bool = False, ckpt_path: str | None = None) -> UnlearningModule:
    module, dm = make(unlearner)
    callbacks: list[Callback] = [ModelCheckpoint(dirpath=folder, save_top_k=-1, every_n_epochs=1)]
    if interrupt:
        callbacks.append(InterruptAfterFirstEpoch())
    trainer = fast_trainer(folder, max_epochs=2, enable_checkpointing=True, callbacks=callbacks, limit_val_batches=0)
    if interrupt:
        with pytest.raises(Interrupted):
            trainer.fit(module, datamodule=dm)
    else:
        trainer.fit(module, datamodule=dm, ckpt_path=ckpt_path)
    return module


UNLEARNERS = {
    "ResetFinetune": lambda: ResetFinetune(lr=0.05),
    "NegGradPlus": lambda: NegGradPlus(lr=0.01),  # two streams: the forget loader is cycled
    "SCRUB": lambda: SCRUB(msteps=2, lr=0.01),  # epoch-dependent max steps, manual optimization
    "RandomLabel": lambda: RandomLabel(lr=0.01),  # a generator in the callback state
}


@pytest.mark.slow  # three fits each (uninterrupted, killed, resumed): ~10-35 s on 2 busy cores
@pytest.mark.parametrize("name", list(UNLEARNERS))
def test_resumed_run_ends_like_an_uninterrupted_one(tmp_path, name, monkeypatch):
    make_unlearner = UNLEARNERS[name]
    uninterrupted = fit(make_unlearner(), tmp_path / "full")

    fit(make_unlearner(), tmp_path / "killed", interrupt=True)
    (ckpt,) = (tmp_path / "killed").glob("epoch=0-*.ckpt")  # only the first epoch finished
    # Our checkpoints hold only safe types: the resume below loads them with weights_only=True.
    state = torch.load(ckpt, map_location="cpu", weights_only=True)
    assert any("masks" in s for s in state["callbacks"].values())

    if name == "ResetFinetune":  # the reset ran in the killed run; it must not run again
        import unlearn_pl.unlearners.reset_finetune as rf

        def no_second_reset(*args, **kwargs):
            raise AssertionError("ResetFinetune reset again on resume")

        monkeypatch.setattr(rf, "reset_selected_", no_second_reset)
    resumed = fit(make_unlearner(), tmp_path / "resumed", ckpt_path=str(ckpt))

    for key, value in uninterrupted.network.state_dict().items():
        assert torch.equal(value, resumed.network.state_dict()[key]), f"{key} differs after resume"
    masks_a, masks_b = uninterrupted.localizer.masks, resumed.localizer.masks
    assert masks_a.keys() == masks_b.keys() and all(torch.equal(masks_a[k], masks_b[k]) for k in masks_a)

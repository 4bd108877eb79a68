"""SCRUB under Lightning against a compact transcription of the authors' training loop.

Reference: github meghdadk/SCRUB —

- ``large_scale_unlearning.ipynb`` (the SCRUB cell's epoch loop): for ``epoch`` in
  ``1 … sgda_epochs``: ``adjust_learning_rate(epoch)``; if ``epoch <= msteps``:
  ``train_distill(forget_loader, "maximize")``; then ``train_distill(retain_loader, "minimize")``;
- ``thirdparty/repdistiller/helper/loops.py:137-290`` (``train_distill``): student ``.train()``,
  teacher ``.eval()``; per batch ``loss = γ·CE + α·KL`` (minimize) or ``−KL`` (maximize), then
  ``zero_grad``, ``backward``, ``step``;
- ``thirdparty/repdistiller/distiller_zoo/KD.py`` (``DistillKL``):
  ``kl_div(log_softmax(s/T), softmax(t/T), sum) · T² / batch``;
- ``thirdparty/repdistiller/helper/util.py:22-30`` (``adjust_learning_rate``):
  ``lr · rate^(Σ epoch > lr_decay_epochs)``, set only once that count is positive.

The Lightning run records the batches it was served; the reference replays them, so both see
identical data in identical order.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from conftest import fast_trainer, tiny_cnn
from lightning.pytorch.callbacks import Callback

from unlearn_pl.localizers import Full
from unlearn_pl.unlearners import SCRUB
from unlearn_pl.unlearners.scrub import decayed_lr


# ----------------------------------------------------------------- reference transcription
class Args:
    """The notebook's ``args`` for SCRUB."""

    def __init__(self, **kw) -> None:
        self.__dict__.update(kw)


def distill_kl(y_s, y_t, T):
    p_s = F.log_softmax(y_s / T, dim=1)
    p_t = F.softmax(y_t / T, dim=1)
    return F.kl_div(p_s, p_t, reduction="sum") * (T**2) / y_s.shape[0]


def adjust_learning_rate(epoch, opt, optimizer):
    steps = np.sum(epoch > np.asarray(opt.lr_decay_epochs))
    new_lr = opt.sgda_learning_rate
    if steps > 0:
        new_lr = opt.sgda_learning_rate * (opt.lr_decay_rate**steps)
        for param_group in optimizer.param_groups:
            param_group["lr"] = new_lr
    return new_lr


def distill_step(model_s, model_t, x, y, optimizer, opt, split):
    model_s.train()
    model_t.eval()
    logit_s = model_s(x)
    with torch.no_grad():
        logit_t = model_t(x)
    if split == "minimize":
        loss = opt.gamma * F.cross_entropy(logit_s, y) + opt.alpha * distill_kl(logit_s, logit_t, opt.kd_T)
    else:
        loss = -distill_kl(logit_s, logit_t, opt.kd_T)
    optimizer.zero_grad()
    loss.backward()
    optimizer.step()


def authors_scrub(student, teacher, epochs_batches, opt, order="sequential"):
    """The notebook's loop over recorded ``[(forget batches, retain batches)]`` per epoch.

    ``order="interleaved"`` replays the same losses, max step i then min step i."""
    if opt.optim == "sgd":
        optimizer = torch.optim.SGD(
            student.parameters(),
            lr=opt.sgda_learning_rate,
            momentum=opt.sgda_momentum,
            weight_decay=opt.sgda_weight_decay,
        )
    else:
        optimizer = torch.optim.Adam(
            student.parameters(), lr=opt.sgda_learning_rate, weight_decay=opt.sgda_weight_decay
        )
    for epoch, (forget, retain) in enumerate(epochs_batches, start=1):
        adjust_learning_rate(epoch, opt, optimizer)
        if order == "sequential":
            if epoch <= opt.msteps:
                for x, y in forget:
                    distill_step(student, teacher, x, y, optimizer, opt, "maximize")
            for x, y in retain:
                distill_step(student, teacher, x, y, optimizer, opt, "minimize")
        else:
            for i in range(max(len(forget), len(retain))):
                if epoch <= opt.msteps and i < len(forget):
                    distill_step(student, teacher, *forget[i], optimizer, opt, "maximize")
                if i < len(retain):
                    distill_step(student, teacher, *retain[i], optimizer, opt, "minimize")
    return student


# ----------------------------------------------------------------- the Lightning side
class Recorder(Callback):
    """Records the batches served per epoch (by split) and counts optimizer steps."""

    def __init__(self) -> None:
        self.epochs: list[dict[str, list]] = []
        self.steps = 0

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self.epochs.append({"forget": [], "retain": []})

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx) -> None:
        for name, (_, x, y) in batch.items():
            self.epochs[-1][name].append((x.clone(), y.clone()))

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.steps += 1


def run_scrub(prepared_module, tmp_path, scrub: SCRUB, epochs: int, dm_kwargs: dict | None = None):
    module, dm = prepared_module(
        network=tiny_cnn(),
        localizer=Full(),
        unlearner=scrub,
        oracle=False,
        metrics=[],
        report=False,
        dm_kwargs=dm_kwargs,
    )
    start = copy.deepcopy(module.network)
    recorder = Recorder()
    fast_trainer(tmp_path, max_epochs=epochs, limit_val_batches=0, callbacks=[recorder]).fit(module, datamodule=dm)
    return module, dm, start, recorder


SETTINGS = dict(msteps=2, alpha=0.5, gamma=0.9, temperature=2.0, lr=0.02, momentum=0.9, weight_decay=5e-4)


@pytest.mark.parametrize("order", ["sequential", "interleaved"])
@pytest.mark.parametrize("epochs", [1, 3])
def test_scrub_matches_the_authors_loop(prepared_module, tmp_path, order, epochs):
    # Decay from 0-based epochs 1 and 2 on: the authors' lr_decay_epochs=[1, 2] (their 1-based
    # "epoch > d" is the same numbers), so the decay acts within 3 epochs.
    scrub = SCRUB(order=order, lr_decay_epochs=(1, 2), lr_decay_rate=0.5, **SETTINGS)
    module, dm, start, rec = run_scrub(prepared_module, tmp_path, scrub, epochs)
    n_forget = len(dm.dataloader("forget", shuffle=True))
    n_retain = len(dm.dataloader("retain", shuffle=True))
    assert n_forget >= 2
    # The first pass of each split (an interleaved loader cycles the shorter one).
    batches = [(e["forget"][:n_forget], e["retain"][:n_retain]) for e in rec.epochs]
    opt = Args(
        optim="sgd",
        msteps=2,
        alpha=0.5,
        gamma=0.9,
        kd_T=2.0,
        sgda_learning_rate=0.02,
        sgda_momentum=0.9,
        sgda_weight_decay=5e-4,
        lr_decay_epochs=[1, 2],
        lr_decay_rate=0.5,
    )
    teacher = module.reference("original")
    theirs = authors_scrub(copy.deepcopy(start), teacher, batches, opt, order=order)
    ours = dict(module.network.named_parameters())
    moved = max(
        float((p.detach() - q).abs().max())
        for (_, p), q in zip(theirs.named_parameters(), start.parameters(), strict=True)
    )
    assert moved > 1e-3  # the comparison is not vacuous
    for name, p in theirs.named_parameters():
        torch.testing.assert_close(ours[name], p, atol=1e-6, rtol=0)
    for name, b in theirs.named_buffers():  # BatchNorm statistics: the student trained in train mode
        torch.testing.assert_close(dict(module.network.named_buffers())[name], b, atol=1e-6, rtol=0)
    # The authors' step counts: one max step per forget batch in max epochs, one min step per retain batch.
    assert rec.steps == sum((n_forget if e < 2 else 0) + n_retain for e in range(epochs))


def test_scrub_adam_matches_the_authors_small_scale_setting(prepared_module, tmp_path):
    scrub = SCRUB(
        optimizer="adam",
        lr=1e-3,
        weight_decay=0.1,
        msteps=1,
        lr_decay_epochs=(1,),
        alpha=0.5,
        gamma=1.0,
        temperature=2.0,
    )
    module, dm, start, rec = run_scrub(prepared_module, tmp_path, scrub, 2)
    batches = [(e["forget"], e["retain"]) for e in rec.epochs]
    opt = Args(
        optim="adam",
        msteps=1,
        alpha=0.5,
        gamma=1.0,
        kd_T=2.0,
        sgda_learning_rate=1e-3,
        sgda_momentum=0.9,
        sgda_weight_decay=0.1,
        lr_decay_epochs=[1],
        lr_decay_rate=0.1,
    )
    theirs = authors_scrub(copy.deepcopy(start), module.reference("original"), batches, opt)
    ours = dict(module.network.named_parameters())
    for name, p in theirs.named_parameters():
        torch.testing.assert_close(ours[name], p, atol=1e-6, rtol=0)


@pytest.mark.parametrize("order", ["sequential", "interleaved"])
def test_scrub_step_counts_when_forget_has_more_batches(prepared_module, tmp_path, order):
    # forget_batch_size=4 gives the forget loader more batches than the retain loader.
    scrub = SCRUB(order=order, msteps=1, lr=1e-3, forget_batch_size=4)
    module, dm, _, rec = run_scrub(prepared_module, tmp_path, scrub, 2)
    n_forget = len(dm.dataloader("forget", shuffle=True, batch_size=4))
    n_retain = len(dm.dataloader("retain", shuffle=True))
    assert n_forget > n_retain
    assert rec.steps == n_forget + 2 * n_retain  # epoch 0: max + min; epoch 1: min only
    assert all(len(y) <= 4 for _, y in rec.epochs[0]["forget"])


def test_scrub_trains_the_student_in_train_mode(prepared_module, tmp_path):
    seen = []

    class Mode(Callback):
        def on_before_optimizer_step(self, trainer, pl_module, optimizer):
            seen.append(pl_module.network.training)

    module, dm = prepared_module(
        network=tiny_cnn(), localizer=Full(), unlearner=SCRUB(msteps=1), oracle=False, metrics=[], report=False
    )
    module.network.eval()  # handed over in eval mode
    fast_trainer(tmp_path, max_epochs=1, limit_train_batches=4, limit_val_batches=0, callbacks=[Mode()]).fit(
        module, datamodule=dm
    )
    assert seen and all(seen)


def test_decayed_lr_is_the_authors_schedule():
    opt = Args(sgda_learning_rate=0.1, lr_decay_epochs=[3, 5, 9], lr_decay_rate=0.1)

    class Opt:
        param_groups = [{"lr": 0.1}]

    for epoch in range(1, 12):  # the notebook's 1-based epochs
        expected = adjust_learning_rate(epoch, opt, Opt())
        assert decayed_lr(0.1, epoch - 1, (3, 5, 9), 0.1) == pytest.approx(expected, rel=1e-12)


def test_scrub_config_defaults_are_the_authors():
    scrub = SCRUB()
    assert (scrub.order, scrub.msteps, scrub.lr_decay_epochs, scrub.lr_decay_rate, scrub.optimizer) == (
        "sequential",
        2,
        (3, 5, 9),
        0.1,
        "sgd",
    )


def test_scrub_rejects_bad_values():
    for kwargs, fragment in [
        (dict(order="random"), "order"),
        (dict(optimizer="rmsprop"), "optimizer"),
        (dict(lr_decay_epochs=[1, -1]), "lr_decay_epochs"),
        (dict(lr_decay_rate=2.0), "lr_decay_rate"),
        (dict(forget_batch_size=0), "forget_batch_size"),
    ]:
        with pytest.raises(ValueError, match=fragment):
            SCRUB(**kwargs)


DDP_SCRIPT = r"""
import json, sys
import torch
import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback
sys.path.insert(0, {tests!r})
from conftest import FAST_RECIPE, tiny_cnn
from unlearn_pl import ReferenceModels, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.localizers import DEL
from unlearn_pl.unlearners import SCRUB

class Served(Callback):
    def __init__(self):
        self.order, self.forget, self.steps = [], [], 0
    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        (name,) = batch.keys()
        self.order.append(name)
        if name == "forget":
            self.forget += batch["forget"][0].tolist()
    def on_before_optimizer_step(self, trainer, pl_module, optimizer):
        self.steps += 1

torch.set_num_threads(1)
pl.seed_everything(0)
dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=32, seed=0)
module = UnlearningModule(tiny_cnn(), localizer=DEL(budget=0.3), unlearner=SCRUB(msteps=1, lr=0.01),
                          references=ReferenceModels(recipe=FAST_RECIPE, oracle=False), metrics=[], report=False)
module.prepare_models(dm)
original = {{n: p.detach().clone() for n, p in module.network.named_parameters()}}
served = Served()
trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, logger=False,
                     enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                     num_sanity_val_steps=0, limit_val_batches=0, callbacks=[served])
trainer.fit(module, datamodule=dm)
masks = module.localizer.masks
out = {{
    "order": served.order, "forget": served.forget, "steps": served.steps,
    "weights": float(sum(p.double().sum() for p in module.network.parameters())),
    "unselected_fixed": all(torch.equal(p.detach()[~masks[n]], original[n][~masks[n]])
                            for n, p in module.network.named_parameters()),
    "forget_size": len(dm.split_dataset("forget")), "retain_size": len(dm.split_dataset("retain")),
}}
with open(f"rank{{trainer.global_rank}}.json", "w") as f:
    json.dump(out, f)
"""


@pytest.mark.slow  # a two-process DDP fit: ~20-40 s on 2 busy cores
def test_scrub_sequential_order_under_two_process_ddp(tmp_path):
    import json
    import math

    from conftest import REPO, run_script

    run_script(DDP_SCRIPT.format(tests=str(REPO / "tests")), tmp_path)
    r0, r1 = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1))
    # Each rank: its shard of the forget batches, then its shard of the retain batches.
    n_forget = math.ceil(math.ceil(r0["forget_size"] / 2) / 32)
    n_retain = math.ceil(math.ceil(r0["retain_size"] / 2) / 32)
    for r in (r0, r1):
        assert r["order"] == ["forget"] * n_forget + ["retain"] * n_retain
        assert r["steps"] == n_forget + n_retain
        assert r["unselected_fixed"]
    assert len(set(r0["forget"]) & set(r1["forget"])) <= 1  # sharded (DistributedSampler pads by at most one)
    assert r0["weights"] == pytest.approx(r1["weights"], rel=1e-6)

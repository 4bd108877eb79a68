"""A real two-process CPU DDP fit (gloo): masks are computed once on rank 0 and broadcast."""

import json
from pathlib import Path

import pytest
from conftest import REPO, run_script, shared_run

LOCALIZERS = ["del", "pid", "random"]

SCRIPT = r'''
import json, os, sys
import torch
import lightning.pytorch as pl
sys.path.insert(0, {tests!r})
from conftest import FAST_RECIPE, tiny_cnn
from unlearn_pl import ReferenceModels, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.localizers import DEL, Localizer, Random
from unlearn_pl.unlearners import ResetFinetune

class PidSeeded(Localizer):
    """Masks differ per process unless the base class broadcasts rank 0's."""
    requires_data = False
    def localize(self, model, dataloader):
        g = torch.Generator().manual_seed(os.getpid())
        return {{n: torch.rand(p.shape, generator=g) < 0.3 for n, p in model.named_parameters()}}

torch.set_num_threads(1)  # two ranks on two cores: more threads oversubscribe the machine
# One fit per localizer, one after the other in the same two processes (the process group the
# first trainer starts serves the next).
for which in {localizers!r}:
    localizer = {{"del": lambda: DEL(budget=0.3), "pid": lambda: PidSeeded(budget=0.3),
                  "random": lambda: Random(budget=0.3)}}[which]()
    pl.seed_everything(0)
    dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=32, seed=0)
    module = UnlearningModule(tiny_cnn(), localizer=localizer, unlearner=ResetFinetune(lr=0.05, weight_decay=5e-3),
                              references=ReferenceModels(recipe=FAST_RECIPE, oracle=False))  # cache: $UNLEARN_PL_CACHE
    module.prepare_models(dm)
    if which == "random":
        # Each rank its own run seed (the one DDP's setup re-seeds with): Random's default draws would
        # differ unless rank 0's is broadcast.
        pl.seed_everything(100 + int(os.environ.get("LOCAL_RANK", "0")))
        own_draw = Random(budget=0.3).localize(module.network, None)
    original = {{n: p.detach().clone() for n, p in module.network.named_parameters()}}
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=2, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0)
    trainer.fit(module, datamodule=dm)
    masks = module.localizer.masks
    unselected_fixed = all(torch.equal(p.detach()[~masks[n]], original[n][~masks[n]]) for n, p in module.network.named_parameters())
    out = {{
        "rank": trainer.global_rank,
        "world_size": trainer.world_size,
        "mask": {{n: m.flatten().nonzero().flatten().tolist() for n, m in masks.items()}},
        "weights": float(sum(p.double().sum() for p in module.network.parameters())),
        "unselected_fixed": unselected_fixed,
        "own_draw_is_the_mask": which == "random" and all(torch.equal(own_draw[n], masks[n]) for n in masks),
    }}
    with open(f"rank{{trainer.global_rank}}-{{which}}.json", "w") as f:
        json.dump(out, f)
'''


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of one two-process run that fits once with each localizer (once per test run,
    whichever worker asks first)."""
    script = SCRIPT.format(tests=str(REPO / "tests"), localizers=LOCALIZERS)
    return shared_run(tmp_path_factory, "ddp_fit", lambda folder: run_script(script, folder))


@pytest.mark.parametrize("which", LOCALIZERS)
def test_two_process_ddp_fit_agrees_on_the_mask(ddp_run, which):
    r0 = json.loads((ddp_run / f"rank0-{which}.json").read_text())
    r1 = json.loads((ddp_run / f"rank1-{which}.json").read_text())
    assert r0["world_size"] == r1["world_size"] == 2
    assert r0["mask"] == r1["mask"], "both ranks must hold rank 0's mask"
    assert sum(len(v) for v in r0["mask"].values()) > 0
    assert r0["weights"] == pytest.approx(r1["weights"], rel=1e-6), "DDP keeps replicas in sync"
    assert r0["unselected_fixed"] and r1["unselected_fixed"]
    if which == "random":  # the mask is rank 0's own draw from its run seed, not rank 1's
        assert r0["own_draw_is_the_mask"] and not r1["own_draw_is_the_mask"]

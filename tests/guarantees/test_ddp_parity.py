"""DDP parity of an *unlearning* run: 2-process CPU DDP vs one process.

Validation parity (the same model evaluated by 2 processes or 1 gives the same metrics within
1e-6, padding and de-duplication included) is proven by
``test_metrics_ddp.py::test_ddp_validation_equals_single_process``; this file adds training.

The setup makes the two runs see the same data per optimizer step, so any difference is
floating-point only: a 2-process run with ``global_batch=True`` (batch 64 divided into 32 per
process) against one process with batch 64, on split sizes divisible by 64 (no ``DistributedSampler`` padding, no short last
batch), an MLP (no BatchNorm, whose per-process batch statistics would differ), and the
shuffling order of :class:`~unlearn_pl.data.samplers.EpochShuffleSampler`, which DDP shards
(process r takes positions r, r+2, …), so the two processes' batch k together are the single
process's batch k. DDP averages the two half-batch gradients where one process takes the mean
over the whole batch: equal up to summation order (~1e-7 relative per step).

Tolerance (also stated in the README): masks identical; weights within 1e-5 absolute and
losses within 1e-5 (measured here: 2e-7 and 2e-8 after 32 steps); accuracies, ToW and attack
scores within 0.01 (measured: equal; the margin allows one example sitting on a decision
boundary to flip — 1/128 of the forget set). Metrics of the frozen original and oracle must
agree within 1e-6, as in validation parity.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from conftest import FAST_RECIPE, REPO, fast_trainer, run_script, shared_run, tiny_mlp

from unlearn_pl import ReferenceModels, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.localizers import DEL
from unlearn_pl.metrics import LossAttack, MIAEfficacy, SplitAccuracy, TugOfWar
from unlearn_pl.unlearners import ResetFinetune

WEIGHT_TOL = 1e-5
LOSS_TOL = 1e-5
SCORE_TOL = 0.01
#: Global batch size; each of the 2 processes takes half.
BATCH = 64
EPOCHS = 2


def make(batch_size: int, global_batch: bool = False) -> tuple[UnlearningModule, UnlearningDataModule]:
    """1280 training examples: 128 validation, 128 forget, 1024 retain — all multiples of 64."""
    dm = UnlearningDataModule(
        Digits(),
        RandomForget(128),
        train_size=1280,
        val_fraction=0.1,
        batch_size=batch_size,
        eval_batch_size=BATCH,
        seed=0,
        global_batch=global_batch,
    )
    module = UnlearningModule(
        tiny_mlp(),
        localizer=DEL(budget=0.3),
        unlearner=ResetFinetune(lr=0.05, seed=0),
        references=ReferenceModels(recipe=FAST_RECIPE),
        metrics=[SplitAccuracy(), TugOfWar(), LossAttack(), MIAEfficacy()],
        report=False,
    )
    module.prepare_models(dm)
    return module, dm


def outcome(module: UnlearningModule) -> dict:
    return {
        "mask": {n: m.flatten().nonzero().flatten().tolist() for n, m in module.localizer.masks.items()},
        "metrics": {type(cb).__name__: cb.results for cb in module.metrics},
    }


#: Both tests of this file in one pair of processes: the unlearning run, then the BatchNorm one
#: (the process group the first trainer starts serves the next).
SCRIPT = """
import json, sys
sys.path[:0] = [{tests!r}, {here!r}]  # conftest, and this test module by name
import lightning.pytorch as pl
import torch

torch.set_num_threads(1)  # one core per process
from conftest import FAST_RECIPE, tiny_cnn
from test_ddp_parity import BATCH, EPOCHS, make, outcome
from unlearn_pl import ReferenceModels, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.localizers import DEL
from unlearn_pl.unlearners import ResetFinetune

if __name__ == "__main__":
    pl.seed_everything(0, verbose=False)
    module, dm = make(batch_size=BATCH, global_batch=True)  # 32 per process
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=EPOCHS, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=".")
    trainer.fit(module, datamodule=dm)
    trainer.limit_val_batches = 1.0  # fit skipped validation; the final evaluation sees everything
    trainer.validate(module, datamodule=dm, verbose=False)
    assert trainer.world_size == 2
    rank = trainer.global_rank
    json.dump(outcome(module), open(f"outcome-{{rank}}.json", "w"))
    torch.save(module.network.state_dict(), f"weights-{{rank}}.pt")

    # BatchNorm recalibration after a ResetFinetune fit of a small CNN.
    dm = UnlearningDataModule(Digits(), RandomForget(0.1), train_size=600, batch_size=32, seed=0)
    module = UnlearningModule(tiny_cnn(), localizer=DEL(budget=0.3), unlearner=ResetFinetune(lr=0.05),
                              references=ReferenceModels(recipe=FAST_RECIPE, oracle=False), metrics=[], report=False)
    module.prepare_models(dm)
    trainer = pl.Trainer(accelerator="cpu", devices=2, strategy="ddp", max_epochs=1, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
                         num_sanity_val_steps=0, limit_val_batches=0, default_root_dir=".")
    trainer.fit(module, datamodule=dm)
    torch.save(module.network.state_dict(), f"bn-{{trainer.global_rank}}.pt")
"""


@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The folder of the two-process run of :data:`SCRIPT` (once per test run, whichever worker
    asks first)."""
    script = SCRIPT.format(tests=str(REPO / "tests"), here=str(Path(__file__).resolve().parent))
    return shared_run(tmp_path_factory, "ddp_parity", lambda folder: run_script(script, folder))


@pytest.mark.slow  # two fresh processes importing torch and Lightning: ~25 s on 2 busy cores
def test_ddp_unlearning_matches_one_process(ddp_run, tmp_path):
    torch.set_num_threads(1)
    import lightning.pytorch as pl

    pl.seed_everything(0, verbose=False)
    module, dm = make(batch_size=BATCH)
    assert [len(dm.indices(s)) % BATCH for s in ("retain", "forget", "val")] == [0, 0, 0], "the premise"
    fast_trainer(tmp_path / "single", max_epochs=EPOCHS, limit_val_batches=0).fit(module, datamodule=dm)
    fast_trainer(tmp_path / "single").validate(module, datamodule=dm, verbose=False)
    single = json.loads(json.dumps(outcome(module)))

    ranks = [json.loads((ddp_run / f"outcome-{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1], "every process holds the same mask and reports the same metrics"
    ddp = ranks[0]

    assert ddp["mask"] == single["mask"], "DDP selects exactly the single-process mask"
    weights = torch.load(ddp_run / "weights-0.pt", weights_only=True)
    for name, value in module.network.state_dict().items():
        diff = float((weights[name] - value).abs().max())
        assert diff <= WEIGHT_TOL, f"{name}: DDP and single-process weights differ by {diff}"

    checked = 0
    for metric, models in single["metrics"].items():
        assert {m: sorted(v) for m, v in ddp["metrics"][metric].items()} == {m: sorted(v) for m, v in models.items()}, (
            metric
        )
        for model, values in models.items():
            for key, value in values.items():
                other = ddp["metrics"][metric][model][key]
                tol = LOSS_TOL if "loss" in key and "attack" not in key and "mia" not in key else SCORE_TOL
                if model != "unlearned":
                    tol = 1e-6  # the frozen original/oracle: pure validation parity
                assert abs(other - value) <= tol, f"{metric}/{model}/{key}: DDP {other} vs one process {value}"
                checked += 1
    assert checked > 20
    # the run did unlearn: forget accuracy dropped from the original's
    acc = single["metrics"]["SplitAccuracy"]
    assert acc["unlearned"]["forget_acc"] < acc["original"]["forget_acc"]


@pytest.mark.slow  # two fresh processes: ~20 s
def test_ddp_batchnorm_recalibration_uses_the_whole_retain_set_on_every_rank(ddp_run):
    """Rank 0 recomputes the statistics over the whole retain set (not its shard) and every
    process ends with exactly those statistics."""
    from conftest import tiny_cnn
    from torch.optim.swa_utils import update_bn

    states = [torch.load(ddp_run / f"bn-{r}.pt", weights_only=True) for r in (0, 1)]
    stats = [k for k in states[0] if k.endswith(("running_mean", "running_var", "num_batches_tracked"))]
    assert stats
    for key in states[0]:
        assert torch.equal(states[0][key], states[1][key]), f"{key} differs between the processes"
    # Recompute from the final weights in this process, over the whole retain set.
    dm = UnlearningDataModule(Digits(), RandomForget(0.1), train_size=600, batch_size=32, seed=0)
    dm.setup("fit")
    net = tiny_cnn()
    net.load_state_dict(states[0])
    update_bn((x for _, x, _ in dm.dataloader("retain")), net)
    for key in stats:
        torch.testing.assert_close(states[0][key], net.state_dict()[key], rtol=1e-5, atol=1e-6)
    assert int(states[0][stats[-1]]) == len(dm.dataloader("retain"))  # every batch of the split, not a shard

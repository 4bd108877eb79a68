"""The ULiRA callback under 2-process CPU DDP equals one process (gathered, de-duplicated, rank 0, broadcast)."""

from __future__ import annotations

import json
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import pytest
from conftest import FAST_RECIPE, REPO, run_script, tiny_mlp

from unlearn_pl import ReferenceModels, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.functional.lira import balanced_membership
from unlearn_pl.metrics import ULiRA
from unlearn_pl.ulira import ShadowBank, config_parts
from unlearn_pl.unlearners import Finetune

#: Validation-only trainers of this test; the bank records the same unlearning length (0 epochs).
TRAINER = dict(
    max_epochs=0,
    accelerator="cpu",
    logger=False,
    enable_checkpointing=False,
    enable_progress_bar=False,
    enable_model_summary=False,
)


def make_module(bank: str) -> tuple[UnlearningModule, UnlearningDataModule]:
    """Digits' default split: 121 forget examples, so 2 ranks pad one by repetition."""
    dm = UnlearningDataModule(dataset=Digits(), forget=RandomForget(0.1), batch_size=64)
    module = UnlearningModule(
        tiny_mlp(),
        unlearner=Finetune(),
        references=ReferenceModels(recipe=FAST_RECIPE),
        metrics=[ULiRA(bank)],
        report=False,
    )
    module.prepare_models(dm)
    return module, dm


def write_bank(path: Path, module: UnlearningModule, dm: UnlearningDataModule) -> None:
    """A bank with synthetic φ for this configuration: only the callback's gathering is under test."""
    parts = config_parts(
        module.initial_network, module.localizer, module.unlearner, module.references.recipe, pl.Trainer(**TRAINER), dm
    )
    targets = np.asarray(dm.indices("forget"))
    membership = balanced_membership(10, len(targets), seed=0)
    bank = ShadowBank.create(path, parts, targets, membership, num_shadow=8, seed=0)
    rng = np.random.default_rng(0)
    offsets = rng.normal(0, 3, len(targets))
    for m in range(10):
        phi = offsets + 2.0 * membership[m] + rng.normal(0, 1, len(targets))
        bank.save_model(m, phi, phi)


DDP_SCRIPT = """
import json, sys
sys.path[:0] = [{tests!r}, {here!r}]  # conftest, and this test module by name
import lightning.pytorch as pl
import torch

torch.set_num_threads(1)
from test_ulira_ddp import TRAINER, make_module

if __name__ == "__main__":
    module, dm = make_module({bank!r})
    trainer = pl.Trainer(devices=2, strategy="ddp", default_root_dir=".", **TRAINER)
    trainer.validate(module, datamodule=dm, verbose=False)
    assert trainer.world_size == 2
    json.dump(module.metrics[0].results, open(f"results-{{trainer.global_rank}}.json", "w"))
"""


@pytest.mark.slow  # two fresh processes importing torch and Lightning
def test_ulira_callback_under_ddp_equals_one_process(tmp_path):
    bank = tmp_path / "bank"
    module, dm = make_module(str(bank))
    write_bank(bank, module, dm)
    pl.Trainer(default_root_dir=str(tmp_path / "single"), **TRAINER).validate(module, datamodule=dm, verbose=False)
    single = module.metrics[0].results
    assert set(single) == {"original", "unlearned"} and 0.0 <= single["unlearned"]["ulira_acc"] <= 1.0

    here = str(Path(__file__).resolve().parent)
    run_script(DDP_SCRIPT.format(tests=str(REPO / "tests"), bank=str(bank), here=here), tmp_path)
    ranks = [json.loads((tmp_path / f"results-{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # broadcast from rank 0
    for model, values in single.items():
        for name, value in values.items():
            assert ranks[0][model][name] == pytest.approx(value, abs=1e-9), f"{model}/{name}"

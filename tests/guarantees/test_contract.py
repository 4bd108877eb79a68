"""Contract: every localizer works with every unlearner, and the mask limits what changes.

Adding a localizer or an unlearner to the lists below checks it against all the others.
"""

from __future__ import annotations

import pytest
import torch
from conftest import fast_trainer
from lightning.pytorch.callbacks import Callback

from unlearn_pl.localizers import DEL, Full, Gradient, Layers, Localizer, Magnitude, Random, SalUnSaliency
from unlearn_pl.unlearners import (
    SCRUB,
    SSD,
    Finetune,
    L1Sparse,
    NegGrad,
    NegGradPlus,
    RandomLabel,
    ResetFinetune,
    Retrain,
    SalUn,
    Unlearner,
)

LOCALIZERS = {
    "DEL": lambda: DEL(budget=0.3),
    "Full": Full,
    "Random": lambda: Random(budget=0.3, seed=1),
    "Magnitude": lambda: Magnitude(budget=0.3),
    "Gradient": lambda: Gradient(budget=0.3),
    "SalUnSaliency": lambda: SalUnSaliency(budget=0.5),
    "Layers": lambda: Layers(last=1),
}

# Settings that change something within two steps on the tiny MLP.
UNLEARNERS = {
    "ResetFinetune": lambda: ResetFinetune(lr=0.05),
    "Finetune": lambda: Finetune(lr=0.05),
    "NegGrad": lambda: NegGrad(lr=0.05),
    "NegGradPlus": lambda: NegGradPlus(lr=0.05),
    "RandomLabel": lambda: RandomLabel(lr=0.05),
    "SalUn": lambda: SalUn(lr=0.05),
    "SCRUB": lambda: SCRUB(lr=0.05, msteps=1),
    "L1Sparse": lambda: L1Sparse(lr=0.05, gamma=1e-3),
    "SSD": lambda: SSD(alpha=1.0),
    "Retrain": lambda: Retrain(epochs=1),
}


class GradProbe(Callback):
    """Records, before every optimizer step, whether an unselected scalar has a nonzero gradient
    (i.e. whether the localizer's on_after_backward hook ran, also under manual optimization)."""

    def __init__(self, localizer: Localizer) -> None:
        self.localizer = localizer
        self.steps = 0
        self.leaks = 0

    def on_before_optimizer_step(self, trainer, pl_module, optimizer) -> None:
        self.steps += 1
        masks = self.localizer.masks
        for name, p in pl_module.network.named_parameters():
            if p.grad is not None and bool((p.grad[~masks[name]] != 0).any()):
                self.leaks += 1


@pytest.mark.parametrize("unlearner_name", list(UNLEARNERS))
@pytest.mark.parametrize("localizer_name", list(LOCALIZERS))
def test_pair(prepared_module, tmp_path, localizer_name: str, unlearner_name: str) -> None:
    localizer: Localizer = LOCALIZERS[localizer_name]()
    unlearner: Unlearner = UNLEARNERS[unlearner_name]()
    module, dm = prepared_module(localizer=localizer, unlearner=unlearner, oracle=False, metrics=[], report=False)
    before = {n: p.detach().clone() for n, p in module.network.named_parameters()}
    probe = GradProbe(localizer)
    trainer = fast_trainer(tmp_path, max_epochs=1, limit_train_batches=2, limit_val_batches=0, callbacks=[probe])
    trainer.fit(module, datamodule=dm)

    assert trainer.state.finished
    masks = localizer.masks
    assert masks is not None and set(masks) == set(before)
    changed_selected = 0
    for name, p in module.network.named_parameters():
        mask = masks[name]
        after = p.detach()
        # Unselected scalars: bit-identical, whatever the optimizer did in between.
        assert torch.equal(after[~mask], before[name][~mask]), f"{name}: unselected scalars moved"
        changed_selected += int((after[mask] != before[name][mask]).sum())
    assert probe.leaks == 0, "an unselected scalar had a gradient at an optimizer step"
    if isinstance(unlearner, SSD):
        # SSD only dampens selected scalars that pass its Fisher test; its own count must agree.
        assert changed_selected == unlearner.dampened
        assert probe.steps == 0
    else:
        assert probe.steps >= 2
        assert changed_selected > 0, "no selected scalar changed"

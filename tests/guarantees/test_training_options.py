"""References trained like the run: precision, several devices (DDP), torch.compile and channels-last.

Tolerances (measured on this project's 2-core CPU machines, torch 2.14, SmallCNN on digits, one
training epoch of 25 SGD steps at lr 0.1, then the first UNLEARNING_STEPS steps of an unlearning
epoch): channels-last and compiled training give the default's weights within 2.1e-6
(channels-last 1.7e-6, compile 2.0e-6) and its logits within 6.4e-7; the unlearning steps' weights
agree within 3.6e-7 (channels-last 3.6e-7, compile 1.2e-7). The tests allow 1e-4, room for other
CPUs' kernels. A whole unlearning epoch is not compared: on an AMD EPYC (AVX-512) the weights of
the two memory formats jumped from 1e-7 to 7e-6 apart at step 8 of 18 (a discrete event, such as
an activation changing sign on a rounding difference) and drifted to 4.8e-4 by the epoch's end,
where another machine stayed within 1.2e-6. Such chaos is not a difference in what the option
computes, while a real one shows at the first step. Two processes under
``ddp_spawn`` with half the batch each give one process's weights within 2e-7 after three epochs
(an MLP: no BatchNorm, which torch synchronizes on GPUs only); the test allows 1e-5, as the DDP
parity tests of unlearning do (``test_ddp_parity.py``).
"""

from __future__ import annotations

import dataclasses
import math
import os

import pytest
import torch
from conftest import FAST_RECIPE, fast_trainer, tiny_cnn, tiny_mlp
from lightning.pytorch.callbacks import Callback

from unlearn_pl import ReferenceModels, TrainingRecipe, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.localizers import DEL, Full
from unlearn_pl.metrics import SplitAccuracy
from unlearn_pl.models import NetworkExecution
from unlearn_pl.models.execution import is_compiled
from unlearn_pl.references import ReferenceData, train_classifier
from unlearn_pl.ulira import config_parts
from unlearn_pl.unlearners import Finetune, ResetFinetune

#: Largest weight or logit difference allowed between an execution option and the default.
EXECUTION_TOL = 1e-4
#: Unlearning steps compared between an execution option and the default (see the module docstring).
UNLEARNING_STEPS = 6
#: Largest weight difference allowed between 2-process and 1-process training.
DDP_TOL = 1e-5


def test_the_recipe_checks_its_training_options():
    with pytest.raises(ValueError, match="strategy='ddp' re-runs the command in each process"):
        TrainingRecipe(strategy="ddp")
    with pytest.raises(
        ValueError, match=r"precision must be one of \('32-true', 'bf16-mixed', '16-mixed'\); got 'bf16'"
    ):
        TrainingRecipe(precision="bf16")
    with pytest.raises(
        ValueError,
        match="batch_size=100 is the global batch, shared by devices=3 processes; it must be "
        r"a multiple of 3 \(e.g. 99\)",
    ):
        TrainingRecipe(batch_size=100, devices=3)
    with pytest.raises(ValueError, match="devices must be an int >= 1; got 0"):
        TrainingRecipe(devices=0)


def test_keys_record_the_precision_not_where_or_how_fast_training_runs(digits_dm, tmp_path):
    dm = digits_dm()

    def key(**changes) -> str:
        return ReferenceModels(dataclasses.replace(FAST_RECIPE, **changes)).cache_key(tiny_mlp(0), dm, "original")

    default = key()
    assert key(accelerator="gpu", devices=2, strategy="ddp_spawn", compile=True, channels_last=True) == default
    assert len({default, key(precision="bf16-mixed"), key(precision="16-mixed")}) == 3
    assert "precision" not in FAST_RECIPE.weight_settings()

    def bank(**changes) -> dict:
        recipe = dataclasses.replace(FAST_RECIPE, **changes)
        return config_parts(tiny_mlp(), Full(), Finetune(), recipe, fast_trainer(tmp_path), dm)

    assert bank(devices=2, compile=True, channels_last=True, seed=5) == bank()
    assert bank()["recipe"] == {k: v for k, v in FAST_RECIPE.weight_settings().items() if k != "seed"}
    assert bank(precision="bf16-mixed")["recipe"]["precision"] == "bf16-mixed"


def test_bf16_mixed_trains_the_references_and_unlearns(digits_dm, tmp_path):
    dm = digits_dm()
    bf16 = ReferenceModels(dataclasses.replace(FAST_RECIPE, precision="bf16-mixed"))
    module = UnlearningModule(
        tiny_cnn(),
        localizer=DEL(budget=0.3),
        unlearner=ResetFinetune(lr=0.05),
        references=bf16,
        metrics=[SplitAccuracy()],
        report=False,
    )
    module.prepare_models(dm)
    fp32 = ReferenceModels(FAST_RECIPE, oracle=False).prepare(tiny_cnn(), dm)["original"]
    # The recipe's precision reached the trainer: bfloat16 activations train other weights.
    assert any(
        not torch.equal(a, b)
        for a, b in zip(fp32.state_dict().values(), module.reference("original").state_dict().values(), strict=True)
    )
    fast_trainer(tmp_path, precision="bf16-mixed", max_epochs=2, limit_val_batches=0).fit(module, datamodule=dm)
    fast_trainer(tmp_path, precision="bf16-mixed").validate(module, datamodule=dm, verbose=False)
    acc = module.metrics[0].results
    values = [v for row in acc.values() for v in row.values()]
    assert values and all(math.isfinite(v) for v in values)
    assert acc["original"]["retain_acc"] > 0.95 and acc["original"]["forget_acc"] > 0.95
    assert acc["unlearned"]["forget_acc"] < acc["original"]["forget_acc"]
    assert all(torch.isfinite(p).all() for p in module.network.parameters())


class Probe(Callback):
    """Records, at the first training batch, whether the network was compiled and channels-last."""

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == 0:
            weight = next(p for p in pl_module.network.parameters() if p.ndim == 4 and p.shape[1] > 1)
            self.seen = (
                is_compiled(pl_module.network),
                weight.is_contiguous(memory_format=torch.channels_last) and not weight.is_contiguous(),
            )


def max_difference(a: torch.nn.Module, b: torch.nn.Module) -> float:
    return max(
        float((u - v).abs().max())
        for u, v in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
        if u.is_floating_point()
    )


@pytest.mark.parametrize("option", ["channels_last", pytest.param("compile", marks=pytest.mark.slow)])
def test_an_execution_option_trains_the_default_models(option, tmp_path):
    """Reference training and unlearning steps with ``option`` equal the default within EXECUTION_TOL.
    (compile: TorchInductor builds C++ kernels with gcc, ~20 s per network on 2 busy cores.)"""
    dm = UnlearningDataModule(Digits(), RandomForget(0.1), batch_size=64, seed=0)
    dm.setup("fit")
    _, x, _ = next(iter(dm.dataloader("test", batch_size=10_000)))
    expected = (option == "compile", option == "channels_last")
    nets, outputs = {}, {}
    for name, recipe in (
        ("default", TrainingRecipe(epochs=1, lr=0.1, batch_size=64, accelerator="cpu")),
        (option, TrainingRecipe(epochs=1, lr=0.1, batch_size=64, accelerator="cpu", **{option: True})),
    ):
        probe = Probe()
        nets[name] = train_classifier(tiny_cnn(), ReferenceData(dm, "train", recipe), recipe, False, [probe])
        assert probe.seen == (expected if name == option else (False, False))
        assert not is_compiled(nets[name]) and all(p.is_contiguous() for p in nets[name].parameters()), "released"
        with torch.no_grad():
            outputs[name] = nets[name](x)
    assert max_difference(nets["default"], nets[option]) <= EXECUTION_TOL
    assert float((outputs["default"] - outputs[option]).abs().max()) <= EXECUTION_TOL

    torch.save(nets["default"].state_dict(), tmp_path / "original.pt")  # both unlearning runs start from it
    unlearned = {}
    for name, execution in (("default", None), (option, NetworkExecution(**{option: True}))):
        module = UnlearningModule(
            tiny_cnn(),
            unlearner=Finetune(lr=0.05),
            metrics=[],
            report=False,
            execution=execution,
            references=ReferenceModels(original=str(tmp_path / "original.pt"), oracle=False),
        )
        module.prepare_models(dm)
        probe = Probe()
        trainer = fast_trainer(tmp_path, limit_val_batches=0, limit_train_batches=UNLEARNING_STEPS, callbacks=[probe])
        trainer.fit(module, datamodule=dm)
        assert probe.seen == (expected if name == option else (False, False))
        unlearned[name] = module.network
    assert 0 < max_difference(unlearned["default"], nets["default"])  # the steps changed the weights
    assert max_difference(unlearned["default"], unlearned[option]) <= EXECUTION_TOL


def test_several_devices_refuse_what_cannot_work(digits_dm, tmp_path):
    dm = digits_dm()
    dm.setup("fit")
    two = dataclasses.replace(FAST_RECIPE, devices=2)
    with pytest.raises(ValueError, match="needs a data module that serves each process its share"):
        train_classifier(tiny_mlp(), dm.dataloader("train", shuffle=True), two)
    with pytest.raises(ValueError, match="devices=2 on CPUs cannot train SmallCNN: it has BatchNorm layers"):
        train_classifier(tiny_cnn(), ReferenceData(dm, "train", two), two)
    torch.distributed.init_process_group("gloo", init_method=f"file://{tmp_path / 'store'}", rank=0, world_size=1)
    try:
        with pytest.raises(RuntimeError, match="must be trained before a run's DDP processes start"):
            train_classifier(tiny_mlp(), ReferenceData(dm, "train", two), two)
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow  # two spawned processes importing torch and Lightning: ~15 s
def test_two_processes_train_the_reference_of_one(tmp_path, monkeypatch):
    """``devices=2`` (``ddp_spawn``, gloo) from within this process: rank 0's weights come back, equal
    to one process's within DDP_TOL, under the same cache key; MASTER_PORT is left as it was."""
    monkeypatch.delenv("MASTER_PORT", raising=False)
    # 1152 training examples: a multiple of the global batch, so neither run pads or drops differently.
    dm = UnlearningDataModule(Digits(), RandomForget(128), train_size=1280, batch_size=64, seed=0)
    nets, keys = {}, {}
    for devices in (1, 2):
        references = ReferenceModels(
            TrainingRecipe(epochs=3, lr=0.1, batch_size=64, accelerator="cpu", devices=devices),
            oracle=False,
            cache_dir=str(tmp_path / str(devices)),
            progress_bar=False,
        )
        nets[devices] = references.prepare(tiny_mlp(), dm)["original"]
        keys[devices] = references.cache_key(tiny_mlp(), dm, "original")
    assert "MASTER_PORT" not in os.environ
    assert keys[1] == keys[2]
    assert max_difference(tiny_mlp(), nets[2]) > 0.1, "the weights trained in the spawned processes came back"
    assert max_difference(nets[1], nets[2]) <= DDP_TOL


def test_shadow_models_unlearn_with_the_audited_runs_execution(digits_dm, tmp_path, monkeypatch):
    import pickle

    import unlearn_pl.ulira.shadow as shadow

    dm = digits_dm()
    module = UnlearningModule(
        tiny_cnn(),
        unlearner=Finetune(),
        references=ReferenceModels(FAST_RECIPE),
        execution=NetworkExecution(channels_last=True),
        metrics=[],
        report=False,
    )
    spec = pickle.loads(
        pickle.dumps(shadow.make_spec(module, dm, {}, num_shadow=2, num_target_models=2, bank=str(tmp_path)))
    )
    built = []

    class Stop(Exception):
        pass

    def record(**kwargs):  # stands in for UnlearningModule: what would the shadow model's module get?
        built.append(kwargs["execution"])
        raise Stop

    monkeypatch.setattr(shadow, "UnlearningModule", record)
    with pytest.raises(Stop):
        shadow.train_and_unlearn(spec, 0)
    assert (built[0].compile, built[0].channels_last) == (False, True)

"""Per-example de-duplication, and a 2-process CPU DDP validation that must equal a single process."""

import json
from pathlib import Path

import pytest
import torch
from conftest import FAST_RECIPE, REPO, fast_trainer, run_script, tiny_mlp

from unlearn_pl import ReferenceModels, UnlearningDataModule, UnlearningModule
from unlearn_pl.data import Digits, RandomForget
from unlearn_pl.metrics import (
    DecisionRegions,
    EvaluationOutputs,
    LossAttack,
    MIAEfficacy,
    PerExampleStats,
    SplitAccuracy,
    TugOfWar,
    deduplicate,
)


# ------------------------------------------------------------------ de-duplication
def test_deduplicate_keeps_first_row_per_index_sorted():
    index = torch.tensor([5, 2, 7, 2, 5, 9])
    values = {"loss": torch.tensor([0.5, 0.2, 0.7, 0.21, 0.51, 0.9])}
    kept, out = deduplicate(index, values)
    assert kept.tolist() == [2, 5, 7, 9]
    assert out["loss"].tolist() == pytest.approx([0.2, 0.5, 0.7, 0.9])  # first occurrence wins


def test_per_example_stats_count_a_padded_example_once():
    logits = torch.tensor([[2.0, 0.0], [0.0, 2.0], [2.0, 0.0]])
    target = torch.tensor([0, 0, 0])
    stats = PerExampleStats()
    stats.update(logits[:2], target[:2], torch.tensor([10, 11]))
    # DistributedSampler-style padding: example 10 served again (and 12 once).
    stats.update(logits[[0, 2]], target[[0, 2]], torch.tensor([10, 12]))
    out = stats.compute()
    assert out["index"].tolist() == [10, 11, 12]
    assert out["correct"].tolist() == [1.0, 0.0, 1.0]  # accuracy 2/3, not 3/4


def test_evaluation_outputs_group_by_model_and_split():
    outputs = EvaluationOutputs()
    logits, target = torch.randn(4, 3), torch.tensor([0, 1, 2, 0])
    outputs.update("unlearned", "forget", logits, target, torch.tensor([3, 1, 3, 2]))
    outputs.update("original", "forget", logits, target, torch.tensor([3, 1, 3, 2]))
    results = outputs.results()
    assert list(results) == ["original", "unlearned"]
    assert results["unlearned"]["forget"]["index"].tolist() == [1, 2, 3]


# ------------------------------------------------------------------ rank-0 evaluation and broadcast
class FakeStrategy:
    def __init__(self, reply=None):
        self.reply, self.sent = reply, []

    def broadcast(self, obj, src=0):
        self.sent.append(obj)
        return obj if self.reply is None else self.reply


class FakeTrainer:
    world_size = 2

    def __init__(self, rank, reply=None):
        self.is_global_zero = rank == 0
        self.strategy = FakeStrategy(reply)


class FakeModule:
    def __init__(self):
        self.synced = 0

    def per_example(self):
        self.synced += 1
        return {}


class Boom(LossAttack):
    def __init__(self, fail):
        super().__init__()
        self.fail, self.calls = fail, 0

    def evaluate(self, trainer, pl_module):
        self.calls += 1
        if self.fail:
            raise ValueError("boom")
        return {"unlearned": {"x": 1.0}}


def test_rank_zero_evaluates_and_every_rank_gets_its_result():
    rank0, module0, cb0 = FakeTrainer(0), FakeModule(), Boom(fail=False)
    assert cb0._evaluate_synced(rank0, module0) == {"unlearned": {"x": 1.0}}
    assert rank0.strategy.sent == [("ok", {"unlearned": {"x": 1.0}})]
    rank1, module1, cb1 = FakeTrainer(1, reply=rank0.strategy.sent[0]), FakeModule(), Boom(fail=False)
    assert cb1._evaluate_synced(rank1, module1) == {"unlearned": {"x": 1.0}}
    assert (cb0.calls, cb1.calls) == (1, 0)  # fitted once
    assert module0.synced == module1.synced == 1  # but every rank took part in the sync


def test_an_error_on_rank_zero_is_raised_on_every_rank():
    rank0 = FakeTrainer(0)
    with pytest.raises(ValueError, match="boom"):
        Boom(fail=True)._evaluate_synced(rank0, FakeModule())
    assert rank0.strategy.sent == [("error", "ValueError: boom")]  # the others were told, not left waiting
    with pytest.raises(RuntimeError, match="failed on rank 0: ValueError: boom"):
        Boom(fail=False)._evaluate_synced(FakeTrainer(1, reply=rank0.strategy.sent[0]), FakeModule())


# ------------------------------------------------------------------ DDP vs one process
def make_module() -> tuple[UnlearningModule, UnlearningDataModule]:
    """Digits' default split has 1091 retain, 121 forget and 135 val examples: odd sizes, so a
    2-process DistributedSampler pads them by repeating examples."""
    dm = UnlearningDataModule(dataset=Digits(), forget=RandomForget(0.1), batch_size=64)
    metrics = [
        SplitAccuracy(),
        TugOfWar(),
        LossAttack(),
        LossAttack(nonmembers="val", seed=1),
        MIAEfficacy(features=["confidence", "entropy"]),
        DecisionRegions(num_planes=2, resolution=20, plot_resolution=20),
    ]
    module = UnlearningModule(tiny_mlp(), references=ReferenceModels(recipe=FAST_RECIPE), metrics=metrics, report=False)
    module.prepare_models(dm)
    return module, dm


def all_results(module: UnlearningModule, n: int = 6) -> dict:
    """The results of the first ``n`` metrics (those :func:`make_module` configures)."""
    return {f"{k}:{type(cb).__name__}": cb.results for k, cb in enumerate(module.metrics[:n])}


DDP_SCRIPT = """
import json, sys
sys.path[:0] = [{tests!r}, {here!r}]  # conftest, and this test module by name
import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

torch.set_num_threads(1)  # one core per rank: two ranks x all cores would oversubscribe the CPU
from test_metrics_ddp import all_results, make_module


class Record(Callback):
    def on_validation_epoch_end(self, trainer, pl_module):
        per_example = pl_module.per_example()
        # Rows this rank evaluated itself (before the gather): padding shows up here.
        local = {{key: sum(len(t) for t in stats.index) for key, stats in pl_module.evaluation.stats.items()}}
        json.dump(local, open(f"local-{{trainer.global_rank}}.json", "w"))
        if trainer.is_global_zero:
            torch.save(per_example, "per_example.pt")


if __name__ == "__main__":
    module, dm = make_module()
    trainer = pl.Trainer(
        accelerator="cpu", devices=2, strategy="ddp", logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, default_root_dir=".", callbacks=[Record()],
    )
    trainer.validate(module, datamodule=dm, verbose=False)
    assert trainer.world_size == 2
    json.dump(all_results(module), open(f"results-{{trainer.global_rank}}.json", "w"))
    json.dump([str(p) for p in module.metrics[5].figure_paths], open(f"figures-{{trainer.global_rank}}.json", "w"))
"""


def assert_close(a, b, path=""):
    if isinstance(a, dict):
        assert set(a) == set(b), f"{path}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_close(a[k], b[k], f"{path}/{k}")
    else:
        assert abs(a - b) <= 1e-6, f"{path}: {a} != {b}"


@pytest.mark.slow  # two fresh processes importing torch and Lightning: ~25 s on 2 busy cores
def test_ddp_validation_equals_single_process(tmp_path):
    seen = {}

    class Capture(SplitAccuracy):
        def evaluate(self, trainer, pl_module):
            seen.update(pl_module.per_example())
            return super().evaluate(trainer, pl_module)

    # One process first: it also trains the reference models into the cache the script reuses.
    module, dm = make_module()
    module.metrics.append(Capture())
    fast_trainer(tmp_path / "single").validate(module, datamodule=dm, verbose=False)
    single = json.loads(json.dumps(all_results(module)))

    run_script(DDP_SCRIPT.format(tests=str(REPO / "tests"), here=str(Path(__file__).resolve().parent)), tmp_path)

    local = [json.loads((tmp_path / f"local-{r}.json").read_text()) for r in (0, 1)]
    forget = len(dm.indices("forget"))
    # The premise: the sampler padded (121 forget examples over 2 ranks = 61 + 61 rows).
    assert local[0]["unlearned/forget"] + local[1]["unlearned/forget"] == forget + 1

    ranks = [json.loads((tmp_path / f"results-{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0] == ranks[1]  # every rank reports the same values (attacks: rank 0's, broadcast)
    assert_close(ranks[0], single)
    for name, values in single.items():
        assert values, f"{name} produced no results"

    # Plots are drawn once, by rank 0, in the run directory (default_root_dir without a logger).
    figures = [json.loads((tmp_path / f"figures-{r}.json").read_text()) for r in (0, 1)]
    assert figures[1] == [] and [(tmp_path / p).resolve().parent for p in figures[0]] == [
        tmp_path.resolve() / "regions"
    ]
    assert sorted(p.name for p in (tmp_path / "regions").iterdir()) == ["validate-after000epochs-forget-plane0.png"]

    gathered = torch.load(tmp_path / "per_example.pt")
    for model, splits in seen.items():
        for split, stats in splits.items():
            assert torch.equal(gathered[model][split]["index"], stats["index"]), (model, split)
            assert gathered[model][split]["index"].tolist() == sorted(dm.indices(split))
            for field, values in stats.items():
                # phi is a logit margin (|phi| up to ~15): float32 rounding of other batch shapes is relative.
                rtol = 1e-5 if field == "phi" else 0
                assert torch.allclose(gathered[model][split][field], values, atol=1e-6, rtol=rtol), (
                    model,
                    split,
                    field,
                )

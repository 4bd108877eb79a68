"""Original/oracle models: trained once, cached by hash, reused; checkpoints loaded safely."""

import pytest
import torch
from conftest import FAST_RECIPE, tiny_mlp

import unlearn_pl.references.models as refs
from unlearn_pl import ReferenceModels, TrainingRecipe
from unlearn_pl.references import load_weights


def test_second_prepare_reuses_the_cache(digits_dm, tmp_path, monkeypatch):
    r = ReferenceModels(recipe=FAST_RECIPE, cache_dir=str(tmp_path))
    first = r.prepare(tiny_mlp(), digits_dm())
    assert sorted(p.name.split("-")[0] for p in tmp_path.glob("*.pt")) == [
        "oracle",
        "original",
    ]  # beside their .lock files

    def fail(*a, **k):
        raise AssertionError("trained again despite a cached model")

    monkeypatch.setattr(refs, "train_classifier", fail)
    second = r.prepare(tiny_mlp(), digits_dm())
    for name in ("original", "oracle"):
        for a, b in zip(first[name].state_dict().values(), second[name].state_dict().values(), strict=True):
            assert torch.equal(a, b)


def test_training_curves_are_recorded_and_kept_in_the_cache(digits_dm, tmp_path, monkeypatch):
    """Each reference model's curve has one entry per epoch; its accuracy weighs every training
    example once (drop_last: whole batches), and a run that loads the model from the cache gets
    the same curve."""
    r = ReferenceModels(recipe=FAST_RECIPE, cache_dir=str(tmp_path))
    dm = digits_dm()
    nets = r.prepare(tiny_mlp(), dm)
    first = {k: {m: list(v) for m, v in h.items()} for k, h in r.histories.items()}
    assert set(first) == {"original", "oracle"}
    for which, split in (("original", "train"), ("oracle", "retain")):
        acc, loss = first[which]["train_acc"], first[which]["train_loss"]
        assert len(acc) == len(loss) == FAST_RECIPE.epochs
        assert all(0.0 <= a <= 1.0 for a in acc) and all(v > 0 for v in loss)
        # Learning shows: the last epoch is far better than the first, and close to the trained
        # network's own accuracy on its training data (the curve lags it by less than an epoch).
        assert acc[-1] > acc[0] + 0.3 and loss[-1] < loss[0] / 3
        x, y = _xy(dm, split)
        with torch.no_grad():
            trained = (nets[which](x).argmax(1) == y).float().mean().item()
        assert abs(acc[-1] - trained) < 0.05

    monkeypatch.setattr(refs, "train_classifier", lambda *a, **k: pytest.fail("trained again despite the cache"))
    again = ReferenceModels(recipe=FAST_RECIPE, cache_dir=str(tmp_path))
    again.prepare(tiny_mlp(), digits_dm())
    assert again.histories == first


def _xy(dm, split):
    items = [dm.split_dataset(split)[i] for i in range(len(dm.split_dataset(split)))]
    return torch.stack([x for _, x, _ in items]), torch.tensor([int(y) for _, _, y in items])


def test_original_memorizes_and_oracle_never_saw_the_forget_set(digits_dm, tmp_path):
    dm = digits_dm()
    nets = ReferenceModels(recipe=FAST_RECIPE, cache_dir=str(tmp_path)).prepare(tiny_mlp(), dm)
    _, x, y = next(iter(dm.dataloader("forget", batch_size=10_000)))
    with torch.no_grad():
        acc = {k: float((n(x).argmax(1) == y).float().mean()) for k, n in nets.items()}
    assert acc["original"] == 1.0
    assert acc["oracle"] < acc["original"]


def test_cache_key_depends_on_split_recipe_and_init(digits_dm, tmp_path):
    r = ReferenceModels(recipe=FAST_RECIPE, cache_dir=str(tmp_path))
    dm = digits_dm()
    dm.setup()
    key = r.cache_key(tiny_mlp(0), dm, "original")
    assert key == r.cache_key(tiny_mlp(0), dm, "original")
    assert key != r.cache_key(tiny_mlp(1), dm, "original")
    assert key != r.cache_key(tiny_mlp(0), digits_dm(seed=1), "original")
    assert key != ReferenceModels(recipe=TrainingRecipe(epochs=3), cache_dir=str(tmp_path)).cache_key(
        tiny_mlp(0), dm, "original"
    )
    assert r.cache_key(tiny_mlp(0), dm, "oracle") != key


def test_an_fp32_recipe_keeps_its_cache_key(digits_dm):
    """Pinned: a change of these keys makes every cached model be retrained; only a deliberate
    TRAINING_REVISION bump may change them (recipe fields added with a default stay out of the key)."""
    r, dm = ReferenceModels(recipe=FAST_RECIPE), digits_dm()
    assert (r.cache_key(tiny_mlp(0), dm, "original"), r.cache_key(tiny_mlp(0), dm, "oracle")) == (
        "13738c406ce3437ee28e",
        "0df4fa98f33f7b3ce6f4",
    )


def test_cache_key_changes_with_the_training_revision(digits_dm, tmp_path, monkeypatch):
    """Models cached by an older training procedure are never reused by a newer one."""
    r = ReferenceModels(recipe=FAST_RECIPE, cache_dir=str(tmp_path))
    dm = digits_dm()
    key = r.cache_key(tiny_mlp(0), dm, "original")
    monkeypatch.setattr(refs, "TRAINING_REVISION", refs.TRAINING_REVISION + 1)
    assert r.cache_key(tiny_mlp(0), dm, "original") != key


def test_corrupt_cache_entry_is_retrained_not_trusted(digits_dm, tmp_path):
    r = ReferenceModels(
        recipe=TrainingRecipe(epochs=1, batch_size=64, accelerator="cpu"), oracle=False, cache_dir=str(tmp_path)
    )
    dm = digits_dm()
    r.prepare(tiny_mlp(), dm)
    path = r.cache_path(tiny_mlp(), dm, "original")
    path.write_bytes(b"half-written")
    r.prepare(tiny_mlp(), dm)
    assert torch.load(path, weights_only=True)["state_dict"]
    assert not list(tmp_path.glob(".*.tmp")), "no temporary files left behind"


def test_load_weights_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_weights(tiny_mlp(), tmp_path / "none.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="corrupt"):
        load_weights(tiny_mlp(), bad)
    other = tmp_path / "other.pt"
    torch.save(torch.nn.Linear(3, 3).state_dict(), other)
    with pytest.raises(ValueError, match="another architecture or number of classes"):
        load_weights(tiny_mlp(), other)


def test_user_checkpoint_is_loaded_and_never_written(digits_dm, tmp_path):
    path = tmp_path / "mine.pt"
    net = tiny_mlp(5)
    torch.save(net.state_dict(), path)
    before = path.read_bytes()
    out = ReferenceModels(original=str(path), oracle=False, cache_dir=str(tmp_path / "c")).prepare(
        tiny_mlp(), digits_dm()
    )
    assert torch.equal(out["original"].net[1].weight, net.net[1].weight)
    assert path.read_bytes() == before and "oracle" not in out

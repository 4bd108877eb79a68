"""Decision regions: plane geometry, similarity, the callback's scores and plots, the metrics config."""

import copy
from pathlib import Path

import pytest
import torch
from conftest import REPO, fast_trainer, tiny_mlp
from torch import nn

from unlearn_pl.functional import make_plane, plane_grid, plane_points, predict_plane, region_similarity
from unlearn_pl.metrics import DecisionRegions, log_figure, plot_regions

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


class Constant(nn.Module):
    """Predicts ``cls`` for every input."""

    def __init__(self, cls: int, num_classes: int = 10) -> None:
        super().__init__()
        self.cls, self.num_classes = cls, num_classes

    def forward(self, x):
        logits = torch.zeros(len(x), self.num_classes)
        logits[:, self.cls] = 1.0
        return logits


def digits_plane(seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(3, 1, 8, 8, generator=g)
    return make_plane(x[0], x[1], x[2])


# ------------------------------------------------------------------ geometry
def test_plane_geometry_on_hand_made_points():
    x1, x2, x3 = torch.tensor([1.0, 1.0, 5.0]), torch.tensor([3.0, 1.0, 5.0]), torch.tensor([2.0, 4.0, 5.0])
    plane = make_plane(x1, x2, x3)
    assert torch.equal(plane.origin, x1)
    assert torch.allclose(plane.v1, torch.tensor([1.0, 0.0, 0.0]))
    assert torch.allclose(plane.v2, torch.tensor([0.0, 1.0, 0.0]))
    assert torch.allclose(plane.anchors, torch.tensor([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]]))
    assert torch.allclose(plane_points(plane, plane.anchors), torch.stack([x1, x2, x3]))
    alphas, betas = plane_grid(plane, resolution=5, margin=0.1)
    # x extent 2 → [-0.2, 2.2]; y extent 3 → [-0.3, 3.3]
    assert torch.allclose(alphas, torch.linspace(-0.2, 2.2, 5))
    assert torch.allclose(betas, torch.linspace(-0.3, 3.3, 5))


def test_plane_through_image_shaped_points_is_orthonormal_and_exact():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 2, 4, 4, generator=g)
    plane = make_plane(x[0], x[1], x[2])
    assert plane.v1.shape == plane.v2.shape == (2, 4, 4)
    v = torch.stack([plane.v1.flatten(), plane.v2.flatten()])
    assert torch.allclose(v @ v.T, torch.eye(2), atol=1e-6)
    assert torch.allclose(plane_points(plane, plane.anchors), x, atol=1e-5)
    assert plane.anchors[1, 0] == pytest.approx(float((x[1] - x[0]).norm()), rel=1e-6)


def test_degenerate_triplets_and_bad_arguments_are_rejected():
    a, b = torch.zeros(4), torch.ones(4)
    with pytest.raises(ValueError, match="x1 and x2 coincide"):
        make_plane(a, a.clone(), b)
    with pytest.raises(ValueError, match="collinear"):
        make_plane(a, b, 3 * b)
    with pytest.raises(ValueError, match="same shape"):
        make_plane(a, b, torch.ones(5))
    plane = make_plane(a, b, torch.tensor([1.0, 0, 0, 0]))
    with pytest.raises(ValueError, match="resolution must be >= 2"):
        plane_grid(plane, resolution=1)
    with pytest.raises(ValueError, match="margin must be >= 0"):
        plane_grid(plane, margin=-0.1)
    with pytest.raises(ValueError, match="same shape"):
        region_similarity(torch.zeros(3, 3), torch.zeros(4, 4))


# ------------------------------------------------------------------ predictions and similarity
def test_predictions_are_batched_and_batch_size_independent():
    model, plane = tiny_mlp().eval(), digits_plane()
    calls = []
    model.register_forward_hook(lambda m, inp, out: calls.append(len(inp[0])))
    big = predict_plane(model, plane, resolution=20, batch_size=10_000)
    assert calls == [400]
    small = predict_plane(model, plane, resolution=20, batch_size=64)
    assert calls[1:] == [64] * 6 + [16]
    assert big.shape == (20, 20) and torch.equal(big, small)
    assert len(big.unique()) > 1  # the plane crosses a decision boundary: a non-trivial test


def test_similarity_with_itself_is_one():
    model, plane = tiny_mlp().eval(), digits_plane()
    a = predict_plane(model, plane, resolution=50)
    assert region_similarity(a, predict_plane(copy.deepcopy(model), plane, resolution=50)) == 1.0
    assert region_similarity(a, predict_plane(tiny_mlp(seed=5).eval(), plane, resolution=50)) < 1.0


def test_similarity_with_a_constant_model_is_that_class_share():
    model, plane = tiny_mlp().eval(), digits_plane()
    a = predict_plane(model, plane, resolution=50)
    cls = int(a.flatten().mode().values)
    share = float((a == cls).float().mean())
    assert 0.0 < share < 1.0
    assert region_similarity(a, predict_plane(Constant(cls), plane, resolution=50)) == pytest.approx(share)
    absent = next(c for c in range(10) if not (a == c).any())
    assert region_similarity(a, predict_plane(Constant(absent), plane, resolution=50)) == 0.0


# ------------------------------------------------------------------ plots
def test_plot_is_written_as_png(tmp_path):
    model, plane = tiny_mlp().eval(), digits_plane()
    grids = {
        "original": predict_plane(model, plane, 40),
        "unlearned": predict_plane(tiny_mlp(seed=3).eval(), plane, 40),
    }
    fig = plot_regions(grids, plane, anchor_labels=[1, 2, 3], anchor_is_forget=[True, False, True], num_classes=10)
    assert len(fig.axes) == 3  # two panels and the colour bar
    path = tmp_path / "regions.png"
    fig.savefig(path)
    assert path.read_bytes()[:8] == PNG_MAGIC
    with pytest.raises(ValueError, match="square grids"):
        plot_regions({"a": torch.zeros(4, 4, dtype=torch.long), "b": torch.zeros(5, 5, dtype=torch.long)}, plane)


def test_log_figure_uses_add_figure_or_log_image(tmp_path):
    calls = []

    class Writer:
        def add_figure(self, tag, figure, global_step=None, close=True):
            calls.append(("add_figure", tag, global_step, close))

    class TensorBoardLike:
        experiment = Writer()

    class ImageLogger:
        experiment = object()

        def log_image(self, key, images, step=None):
            calls.append(("log_image", key, images, step))

    class CSVLike:
        experiment = object()

    class Trainer:
        loggers = [TensorBoardLike(), ImageLogger(), CSVLike()]
        global_step = 7

    used = log_figure(Trainer(), "regions/x", object(), tmp_path / "x.png")
    assert used == ["TensorBoardLike", "ImageLogger"]
    assert calls == [("add_figure", "regions/x", 7, False), ("log_image", "regions/x", [str(tmp_path / "x.png")], 7)]


# ------------------------------------------------------------------ the callback
def test_callback_scores_plots_and_seeding(prepared_module, tmp_path):
    from lightning.pytorch.loggers import CSVLogger

    regions = DecisionRegions(num_planes=3, resolution=30, seed=4, plot_planes=2, plot_resolution=40)
    module, dm = prepared_module(metrics=[regions], report=False)
    trainer = fast_trainer(tmp_path, logger=CSVLogger(tmp_path / "logs"))
    trainer.validate(module, datamodule=dm, verbose=False)
    first = regions.results
    assert set(first) == {"unlearned", "oracle"}  # every model but the original
    # Before any unlearning step the unlearned network is the original: nothing changed.
    assert first["unlearned"] == {"region_change": 0.0, "region_similarity": 1.0}
    assert 0.0 < first["oracle"]["region_change"] < 1.0
    assert 0.0 < first["oracle"]["region_similarity"] <= 1.0
    assert [p.parent for p in regions.figure_paths] == [Path(trainer.log_dir) / "regions"] * 2
    assert all(p.read_bytes()[:8] == PNG_MAGIC for p in regions.figure_paths)

    trainer.validate(module, datamodule=dm, verbose=False)
    assert regions.results == first  # seeded planes
    assert len(set(regions.figure_paths)) == 4  # never overwritten
    planes = regions.triplets(dm)
    assert all(split == "forget" for _, _, split in planes["forget"])
    assert [split for _, _, split in planes["far"]] == ["retain", "test", "retain"]


def test_callback_scores_equal_the_functional_computation(prepared_module, tmp_path):
    regions = DecisionRegions(num_planes=2, resolution=25, seed=0, plot=False, far_splits=["val"])
    module, dm = prepared_module(metrics=[regions], report=False)
    fast_trainer(tmp_path).validate(module, datamodule=dm, verbose=False)
    original, oracle = module.reference("original"), module.reference("oracle")
    planes = regions.triplets(dm)
    sims = {
        group: [region_similarity(predict_plane(original, p, 25), predict_plane(oracle, p, 25)) for p, _, _ in entries]
        for group, entries in planes.items()
    }
    assert regions.results["oracle"]["region_change"] == pytest.approx(1 - sum(sims["forget"]) / 2)
    assert regions.results["oracle"]["region_similarity"] == pytest.approx(sum(sims["far"]) / 2)


def test_callback_rejects_bad_arguments():
    with pytest.raises(ValueError, match="far_splits must be one or more of"):
        DecisionRegions(far_splits=["forget"])
    with pytest.raises(ValueError, match="num_planes must be an int >= 1"):
        DecisionRegions(num_planes=0)


# ------------------------------------------------------------------ the metrics config
def test_full_metrics_config_instantiates_every_metric():
    from jsonargparse import ArgumentParser
    from lightning.pytorch.callbacks import Callback

    parser = ArgumentParser()
    parser.add_argument("--model.init_args.metrics", type=list[Callback])
    cfg = parser.parse_path(str(REPO / "configs" / "metrics" / "full.yaml"), defaults=False)
    metrics = parser.instantiate_classes(cfg).model.init_args.metrics
    names = [type(m).__name__ for m in metrics]
    assert names == ["SplitAccuracy", "TugOfWar", "LossAttack", "MIAEfficacy", "DecisionRegions"]
    regions = metrics[-1]
    assert regions.resolution == 50 and regions.plot and regions.far_splits == ("retain", "test")
    assert metrics[3].features == ("confidence",) and not regions.during_fit


def test_region_plots_are_named_by_the_training_epochs_they_follow(prepared_module, tmp_path):
    """A plot at the end of the first epoch follows 1 epoch; a validate after a 2-epoch fit follows 2."""
    from lightning.pytorch.loggers import CSVLogger

    from unlearn_pl.unlearners import Finetune

    regions = DecisionRegions(num_planes=1, resolution=6, plot_planes=1, plot_resolution=6, during_fit=True)
    module, dm = prepared_module(metrics=[regions], report=False, unlearner=Finetune())
    trainer = fast_trainer(tmp_path, max_epochs=2, limit_train_batches=1, logger=CSVLogger(tmp_path / "logs"))
    trainer.fit(module, datamodule=dm)
    trainer.validate(module, datamodule=dm, verbose=False)
    names = [p.name for p in regions.figure_paths]
    assert names == [
        "fit-after001epochs-forget-plane0.png",
        "fit-after002epochs-forget-plane0.png",
        "validate-after002epochs-forget-plane0.png",
    ]


def test_decision_regions_show_their_progress_only_beside_the_trainers_bar(tmp_path, capsys):
    from unlearn_pl.metrics.regions import progress

    with progress(fast_trainer(tmp_path), "decision regions", 3) as advance:
        advance()
    assert "decision regions" not in capsys.readouterr().err
    seen: list[int] = []
    import rich.progress

    class Recording(rich.progress.Progress):
        def advance(self, task, advance=1):
            seen.append(advance)
            super().advance(task, advance)

    original = rich.progress.Progress
    rich.progress.Progress = Recording
    try:
        with progress(fast_trainer(tmp_path, enable_progress_bar=True), "decision regions", 3) as advance:
            advance()
            advance()
    finally:
        rich.progress.Progress = original
    assert seen == [1, 1]

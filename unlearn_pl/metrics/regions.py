"""Decision-region scores and plots (dbViz, Somepalli et al. 2022, as used by the overparameterization
study of Alon & Dar).

The geometry lives in :mod:`unlearn_pl.functional.regions`; this module picks seeded triplets
from the data module's splits, compares the models on their planes, and draws the plots.
matplotlib is optional (``pip install 'unlearn_pl[plots]'``) and imported only to plot.
"""

from __future__ import annotations

import contextlib
import typing
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import lightning.pytorch as pl
import numpy as np
import torch
from lightning.pytorch.trainer.states import TrainerFn
from lightning.pytorch.utilities import rank_zero_warn
from torch import Tensor, nn

from unlearn_pl.functional.regions import (
    Plane,
    make_plane,
    predict_plane,
    region_similarity,
)
from unlearn_pl.metrics.base import EvaluationCallback
from unlearn_pl.metrics.region_plots import log_figure, plot_regions
from unlearn_pl.metrics.run_report import run_dir
from unlearn_pl.names import MODEL_ORDER, ORIGINAL, REGION_CHANGE, REGION_SIMILARITY, Results
from unlearn_pl.protocols import UnlearningData, attached_data
from unlearn_pl.report import unique_path
from unlearn_pl.utils.arguments import (
    IntAtLeastTwo,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveInt,
    check_arguments,
)
from unlearn_pl.utils.describe import content_hash

if TYPE_CHECKING:
    pass

#: The model every other model's regions are compared with.
BASELINE = ORIGINAL
#: Splits far from the forget set, whose planes measure how much the rest stayed the same.
FarSplit = Literal["retain", "test", "val"]
FAR_SPLITS: tuple[str, ...] = typing.get_args(FarSplit)
#: Attempts at drawing a non-degenerate triplet (duplicated images span no plane).
_MAX_DRAWS = 20


@contextlib.contextmanager
def progress(trainer: pl.Trainer, description: str, total: int) -> Iterator[Callable[[], None]]:
    """A ``rich`` progress bar of ``total`` steps while the trainer shows its own bars; yields the
    function that advances it (a no-op without a bar)."""
    if trainer.progress_bar_callback is None or not trainer.is_global_zero:
        yield lambda: None
        return
    from rich.progress import Progress

    with Progress(transient=True) as bar:
        task = bar.add_task(description, total=total)
        yield lambda: bar.advance(task)


def _plane_key(plane: Plane, margin: float) -> str:
    """A content hash of a plane (and the grid margin), for memoizing predictions on it."""
    tensors = {"origin": plane.origin, "v1": plane.v1, "v2": plane.v2, "anchors": plane.anchors}
    return f"{float(margin)!r}:{content_hash(tensors)}"


class DecisionRegions(EvaluationCallback):
    """Decision-region change and similarity scores, and plots, of each model vs the original.

    ``num_planes`` planes through seeded triplets of forget examples give the **change score**
    (column ``region_change`` = mean over planes of 1 − similarity to the original: high = the
    regions moved near the forget set), and ``num_planes`` planes through triplets of
    ``far_splits`` examples (each plane from one split, cycling through them) give the
    **similarity score** (``region_similarity``: high = the regions elsewhere stayed put).
    Both are reported for every model but the original, so the oracle's row shows the target.

    Plots (``plot=True``): the first ``plot_planes`` forget planes, one panel per model, saved
    as PNG under ``<run dir>/regions/`` (never overwritten) and logged to loggers that record
    images (see :func:`log_figure`); paths are kept in ``self.figure_paths``.

    Multi-process runs: computed on global rank 0 only (the models and data are the same on
    every rank) and broadcast, so the scores are identical on all ranks and plots written once.

    Args:
        num_planes: planes per score (forget planes and far planes).
        resolution: grid points per axis for the scores (R; 50 as in dbViz).
        margin: widening of the triplet's bounding box on each side, as a fraction of its extent.
        far_splits: splits the similarity planes are drawn from (``retain``, ``test``, ``val``).
        seed: seeds the triplets (the same planes in every evaluation).
        batch_size: grid points per forward pass (256: larger chunks were slower per point on CPU;
            see :func:`~unlearn_pl.functional.predict_plane`).
        plot: draw plots (needs matplotlib; without it a warning is given and scores still run).
        plot_planes: how many forget planes to plot.
        plot_resolution: grid points per axis of the plots.
        during_fit: also evaluate at the validation epochs of ``fit`` (default: only in
            ``validate``/``test``; the scores cost ``2 · num_planes · R²`` forward passes per model).
    """

    rank_zero_compute = True

    def __init__(
        self,
        num_planes: PositiveInt = 10,
        resolution: IntAtLeastTwo = 50,
        margin: NonNegativeFloat = 0.1,
        far_splits: Sequence[FarSplit] = ("retain", "test"),
        seed: NonNegativeInt = 0,
        batch_size: PositiveInt = 256,
        plot: bool = True,
        plot_planes: NonNegativeInt = 1,
        plot_resolution: IntAtLeastTwo = 150,
        during_fit: bool = False,
    ) -> None:
        super().__init__(during_fit=during_fit)
        check_arguments(DecisionRegions.__init__, locals())
        if not far_splits:
            raise ValueError(f"far_splits must be one or more of {FAR_SPLITS}; got {list(far_splits)}")
        self.num_planes = num_planes
        self.resolution = resolution
        self.margin = margin
        self.far_splits = tuple(far_splits)
        self.seed = seed
        self.batch_size = batch_size
        self.plot = plot
        self.plot_planes = plot_planes
        self.plot_resolution = plot_resolution
        self.figure_paths: list[Path] = []
        self._folder: Path | None = None
        # Prediction grids of frozen models (the original and the oracle): their weights never
        # change and the planes are seeded, so with ``during_fit=True`` every evaluation after
        # the first predicts only the unlearned model (see :meth:`predict` for the key).
        self._frozen_grids: dict[tuple, Tensor] = {}

    # ------------------------------------------------------------ triplets
    def triplets(
        self, datamodule: Any, device: torch.device | str = "cpu"
    ) -> dict[str, list[tuple[Plane, Tensor, str]]]:
        """The seeded planes: ``{"forget": [...], "far": [...]}``, each entry
        ``(plane, anchor labels, split name)``."""
        rng = np.random.default_rng(self.seed)
        out: dict[str, list[tuple[Plane, Tensor, str]]] = {"forget": [], "far": []}
        for k in range(self.num_planes):
            out["forget"].append(self._draw(datamodule, "forget", rng, device))
            split = self.far_splits[k % len(self.far_splits)]
            out["far"].append(self._draw(datamodule, split, rng, device))
        return out

    @staticmethod
    def _draw(
        datamodule: Any, split: str, rng: np.random.Generator, device: torch.device | str
    ) -> tuple[Plane, Tensor, str]:
        dataset = datamodule.split_dataset(split)
        if len(dataset) < 3:
            raise ValueError(f"decision-region planes need 3 examples of split {split!r}; it has {len(dataset)}")
        error: ValueError | None = None
        for _ in range(_MAX_DRAWS):
            items = [dataset[int(k)] for k in rng.choice(len(dataset), size=3, replace=False)]
            try:
                x1, x2, x3 = (torch.as_tensor(x).to(device) for _, x, _ in items)
                plane = make_plane(x1, x2, x3)
            except ValueError as e:  # duplicated images: draw again
                error = e
                continue
            return plane, torch.tensor([int(y) for _, _, y in items]), split
        raise ValueError(f"no non-degenerate triplet in split {split!r} after {_MAX_DRAWS} draws: {error}")

    def before_evaluate(self, trainer: pl.Trainer, pl_module: Any) -> None:
        # trainer.log_dir broadcasts: resolve it on every rank, not inside rank 0's evaluate.
        self._folder = run_dir(trainer) / "regions"

    # ------------------------------------------------------------ scores
    @staticmethod
    def models(pl_module: Any) -> dict[str, nn.Module]:
        """The evaluated models by name, in report order (``unlearned`` is the module's network)."""
        names = sorted(
            pl_module.per_example(), key=lambda m: (MODEL_ORDER.index(m) if m in MODEL_ORDER else len(MODEL_ORDER), m)
        )
        return {m: pl_module.network if m == "unlearned" else pl_module.reference(m) for m in names}

    def evaluate(self, trainer: pl.Trainer, pl_module) -> Results:
        datamodule = attached_data(trainer)
        if not isinstance(datamodule, UnlearningData):
            raise ValueError(
                "DecisionRegions needs an unlearning data module (split_dataset(split)), e.g. UnlearningDataModule"
            )
        models = self.models(pl_module)
        if BASELINE not in models:
            raise ValueError(
                f"DecisionRegions compares with the {BASELINE!r} model, but only {sorted(models)} were evaluated"
            )
        planes = self.triplets(datamodule, pl_module.device)
        sims: dict[str, dict[str, list[float]]] = {m: {"forget": [], "far": []} for m in models if m != BASELINE}
        # Each plane costs len(models) · R² forward passes: minutes on a CPU, so show the progress.
        with progress(trainer, "decision regions", sum(map(len, planes.values()))) as advance:
            for group, entries in planes.items():
                for plane, _, _ in entries:
                    base = self.predict(models[BASELINE], plane, self.resolution)
                    for name in sims:
                        grid = self.predict(models[name], plane, self.resolution)
                        sims[name][group].append(region_similarity(base, grid))
                    advance()
        if self.plot and self.plot_planes:
            self._plot(trainer, models, planes["forget"][: self.plot_planes], datamodule.num_classes)
        return {
            name: {REGION_CHANGE: 1.0 - float(np.mean(s["forget"])), REGION_SIMILARITY: float(np.mean(s["far"]))}
            for name, s in sims.items()
        }

    def predict(self, model: nn.Module, plane: Plane, resolution: int) -> Tensor:
        """:func:`~unlearn_pl.functional.predict_plane` with this callback's margin and batch size,
        memoized for frozen models.

        A model counts as frozen when none of its parameters requires grad (how
        :class:`~unlearn_pl.UnlearningModule` holds its reference models). Its grids are cached
        under an explicit key: the content hash of its weights and buffers, its train/eval mode,
        the plane and the resolution, so a reused grid is always what a fresh prediction gives.
        """
        if any(p.requires_grad for p in model.parameters()):
            return predict_plane(model, plane, resolution, self.margin, self.batch_size)
        key = (content_hash(model), model.training, _plane_key(plane, self.margin), resolution)
        if key not in self._frozen_grids:
            self._frozen_grids[key] = predict_plane(model, plane, resolution, self.margin, self.batch_size)
        return self._frozen_grids[key]

    # ------------------------------------------------------------ plots
    @staticmethod
    def panel_name(name: str, model: nn.Module, models: dict[str, nn.Module]) -> str:
        """A plot panel's model name; the module's network is not called "unlearned" while it
        still holds the original's weights (a ``validate`` of a module that was never fit)."""
        original = models.get(BASELINE)
        if name != "unlearned" or original is None:
            return name
        same = len(model.state_dict()) == len(original.state_dict()) and all(
            torch.equal(a, b) for a, b in zip(model.state_dict().values(), original.state_dict().values(), strict=True)
        )
        return "network (original weights, not unlearned)" if same else name

    def _plot(
        self,
        trainer: pl.Trainer,
        models: dict[str, nn.Module],
        planes: list[tuple[Plane, Tensor, str]],
        num_classes: int | None,
    ) -> None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            rank_zero_warn(
                "DecisionRegions(plot=True) needs matplotlib (pip install 'unlearn_pl[plots]'); skipping plots"
            )
            return
        folder = self._folder if self._folder is not None else run_dir(trainer) / "regions"
        folder.mkdir(parents=True, exist_ok=True)
        stage = trainer.state.fn.value if trainer.state.fn is not None else "eval"
        # Named by the training epochs the plotted network has seen: in fit's validation at the end
        # of epoch e that is e + 1; in a later validate, every epoch of the fit (current_epoch).
        epochs = trainer.current_epoch + (1 if trainer.state.fn == TrainerFn.FITTING else 0)
        labels_of = {name: self.panel_name(name, model, models) for name, model in models.items()}
        for k, (plane, labels, split) in enumerate(planes):
            grids = {
                labels_of[name]: self.predict(model, plane, self.plot_resolution) for name, model in models.items()
            }
            fig = plot_regions(
                grids,
                plane,
                self.margin,
                anchor_labels=labels.tolist(),
                anchor_is_forget=[split == "forget"] * 3,
                num_classes=num_classes,
                title=f"decision regions on forget plane {k} ({stage}, after {epochs} epochs)",
            )
            path = unique_path(folder / f"{stage}-after{epochs:03d}epochs-forget-plane{k}.png")
            fig.savefig(path, dpi=100)
            log_figure(trainer, f"regions/forget_plane_{k}", fig, path)
            self.figure_paths.append(path)

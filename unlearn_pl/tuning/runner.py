"""The grid runner of validation-based tuning (SPEC §6).

For one method — an :class:`~unlearn_pl.UnlearningModule` (network, localizer, references,
metrics) with a configured unlearner — and a grid over the unlearner's constructor arguments and
the trainer's ``max_epochs``, :func:`tune` trains every candidate and scores it on validation data
only (see :mod:`unlearn_pl.tuning.objective`).

How a candidate is built: the unlearner's class is called with the configured unlearner's
arguments updated by the grid point (a *fresh* unlearner, so no state such as ResetFinetune's
``reset_done`` leaks between candidates); the module is a deep copy of the prepared template, so
it starts from the original weights with its own localizer and metric copies, while the frozen
original/oracle networks are shared (loaded or trained once, never retrained per candidate). Each
candidate is trained by a fresh trainer from the same seed, so its result does not depend on its
position in the grid.
"""

from __future__ import annotations

import contextlib
import copy
import csv
import inspect
import io
import itertools
import logging
import math
import os
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import lightning.pytorch as pl
from lightning.pytorch.callbacks import Callback, ModelCheckpoint, ProgressBar
from torch import Tensor

from unlearn_pl._io import write_json, write_text
from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.data.datasets import dataset_targets
from unlearn_pl.metrics.mia import loss_attack
from unlearn_pl.metrics.report import merge_results
from unlearn_pl.module import UnlearningModule
from unlearn_pl.tuning.objective import check_goal, check_lambdas, goal_values, objective_table, select
from unlearn_pl.unlearners.base import Unlearner

#: Grid keys that configure the trainer rather than the unlearner.
TRAINER_KEYS: tuple[str, ...] = ("max_epochs",)

#: Per-example statistics of one split: ``{field: 1-D tensor}`` (see ``UnlearningModule.per_example``).
SplitStats = Mapping[str, Tensor]


# ----------------------------------------------------------------------------- candidates
def constructor_parameters(cls: type) -> tuple[list[str], bool]:
    """Names of ``cls.__init__``'s keyword-capable parameters, and whether it takes ``**kwargs``."""
    names, any_keyword = [], False
    for p in list(inspect.signature(cls.__init__).parameters.values())[1:]:
        if p.kind is inspect.Parameter.VAR_KEYWORD:
            any_keyword = True
        elif p.kind in (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY):
            names.append(p.name)
    return names, any_keyword


def unlearner_arguments(unlearner: Unlearner) -> dict[str, Any]:
    """The constructor arguments of a configured unlearner, read back from its attributes.

    Unlearners follow scikit-learn's convention: each constructor argument is stored unchanged
    as an attribute of the same name, so a copy with some arguments changed can be built.

    Raises:
        ValueError: if an argument has no attribute of the same name (then pass the base
            arguments explicitly, ``tune(..., unlearner_args={...})``).
    """
    names, _ = constructor_parameters(type(unlearner))
    missing = [n for n in names if not hasattr(unlearner, n)]
    if missing:
        raise ValueError(
            f"cannot read constructor arguments {missing} of {type(unlearner).__name__} back: it keeps no "
            "attribute of the same name. Store each argument as self.<name>, or pass the base arguments "
            "explicitly with unlearner_args={...}"
        )
    return {n: getattr(unlearner, n) for n in names}


@dataclass
class Candidate:
    """One grid point.

    Attributes:
        index: position in the grid (``itertools.product`` order of the grid as given).
        params: the grid point, ``{key: value}`` (unlearner arguments and ``max_epochs``).
        unlearner_args: the full constructor arguments of this candidate's unlearner.
        max_epochs: the trainer's epochs (``None``: the trainer settings decide).
    """

    index: int
    params: dict[str, Any]
    unlearner_args: dict[str, Any]
    max_epochs: int | None


def expand_grid(
    grid: Mapping[str, Sequence[Any]], unlearner_cls: type[Unlearner], base_args: Mapping[str, Any]
) -> list[Candidate]:
    """Validate ``grid`` against the unlearner's constructor and list its candidates in order.

    Raises:
        ValueError: on an empty grid, a key that neither the unlearner nor the trainer accepts,
            a value that is not a non-empty list, duplicated values, or a bad ``max_epochs``.
    """
    if not grid:
        raise ValueError("the grid is empty; give at least one key, e.g. {'lr': [0.01, 0.1]}")
    accepted, any_keyword = constructor_parameters(unlearner_cls)
    clash = sorted(set(accepted) & set(TRAINER_KEYS))
    if clash:
        raise ValueError(
            f"{unlearner_cls.__name__} has constructor arguments {clash} that are also trainer grid keys; "
            "rename them in the unlearner"
        )
    for key, values in grid.items():
        if key not in TRAINER_KEYS and key not in accepted and not any_keyword:
            raise ValueError(
                f"unknown grid key {key!r}: {unlearner_cls.__name__} accepts {accepted}, and the trainer key "
                f"{list(TRAINER_KEYS)}"
            )
        if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or len(values) == 0:
            raise ValueError(f"grid[{key!r}] must be a non-empty list of values; got {values!r} (write {key}: [value, ...])")
        reprs = [repr(v) for v in values]
        duplicated = sorted({r for r in reprs if reprs.count(r) > 1})
        if duplicated:
            raise ValueError(f"grid[{key!r}] lists {duplicated} more than once; give each value once")
    for e in grid.get("max_epochs", []):
        if isinstance(e, bool) or not isinstance(e, int) or e < 1:
            raise ValueError(f"grid['max_epochs'] values must be integers >= 1; got {e!r}")
    keys = list(grid)
    candidates = []
    for index, values in enumerate(itertools.product(*(grid[k] for k in keys))):
        params = dict(zip(keys, values))
        args = {**base_args, **{k: v for k, v in params.items() if k not in TRAINER_KEYS}}
        candidates.append(Candidate(index, params, args, params.get("max_epochs")))
    return candidates


# ----------------------------------------------------------------------------- trainers
class TrainerSettings:
    """Builds the fresh trainers of the candidates from shared ``pl.Trainer`` keyword arguments.

    Every candidate gets its own deep copy of the configured callbacks (so no state such as an
    early-stopping counter is shared) and runs without logger, progress bar or model summary:
    the tuning table is the record, and the tuner shows one progress bar over candidates.
    Training runs without in-fit validation (each validation epoch evaluates every split for
    every model); each candidate is evaluated once, after training.

    Args:
        kwargs: ``pl.Trainer`` keyword arguments shared by all candidates (``max_epochs`` is
            overridden by the grid when the grid has it).
        trainer_class: the trainer class to instantiate.
    """

    #: Settings a candidate trainer never takes from ``kwargs`` (set by the tuner).
    OWNED: tuple[str, ...] = ("logger", "callbacks", "enable_progress_bar", "enable_model_summary", "enable_checkpointing")

    def __init__(self, kwargs: Mapping[str, Any] | None = None, trainer_class: type[pl.Trainer] = pl.Trainer) -> None:
        self.kwargs = dict(kwargs or {})
        if isinstance(self.kwargs.get("callbacks"), list):
            # A Trainer appends its default callbacks (progress bar…) to the list it is given:
            # keep our own list so those never reach the candidates.
            self.kwargs["callbacks"] = list(self.kwargs["callbacks"])
        self.trainer_class = trainer_class

    @property
    def max_epochs(self) -> int | None:
        """The configured epochs (``None`` if unset)."""
        return self.kwargs.get("max_epochs")

    def callbacks(self) -> list[Callback]:
        """Fresh copies of the configured callbacks. Left out: the CLI's config saver (the tuner
        saves the configuration with its results) and progress bars (candidates run without one)."""
        from lightning.pytorch.cli import SaveConfigCallback

        configured = self.kwargs.get("callbacks") or []
        configured = configured if isinstance(configured, list) else [configured]
        return [copy.deepcopy(c) for c in configured if not isinstance(c, (SaveConfigCallback, ProgressBar))]

    def build(self, *, max_epochs: int | None = None, extra_callbacks: Sequence[Callback] = (), fit: bool) -> pl.Trainer:
        """A new trainer for one candidate: for training (``fit=True``) or for its evaluation."""
        kw = copy.deepcopy({k: v for k, v in self.kwargs.items() if k not in self.OWNED})
        callbacks = self.callbacks() + list(extra_callbacks)
        kw.update(
            logger=False,
            callbacks=callbacks,
            enable_progress_bar=False,
            enable_model_summary=False,
            # Lightning refuses enable_checkpointing=False next to a configured ModelCheckpoint.
            enable_checkpointing=any(isinstance(c, ModelCheckpoint) for c in callbacks),
        )
        if fit:
            kw.update(limit_val_batches=0, num_sanity_val_steps=0)
            if max_epochs is not None:
                kw["max_epochs"] = max_epochs
        trainer = self.trainer_class(**kw)
        if trainer.world_size > 1:
            raise ValueError(
                f"tuning trains its candidates one after another in one process; the trainer settings ask for "
                f"{trainer.world_size} processes (devices/num_nodes): set devices=1 and num_nodes=1"
            )
        return trainer


# ----------------------------------------------------------------------------- scoring
class _CollectPerExample(Callback):
    """Keeps the module's per-example statistics of the last validation epoch (the module frees
    them at epoch end; callback hooks run before the module's)."""

    def __init__(self) -> None:
        self.stats: dict[str, dict[str, dict[str, Tensor]]] | None = None

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if not trainer.sanity_checking:
            self.stats = pl_module.per_example()  # type: ignore[operator]


def split_metrics(
    per_split: Mapping[str, SplitStats], true_targets: Tensor | None = None
) -> dict[str, float]:
    """``<split>_acc`` and ``<split>_loss`` of every non-empty split; with ``true_targets``
    (dataset labels before any relabeling), also ``forget_acc_true``: forget accuracy against the
    true labels (differs from ``forget_acc`` under the ``Mislabeled`` selector)."""
    out: dict[str, float] = {}
    for split, s in per_split.items():
        if len(s["index"]) == 0:
            continue
        out[f"{split}_acc"] = float(s["correct"].float().mean())
        out[f"{split}_loss"] = float(s["loss"].float().mean())
    forget = per_split.get("forget")
    if true_targets is not None and forget is not None and len(forget["index"]):
        truth = true_targets[forget["index"].long()]
        out["forget_acc_true"] = float((forget["prediction"].long() == truth).float().mean())
    return out


def validation_goals(forget: SplitStats, val: SplitStats, *, seed: int = 0) -> dict[str, float]:
    """Every tuning goal of one model, from its **forget and validation statistics only**.

    This is the single place goals are computed, and its signature is the guarantee that the
    test set never influences the choice of a candidate.

    Raises:
        ValueError: if the validation or forget set is empty.
    """
    for name, s in (("forget", forget), ("val", val)):
        if len(s["index"]) == 0:
            raise ValueError(
                f"the {name} set is empty, so candidates cannot be scored; tuning needs a validation set "
                "(data: val_fraction > 0) and a forget set"
            )
    forget_error = 1.0 - float(forget["correct"].float().mean())
    val_error = 1.0 - float(val["correct"].float().mean())
    # The SPEC §5 loss attack with validation examples as the non-members.
    attack = loss_attack(forget["loss"].double(), val["loss"].double(), seed=seed)
    return goal_values(forget_error, val_error, attack)


# ----------------------------------------------------------------------------- results
@dataclass
class CandidateResult:
    """A trained and scored candidate.

    Attributes:
        index: position in the grid.
        params: the grid point.
        metrics: the unlearned model's metrics on every split (test included: reported, never
            used to choose), merged with the module's own metric callbacks' values.
        goals: every goal's value (from forget and validation statistics).
        objective: ``{λ: J(λ)}`` for the tuned goal.
    """

    index: int
    params: dict[str, Any]
    metrics: dict[str, float]
    goals: dict[str, float]
    objective: dict[float, float]


@dataclass
class TuningResult:
    """The outcome of :func:`tune`.

    Attributes:
        goal: the tuned goal.
        lambdas: the λ values.
        grid: the grid as given.
        unlearner: the unlearner's import path.
        base_args: the unlearner arguments every candidate starts from.
        seed: the seed of every candidate's training and of the attack.
        candidates: every candidate, in grid order.
        selection: ``{λ: candidate index}``.
        references: ``{"original"/"oracle": {"metrics": ..., "goals": ...}}``.
        output_dir: where the tables were written (``None`` if not written).
    """

    goal: str
    lambdas: tuple[float, ...]
    grid: dict[str, list[Any]]
    unlearner: str
    base_args: dict[str, Any]
    seed: int
    candidates: list[CandidateResult]
    selection: dict[float, int]
    references: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    output_dir: Path | None = None

    def chosen(self, lam: float) -> CandidateResult:
        """The candidate chosen for ``lam``."""
        if float(lam) not in self.selection:
            raise KeyError(f"lambda {lam} was not tuned; tuned: {list(self.selection)}")
        return self.candidates[self.selection[float(lam)]]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dictionary of the whole run."""
        return _jsonable({
            "goal": self.goal,
            "lambdas": list(self.lambdas),
            "seed": self.seed,
            "unlearner": self.unlearner,
            "base_args": self.base_args,
            "grid": self.grid,
            "references": self.references,
            "candidates": [
                {"candidate": c.index, "params": c.params, "metrics": c.metrics, "goals": c.goals,
                 "J": {_lam_key(l): j for l, j in c.objective.items()}}
                for c in self.candidates
            ],
            "selection": [self._selection_row(lam) for lam in self.lambdas],
        })

    def _selection_row(self, lam: float) -> dict[str, Any]:
        c = self.chosen(lam)
        return {"lambda": lam, "candidate": c.index, "J": c.objective[lam], "goal": self.goal,
                "goal_value": c.goals[self.goal], "params": c.params, "metrics": c.metrics, "goals": c.goals}

    def summary(self) -> str:
        """A fixed-width text table of the choice per λ (validation scores, then test accuracy)."""
        header = ["lambda", "candidate", *self.grid, "J", "val_acc", f"goal_{self.goal}", "forget_acc", "test_acc"]
        rows = [header]
        for lam in self.lambdas:
            c = self.chosen(lam)
            rows.append([_lam_key(lam), str(c.index), *(str(c.params.get(k)) for k in self.grid),
                         *(f"{v:.4f}" for v in (c.objective[lam], c.metrics["val_acc"], c.goals[self.goal])),
                         *(f"{c.metrics[m]:.4f}" if m in c.metrics else "-" for m in ("forget_acc", "test_acc"))])
        widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
        lines = ["  ".join(cell.rjust(w) for cell, w in zip(r, widths)) for r in rows]
        lines.insert(1, "-" * len(lines[0]))
        return "\n".join(lines)

    def grid_csv(self) -> str:
        """The full grid table: one row per candidate (params, metrics, goals, J per λ, chosen for)."""
        chosen_for: dict[int, list[str]] = {}
        for lam, i in self.selection.items():
            chosen_for.setdefault(i, []).append(_lam_key(lam))
        metric_cols = _metric_columns(c.metrics for c in self.candidates)
        goal_cols = sorted({g for c in self.candidates for g in c.goals})
        header = ["candidate", *self.grid, *metric_cols, *(f"goal_{g}" for g in goal_cols),
                  *(f"J({_lam_key(l)})" for l in self.lambdas), "chosen_for_lambda"]
        rows = [[c.index, *(_cell(c.params.get(k)) for k in self.grid), *(c.metrics.get(m, "") for m in metric_cols),
                 *(c.goals.get(g, "") for g in goal_cols), *(c.objective[l] for l in self.lambdas),
                 ";".join(chosen_for.get(c.index, []))] for c in self.candidates]
        return _csv(header, rows)

    def selection_csv(self) -> str:
        """One row per λ: the chosen candidate, its J, goal value and all its metrics (test included)."""
        metric_cols = _metric_columns(c.metrics for c in self.candidates)
        header = ["lambda", "candidate", "goal", "J", "goal_value", *self.grid, *metric_cols]
        rows = []
        for lam in self.lambdas:
            c = self.chosen(lam)
            rows.append([lam, c.index, self.goal, c.objective[lam], c.goals[self.goal],
                         *(_cell(c.params.get(k)) for k in self.grid), *(c.metrics.get(m, "") for m in metric_cols)])
        return _csv(header, rows)


def _lam_key(lam: float) -> str:
    return f"{lam:g}"


def _cell(value: Any) -> Any:
    return value if isinstance(value, (int, float, str)) or value is None else repr(value)


def _csv(header: list[Any], rows: list[list[Any]]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def _metric_columns(metric_dicts: Iterator[Mapping[str, float]]) -> list[str]:
    splits = ("retain", "forget", "val", "test")
    names = {m for d in metric_dicts for m in d}

    def order(name: str) -> tuple[int, str]:
        prefix = name.split("_")[0]
        return (splits.index(prefix) if prefix in splits else len(splits), name)

    return sorted(names, key=order)


def _jsonable(obj: Any) -> Any:
    if isinstance(obj, Mapping):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, float) and math.isnan(obj):
        return None
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, Path):
        return str(obj)
    return repr(obj)


def write_results(result: TuningResult, output_dir: str | os.PathLike, extra_files: Mapping[str, str] | None = None,
                  split_manifest: Any = None) -> Path:
    """Write the tables into a new ``output_dir/version_<n>`` folder and return it.

    The files are staged in a temporary folder that is renamed into place, so a reader never
    sees half a result; existing results are never overwritten (the next free version is used).

    Files: ``grid.csv`` (every candidate), ``selection.csv`` (the chosen candidate per λ),
    ``tuning.json`` (everything, incl. reference models), ``split.json`` (the split manifest),
    plus ``extra_files`` (name → text, e.g. the CLI's ``config.yaml``).
    """
    root = Path(output_dir)
    root.mkdir(parents=True, exist_ok=True)
    stage = Path(tempfile.mkdtemp(prefix=".tuning-", dir=root))
    try:
        write_text(stage / "grid.csv", result.grid_csv())
        write_text(stage / "selection.csv", result.selection_csv())
        if split_manifest is not None:
            split_manifest.save(stage / "split.json")
        for name, text in (extra_files or {}).items():
            write_text(stage / name, text)
        write_json(stage / "tuning.json", result.to_dict())
        version = 0
        while True:
            target = root / f"version_{version}"
            if not target.exists():
                try:
                    # rename() of a folder is atomic; it fails if another run just took this name.
                    os.rename(stage, target)
                    return target
                except OSError:
                    if not target.exists():
                        raise
            version += 1
    except BaseException:
        for f in stage.glob("*"):
            f.unlink(missing_ok=True)
        with contextlib.suppress(OSError):
            stage.rmdir()
        raise


# ----------------------------------------------------------------------------- the runner
@contextlib.contextmanager
def _quiet_lightning() -> Iterator[None]:
    """Silence Lightning's per-trainer INFO lines (devices, cache reuse…) while candidates run,
    so the progress bar stays readable; warnings still show."""
    loggers = [logging.getLogger(n) for n in ("lightning.pytorch", "lightning.fabric")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.WARNING)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _candidate_module(template: UnlearningModule, unlearner: Unlearner) -> UnlearningModule:
    """A deep copy of the prepared template with ``unlearner`` in place of its own, no run report
    (the tuner writes its tables), and the frozen reference networks shared, not copied, with
    their per-example results: the first candidate's evaluation computes them for all."""
    memo: dict[int, Any] = {id(template.unlearner): unlearner, id(template._reference_memo): template._reference_memo}
    if template.report is not None:
        memo[id(template.report)] = None
    for name in template.references.names():
        ref = template.reference(name)
        memo[id(ref)] = ref
    module = copy.deepcopy(template, memo)
    module.automatic_optimization = unlearner.automatic_optimization
    return module


def _progress(enabled: bool):  # noqa: ANN202 — a rich Progress or a no-op stand-in
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(
        TextColumn("[bold]tuning[/bold] {task.description}"), BarColumn(), MofNCompleteColumn(),
        TimeElapsedColumn(), TimeRemainingColumn(), disable=not enabled,
    )


def tune(
    module: UnlearningModule,
    datamodule: UnlearningDataModule,
    grid: Mapping[str, Sequence[Any]],
    *,
    goal: str = "privacy",
    lambdas: Sequence[float] | None = None,
    trainer: TrainerSettings | Mapping[str, Any] | None = None,
    unlearner_args: Mapping[str, Any] | None = None,
    seed: int = 0,
    output_dir: str | os.PathLike | None = None,
    extra_files: Mapping[str, str] | None = None,
    progress: bool = True,
    on_candidate: Callable[[CandidateResult], None] | None = None,
    on_trained: Callable[[CandidateResult, UnlearningModule], None] | None = None,
) -> TuningResult:
    """Train every candidate of ``grid``, score each on validation data, choose one per λ.

    Args:
        module: the method, with an unlearner whose class and arguments are the starting point
            of every candidate. It is prepared (original/oracle loaded or trained and cached)
            if needed, and never trained itself.
        datamodule: the data (its validation set must be non-empty).
        grid: ``{key: [values]}`` over the unlearner's constructor arguments and ``max_epochs``,
            e.g. ``{"lr": [0.01, 0.1], "max_epochs": [2, 5]}``; candidates are the product, in
            the order given.
        goal: ``privacy``, ``privacy_mia`` or ``bias`` (see :mod:`unlearn_pl.tuning.objective`).
        lambdas: λ values (default: the paper's for the goal).
        trainer: the candidates' trainer settings, as :class:`TrainerSettings` or ``pl.Trainer``
            keyword arguments; ``max_epochs`` must be set here or in the grid.
        unlearner_args: the base unlearner arguments (default: read back from ``module.unlearner``).
        seed: seeds every candidate's training identically, and the attack.
        output_dir: if given, the tables are written to a new ``output_dir/version_<n>`` folder.
        extra_files: more text files to save with the tables (name → text).
        progress: show a progress bar over candidates.
        on_candidate: called with each candidate's result as soon as it is scored.
        on_trained: called with each candidate's result and its trained module before the module
            is dropped (e.g. to keep the unlearned network for plots); the module must not be
            trained further inside the call.

    Returns:
        The full grid table and the choice per λ.

    Example::

        module = UnlearningModule(network, localizer=DEL(0.3), unlearner=NegGradPlus(lr=0.01),
                                  references=ReferenceModels(recipe))
        result = tune(module, datamodule, {"lr": [0.005, 0.01], "max_epochs": [2, 5]},
                      goal="privacy", trainer={"accelerator": "cpu"}, output_dir="runs/tuning")
        result.chosen(0.4).metrics["test_acc"]
    """
    check_goal(goal)
    lams = check_lambdas(lambdas, goal)
    if module.unlearner is None:
        raise ValueError("the module has no unlearner; configure the method to tune (e.g. unlearner=ResetFinetune())")
    settings = trainer if isinstance(trainer, TrainerSettings) else TrainerSettings(trainer)
    unlearner_cls = type(module.unlearner)
    base = dict(unlearner_args) if unlearner_args is not None else unlearner_arguments(module.unlearner)
    candidates = expand_grid(grid, unlearner_cls, base)
    if "max_epochs" not in grid and settings.max_epochs is None:
        raise ValueError(
            "max_epochs is set neither in the grid nor in the trainer settings; give it (e.g. grid "
            "{'max_epochs': [2, 5]} or trainer max_epochs: 5) — Lightning's default of 1000 epochs is rarely intended"
        )
    # Build every unlearner before training anything: a bad value fails now, not after hours.
    unlearners = []
    for c in candidates:
        try:
            unlearners.append(unlearner_cls(**c.unlearner_args))
        except (TypeError, ValueError) as e:
            raise ValueError(f"candidate {c.index} {c.params} cannot build {unlearner_cls.__name__}: {e}") from e

    if not module.prepared:
        module.prepare_models(datamodule)
    datamodule.setup("fit")
    split = datamodule.split
    true_targets = dataset_targets(datamodule.train_set) if split is not None and split.relabels else None

    results: list[CandidateResult] = []
    references: dict[str, dict[str, dict[str, float]]] = {}
    with _quiet_lightning(), _progress(progress) as bar:
        task = bar.add_task("", total=len(candidates))
        for c, unlearner in zip(candidates, unlearners):
            bar.update(task, description=" ".join(f"{k}={v}" for k, v in c.params.items()))
            candidate = _candidate_module(module, unlearner)
            pl.seed_everything(seed, verbose=False)
            settings.build(max_epochs=c.max_epochs, fit=True).fit(candidate, datamodule=datamodule)
            collector = _CollectPerExample()
            settings.build(extra_callbacks=[collector], fit=False).validate(candidate, datamodule=datamodule, verbose=False)
            if collector.stats is None or "unlearned" not in collector.stats:
                raise RuntimeError(
                    "the candidate's validation produced no statistics; check the trainer's limit_val_batches"
                )
            callback_results = merge_results(candidate.metrics)  # the module's own metric callbacks
            per_model = {}
            for name, per_split in collector.stats.items():
                per_model[name] = {
                    "metrics": {**callback_results.get(name, {}), **split_metrics(per_split, true_targets)},
                    # Only the forget and validation statistics reach the goals.
                    "goals": validation_goals(per_split["forget"], per_split["val"], seed=seed),
                }
            if not references:
                references = {n: v for n, v in per_model.items() if n != "unlearned"}
            scored = per_model["unlearned"]
            val_acc = float(collector.stats["unlearned"]["val"]["correct"].float().mean())
            result = CandidateResult(
                c.index, c.params, scored["metrics"], scored["goals"], objective_table(val_acc, scored["goals"], goal, lams)
            )
            results.append(result)
            if on_candidate is not None:
                on_candidate(result)
            if on_trained is not None:
                on_trained(result, candidate)
            del candidate
            bar.advance(task)

    selection = select([r.metrics["val_acc"] for r in results], [r.goals[goal] for r in results], lams)
    tuning = TuningResult(
        goal=goal, lambdas=lams, grid={k: list(v) for k, v in grid.items()},
        unlearner=f"{unlearner_cls.__module__}.{unlearner_cls.__qualname__}", base_args=base, seed=seed,
        candidates=results, selection=selection, references=references,
    )
    if output_dir is not None:
        tuning.output_dir = write_results(tuning, output_dir, extra_files, split_manifest=split)
    return tuning

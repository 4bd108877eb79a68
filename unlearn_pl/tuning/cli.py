"""The ``unlearn-pl tune`` subcommand: a study (see :mod:`unlearn_pl.tuning.study`) from the command line.

LightningCLI subcommands are ``Trainer`` methods: the CLI reads a method's signature for the
subcommand's arguments. So the study command is :meth:`TuningTrainer.tune`, and
:class:`TuneSubcommand` (a mixin of the CLI class) registers it and makes ``TuningTrainer`` the
CLI's trainer class. ``TuningTrainer`` is a plain ``Trainer`` otherwise.

A study config is a normal experiment config plus the study's arguments at the top level
(``space``, ``grid``, ``seeds``, ``goal``…); configs compose as in ``fit``::

    unlearn-pl tune --config configs/tuning/privacy_digits.yaml --workers 2
    unlearn-pl tune --config configs/experiments/privacy_base.yaml --config configs/experiments/width_sweep.yaml \\
        --seeds "[0, 1, 2]" --data.init_args.train_size 2000

The model/data/trainer part of the composed config is saved as the study's ``base.yaml``; each
trial runs ``unlearn-pl fit --config base.yaml`` plus its overrides. Other machines join with the
same ``--storage URL --study_name NAME`` and the same config: the storage keeps the base config,
and a resumed or joined study with another one is refused. Several devices per trial:
``--trainer.devices 2 --trainer.strategy ddp_spawn`` (the ``ddp`` strategy's launcher re-runs the
command line, which here is the whole study); each process takes ``data.batch_size``, so halving
it gives the one-process run's optimizer steps and metrics.
"""

from __future__ import annotations

import inspect
import sys
from typing import Any, Literal

import lightning.pytorch as pl
from jsonargparse.typing import PositiveInt
from lightning.pytorch.cli import LightningCLI

from unlearn_pl.tuning.objective import Goal
from unlearn_pl.tuning.study import SEED_KEYS


class TuningTrainer(pl.Trainer):
    """Lightning's ``Trainer`` with every setting unchanged, plus :meth:`tune` (``unlearn-pl tune``)."""

    def tune(
        self,
        model: pl.LightningModule,
        datamodule: pl.LightningDataModule,
        space: dict | None = None,
        grid: dict | None = None,
        seeds: list[int] | None = None,
        goal: Goal = "privacy",
        lambdas: list[float] | None = None,
        search: Literal["grid", "open"] = "grid",
        n_trials: PositiveInt | None = None,
        workers: PositiveInt = 1,
        storage: str | None = None,
        study_name: str = "study",
        output_dir: str | None = None,
        noise_floor: bool = True,
        seed_keys: list[str] | None = None,
        base_config: str = "",
        logger_save_dir: bool = False,
        retry_failed: bool = False,
        heartbeat_interval: PositiveInt = 60,
    ) -> Any:
        """Run (or resume) a study: every candidate once per seed, each an ``unlearn-pl fit`` run
        scored on validation data (:func:`unlearn_pl.tuning.runner.run_study`).

        Args:
            model: unused (each trial builds its own from the config), as ``datamodule``.
            datamodule: unused.
            space: the axes, ``{axis: {key, values}}`` or ``{axis: [{name, set, grid}]}`` (plain
                ``dict``, like ``grid``, so the parser keeps their ``class_path`` blocks as text).
            grid: the default grid ``{dotted key: [values]}``, e.g. ``{trainer.max_epochs: [2, 5]}``.
            seeds: every candidate runs once per seed (default ``[0]``).
            goal: ``privacy`` (1 − |err(F) − err(V)|), ``privacy_mia`` (1 − 2·|loss-attack accuracy
                forget vs val − 0.5|; needs ``LossAttack(nonmembers=val)``) or ``bias`` (err(F)).
            lambdas: the λ values of J(λ) = (1−λ)·acc(val) + λ·goal (default: the goal's).
            search: ``grid`` (Optuna's GridSampler) or ``open`` (multi-objective TPE, ``n_trials``).
            n_trials: total trials of an open search.
            workers: processes on this machine, one torch thread each.
            storage: an Optuna RDB URL shared with other machines (default: ``study.log`` in the folder).
            study_name: the study's name in the storage and its folder under ``output_dir``.
            output_dir: where the study folder goes (default ``<default_root_dir>/studies``).
            noise_floor: measure the oracle-vs-independent-retrain gap per point and seed.
            seed_keys: the dotted keys a seed sets (default: ``study.SEED_KEYS``).
            base_config: the composed model/data/trainer config (filled in by the CLI).
            logger_save_dir: whether its logger takes save_dir/name (filled in by the CLI).
            retry_failed: queue the cells whose trials failed once more.
            heartbeat_interval: seconds between a trial's heartbeats in an RDB ``storage``; a trial
                silent for twice as long (its machine died) is failed and retried once.

        Exits with status 0 when every cell has a completed trial, 1 when some failed or the trials
        stopped (a dead worker, a full disk; one line says which and how to resume), 2 on a bad
        value (one line, before the first trial), 130 on Ctrl-C (the tables of what completed are
        written, and the same command resumes).
        """
        from unlearn_pl.tuning.engine import StudyInterrupted, WorkerDied
        from unlearn_pl.tuning.runner import (
            run_study,  # the runner imports the CLI lazily, and vice versa
        )

        folder_root = output_dir if output_dir is not None else f"{self.default_root_dir}/studies"
        try:
            result = run_study(
                [], base_config=base_config, space=space, grid=grid, seeds=seeds if seeds is not None else [0],
                goal=goal, lambdas=lambdas, search=search, n_trials=n_trials, workers=workers, storage=storage,
                study_name=study_name, output_dir=folder_root, seed_keys=seed_keys if seed_keys is not None else SEED_KEYS,
                noise_floor=noise_floor, logger_save_dir=logger_save_dir, logger=self.logger, retry_failed=retry_failed,
                heartbeat_interval=heartbeat_interval,
            )
        except StudyInterrupted:
            print("interrupted; run the same command again to resume", file=sys.stderr, flush=True)
            raise SystemExit(130) from None
        except WorkerDied as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        except OSError as e:
            print(f"error: the study could not be saved ({e.strerror or e}: {e.filename or 'its storage'}); the completed "
                  "trials are kept: free space (or fix the storage) and run the same command again to resume",
                  file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        if result.incomplete:
            print(f"error: {result.incomplete_line()}", file=sys.stderr, flush=True)
            raise SystemExit(1)
        return result


#: Every argument of ``tune`` (removed from the config before it is saved as the base config).
TUNE_ARGS = set(list(inspect.signature(TuningTrainer.tune).parameters)[1:]) - {"model", "datamodule"}


class TuneSubcommand:
    """Mixin for a ``LightningCLI`` subclass: adds the ``tune`` subcommand.

    Use it before ``LightningCLI`` in the bases (``class MyCLI(TuneSubcommand, LightningCLI)``).
    The CLI's trainer class defaults to :class:`TuningTrainer`.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("trainer_class", TuningTrainer)
        super().__init__(*args, **kwargs)

    @staticmethod
    def subcommands() -> dict[str, set[str]]:
        """Lightning's subcommands plus ``tune``."""
        return {**LightningCLI.subcommands(), "tune": {"model", "datamodule", "base_config", "logger_save_dir"}}

    def _prepare_subcommand_kwargs(self, subcommand: str) -> dict[str, Any]:
        kwargs = super()._prepare_subcommand_kwargs(subcommand)  # type: ignore[misc]
        if subcommand == "tune":
            config = self.config["tune"].clone()  # type: ignore[attr-defined]
            for key in [*TUNE_ARGS, "config"]:
                if key in config:
                    del config[key]
            parser = self._parser("tune")  # type: ignore[attr-defined]
            kwargs["base_config"] = parser.dump(config, skip_none=False, skip_check=True)
            logger = config.get("trainer.logger")
            init = logger.get("init_args") if hasattr(logger, "get") else None
            kwargs["logger_save_dir"] = bool(init is not None and "save_dir" in init and "name" in init)
        return kwargs

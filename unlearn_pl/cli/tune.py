"""The ``unlearn-pl tune`` subcommand: a study (:mod:`unlearn_pl.tuning`) from the command line.

A study config is a normal experiment config plus the study's arguments at the top level
(``space``, ``grid``, ``seeds``, ``goal``…); configs compose as in ``fit``::

    unlearn-pl tune --config configs/tuning/privacy_digits.yaml --workers 2
    unlearn-pl tune --config configs/experiments/privacy_base.yaml --config configs/experiments/width_sweep.yaml \\
        --seeds "[0, 1, 2]" --data.init_args.train_size 2000

The model/data/trainer part of the composed config is saved as the study's ``base.yaml``; each
trial runs ``unlearn-pl fit --config base.yaml`` plus its overrides, in-process, through the CLI
class's :attr:`~TuneSubcommand.trial_runner`. Other machines join with the same ``--storage URL
--study_name NAME`` and the same config: the storage keeps the base config, and a resumed or
joined study with another one is refused. Several devices per trial: ``--trainer.devices 2
--trainer.strategy ddp_spawn`` (the ``ddp`` strategy's launcher re-runs the command line, which
here is the whole study); each process takes ``data.batch_size``, so halving it gives the
one-process run's optimizer steps and metrics.
"""

from __future__ import annotations

import inspect
import sys
from typing import ClassVar, Literal

from unlearn_pl.cli.subcommands import LightningCLIMixin, configured_run
from unlearn_pl.cli.workers import config_gpus
from unlearn_pl.data.datamodule import UnlearningDataModule
from unlearn_pl.module import UnlearningModule
from unlearn_pl.tuning import SEED_KEYS, StudyResult, TrialRunner, run_study
from unlearn_pl.tuning.engine import StudyInterrupted, WorkerDied
from unlearn_pl.tuning.objective import Goal
from unlearn_pl.utils.arguments import PositiveInt, WorkerCount


class TuneSubcommand(LightningCLIMixin):
    """Mixin for :class:`~unlearn_pl.cli.subcommands.CLISubcommands` CLIs: adds the ``tune`` subcommand.

    The CLI class sets :attr:`trial_runner`, the top-level function that runs one trial's
    ``unlearn-pl`` arguments in this process (worker processes receive it pickled).
    """

    trial_runner: ClassVar[TrialRunner]

    @classmethod
    def subcommands(cls) -> dict[str, set[str]]:
        """The next class's subcommands plus ``tune`` (``model``/``datamodule`` come from the config)."""
        return {**super().subcommands(), "tune": {"model", "datamodule"}}

    def tune(
        self,
        model: UnlearningModule,
        datamodule: UnlearningDataModule,
        space: dict | None = None,
        grid: dict | None = None,
        seeds: list[int] | None = None,
        goal: Goal = "privacy",
        lambdas: list[float] | None = None,
        search: Literal["grid", "open"] = "grid",
        n_trials: PositiveInt | None = None,
        workers: WorkerCount = 1,
        storage: str | None = None,
        study_name: str = "study",
        output_dir: str | None = None,
        noise_floor: bool = True,
        seed_keys: list[str] | None = None,
        retry_failed: bool = False,
        heartbeat_interval: PositiveInt = 60,
        score_on: Literal["val", "test"] | None = None,
        margin: dict[str, float] | None = None,
        no_op: bool = False,
        reuse: list[str] | str | None = None,
    ) -> StudyResult:
        """Run (or resume) a study: every candidate once per seed, each one ``unlearn-pl fit`` run.

        The choice is made on validation data and scored on held-out data (:func:`unlearn_pl.tuning.run_study`).

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
            workers: processes on this machine, or ``auto`` (one per GPU, else per core); each has its own
                GPUs and ``cores // workers`` torch threads (docs/gpu.md).
            storage: an Optuna RDB URL shared with other machines (default: ``study.log`` in the folder).
            study_name: the study's name in the storage and its folder under ``output_dir``.
            output_dir: where the study folder goes (default ``<default_root_dir>/studies``).
            noise_floor: retrain each point's oracle independently per seed: the noise floor, and
                the second retrain of the target the gaps are measured to.
            seed_keys: the dotted keys a seed sets (default: ``unlearn_pl.tuning.SEED_KEYS``).
            retry_failed: queue the cells whose trials failed once more.
            heartbeat_interval: seconds between a trial's heartbeats in an RDB ``storage``; a trial
                silent for twice as long (its machine died) is failed and retried once.
            score_on: the data the choice is scored on besides validation: ``test`` (held out:
                ``J_test``, ``goal_test``; the default) or ``val`` (the data that chose; the default
                for goal ``privacy_mia``, whose loss attack runs on validation data).
            margin: the equivalence margin per metric, ``{test_acc: 0.02}``: differences.csv tests
                equivalence (TOST) within ±margin for those metrics.
            no_op: add the original itself (:class:`~unlearn_pl.unlearners.NoOp`) as the first
                candidate of every point, so a chosen unlearning setting has to beat doing nothing.
            reuse: names of finished studies (in ``storage``, or folders of ``output_dir``) whose
                completed trials of the cells this grid shares are copied in first, so a grid grown
                under a new ``study_name`` runs only its new cells; each must have run the same base
                config and candidate settings. One name may be given bare (``--reuse small``).

        Exits with status 0 when every cell has a completed trial, 1 when some failed or the trials
        stopped (a dead worker, a full disk; one line says which and how to resume), 2 on a bad
        value (one line, before the first trial), 130 on Ctrl-C (the tables of what completed are
        written, and the same command resumes).
        """
        config = self.config["tune"]
        base_config = configured_run(self, "tune", TUNE_ARGS)
        logger = config.get("trainer.logger")
        init = logger.get("init_args") if hasattr(logger, "get") else None
        trainer = self.trainer
        try:
            result = run_study(
                [],
                runner=type(self).trial_runner,
                base_config=base_config,
                space=space,
                grid=grid,
                seeds=seeds if seeds is not None else [0],
                goal=goal,
                lambdas=lambdas,
                search=search,
                n_trials=n_trials,
                workers=workers,
                gpus_per_trial=config_gpus(config, model),
                storage=storage,
                study_name=study_name,
                output_dir=output_dir if output_dir is not None else f"{trainer.default_root_dir}/studies",
                seed_keys=seed_keys if seed_keys is not None else SEED_KEYS,
                noise_floor=noise_floor,
                logger_save_dir=bool(init is not None and "save_dir" in init and "name" in init),
                logger=trainer.logger,
                retry_failed=retry_failed,
                heartbeat_interval=heartbeat_interval,
                score_on=score_on,
                margin=margin,
                no_op=no_op,
                reuse=reuse or (),
            )
        except StudyInterrupted:
            print("interrupted; run the same command again to resume", file=sys.stderr, flush=True)
            raise SystemExit(130) from None
        except WorkerDied as e:
            print(f"error: {e}", file=sys.stderr, flush=True)
            raise SystemExit(1) from None
        except OSError as e:
            print(
                f"error: the study could not be saved ({e.strerror or e}: {e.filename or 'its storage'}); the completed "
                "trials are kept: free space (or fix the storage) and run the same command again to resume",
                file=sys.stderr,
                flush=True,
            )
            raise SystemExit(1) from None
        if result.diverged:
            print(f"note: {result.diverged_line()}", file=sys.stderr, flush=True)
        if result.incomplete:
            print(f"error: {result.incomplete_line()}", file=sys.stderr, flush=True)
            raise SystemExit(1)
        return result


#: Every argument of ``tune`` (removed from the config before it is saved as the base config).
TUNE_ARGS = set(inspect.signature(TuneSubcommand.tune).parameters) - {"self", "model", "datamodule"}

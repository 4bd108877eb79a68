"""Run a study (:mod:`unlearn_pl.tuning.study`) on the engine, then write what it found.

:func:`run_study` creates or resumes the Optuna study, runs its trials and the noise floor's with
:func:`~unlearn_pl.tuning.engine.run_trials`, each through the trial runner it is given, and writes
into the study folder (:mod:`~unlearn_pl.tuning.results`):

- ``study.log``: the Optuna journal (unless ``storage`` names another; ``optuna-dashboard study.log``);
- ``trials.csv``: every trial that drew its parameters (state, axes, grid params, seed, duration,
  metrics, goals, J(λ) on validation and on the held-out split, a completed trial's gaps to its
  seed's target, error, run folder, ``retry_of``);
- ``selection.csv``: per point and λ the choice per seed (:func:`~unlearn_pl.tuning.choice.parse_chosen`
  reads it back) and the one setting with the highest mean J, each metric's mean with its 95%
  interval over seeds, the gaps to the target (the mean of each seed's two retrains) next to the
  noise floor, and the cells and seeds without a completed trial (:mod:`~unlearn_pl.tuning.selection`);
- ``differences.csv``: along each axis, every value minus the first, paired by seed, with n, the
  minimal detectable effect, an equivalence test against a stated ``margin``, a verdict, and
  Holm-adjusted verdicts per claim (:mod:`~unlearn_pl.tuning.differences`);
- ``noise_floor.csv``: per point and seed, ``|oracle − independent retrain|`` per metric;
- ``pareto.png``, ``differences.png`` (also sent to a Lightning logger that takes figures) and
  ``study.json`` (settings, which data chose and which scored, the one setting per point and λ,
  the claims, trial counts per state).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import optuna

from unlearn_pl.tuning.checks import check_candidates, check_margins, check_scoring, check_seeds
from unlearn_pl.tuning.engine import (
    HEARTBEAT_INTERVAL,
    StudyInterrupted,
    WorkerDied,
    copy_completed,
    journal_storage,
    open_storage,
    run_trials,
)
from unlearn_pl.tuning.objective import check_lambdas
from unlearn_pl.tuning.results import StudyResult, write_results
from unlearn_pl.tuning.space import expand_space
from unlearn_pl.tuning.stored import (
    check_lender,
    check_same_base,
    check_same_candidates,
    check_seed_choices,
    lender_study,
    make_folder,
    resolver,
)
from unlearn_pl.tuning.study import SEED_KEYS, NoiseFloorObjective, StudyObjective, TrialRunner
from unlearn_pl.utils.io import write_text


def run_study(
    base_args: Sequence[str],
    *,
    runner: TrialRunner,
    space: Mapping[str, Any] | None = None,
    grid: Mapping[str, Sequence[Any]] | None = None,
    seeds: Sequence[int] = (0,),
    goal: str = "privacy",
    lambdas: Sequence[float] | None = None,
    search: str = "grid",
    n_trials: int | None = None,
    workers: int | str = 1,
    gpus_per_trial: int = 0,
    storage: str | os.PathLike | optuna.storages.BaseStorage | None = None,
    study_name: str = "study",
    output_dir: str | os.PathLike = "runs/studies",
    seed_keys: Sequence[str] = SEED_KEYS,
    noise_floor: bool = True,
    logger_save_dir: bool = False,
    logger: Any = None,
    quiet: bool = False,
    base_config: str | None = None,
    retry_failed: bool = False,
    heartbeat_interval: int = HEARTBEAT_INTERVAL,
    score_on: str | None = None,
    margin: Mapping[str, float] | None = None,
    no_op: bool = False,
    reuse: Sequence[str] | str = (),
) -> StudyResult:
    """Run (or resume) a study and write its results into ``<output_dir>/<study_name>``.

    ``base_args`` are the ``unlearn-pl fit`` arguments of the base config (``["--config",
    "a.yaml", …]``), and ``runner`` runs each trial's arguments in-process (the command line's
    :func:`unlearn_pl.cli.run_cli`, a top-level function: worker processes receive it); ``base_config``, a composed config's text (what ``unlearn-pl tune`` passes),
    is saved as the folder's ``base.yaml`` and goes first. The study keeps it in its storage: a
    resumed study, or a worker joining from another machine, must bring the same settings
    (:func:`~unlearn_pl.tuning.stored.check_same_base`), so trials of two settings never mix and the
    ``base.yaml`` the earlier trials ran stays. ``logger`` receives the plots; ``quiet`` skips
    printing the summary; the other arguments are ``unlearn-pl tune``'s
    (:meth:`unlearn_pl.cli.tune.TuneSubcommand.tune`): ``score_on`` the split the choice is scored
    on besides validation (default ``test``; ``val`` for goal ``privacy_mia``), ``margin`` the
    equivalence margin per metric, ``no_op`` a do-nothing candidate first at every point
    (:func:`~unlearn_pl.tuning.space.expand_space`), ``reuse`` the studies (one name, or a list; same storage, or
    journals in ``output_dir``) whose completed trials of shared cells are copied in before any
    trial runs, so a grid grown under a new name runs only its new cells
    (:func:`~unlearn_pl.tuning.engine.copy_completed`; each lender must have run the same base config
    and candidate settings, :func:`~unlearn_pl.tuning.stored.check_lender`), ``gpus_per_trial`` the GPUs a trial trains on (each worker gets
    its own; :func:`~unlearn_pl.tuning.engine.run_trials`). An ``open`` search
    runs a multi-objective TPE over the same space for ``n_trials`` trials: its Pareto front of
    validation accuracy vs goal holds the J(λ) choice of every λ.

    Every candidate's config is built and checked before the first trial
    (:func:`~unlearn_pl.tuning.checks.check_candidates`); a refused value raises ``ValueError``
    and changes nothing. A failed trial is recorded and the study goes on: the result's
    ``incomplete`` names the cells without a completed trial. A cell whose network diverged (NaN or
    infinite weights) ran to its outcome: the result's ``diverged`` names it, and it counts as
    incomplete only where every cell of a point diverged on a seed (nothing to choose there).
    ``retry_failed`` queues the failed cells, diverged ones too, once more.

    Raises:
        ValueError: a bad setting or value, named.
        StudyInterrupted, WorkerDied, OSError: the trials stopped (Ctrl-C, a dead worker, a full
            disk); the tables of what completed are written first.
    """
    lams = check_lambdas(lambdas, goal)
    lender_names = [reuse] if isinstance(reuse, str) else list(reuse)  # one name bare: a str is a Sequence of letters
    if search not in ("grid", "open") or (search == "open" and n_trials is None):
        raise ValueError(f"search must be 'grid', or 'open' with n_trials; got search={search!r}, n_trials={n_trials}")
    if lender_names and (search != "grid" or study_name in lender_names):
        raise ValueError(
            f"reuse: {lender_names} cannot lend trials to study {study_name!r} (search {search!r}): only a grid "
            "search copies cells, from studies other than itself"
        )
    seeds = check_seeds(seeds)
    score_on, margins = check_scoring(goal, score_on), check_margins(margin)
    candidates = expand_space(space, grid, no_op)
    folder = make_folder(Path(output_dir) / study_name)
    # Every candidate is built before the study is touched: a refused value changes nothing stored.
    with tempfile.TemporaryDirectory(prefix="unlearn_pl-base-") as scratch:
        check_args = list(base_args)
        if base_config is not None:
            check_args = ["--config", str(write_text(Path(scratch) / "base.yaml", base_config)), *check_args]
        check_candidates(
            StudyObjective(
                check_args, candidates, seeds, goal, scratch, list(seed_keys), logger_save_dir, runner=runner
            ),
            score_on,
        )
    given_storage = open_storage(storage, heartbeat_interval) if storage is not None else None
    # The studies lending trials are checked before this one is opened: a refusal stores nothing.
    lenders = [lender_study(name, given_storage, Path(output_dir)) for name in lender_names]
    for lender in lenders:
        check_lender(lender, base_config, candidates, resolver(runner))
    storage = given_storage or journal_storage(folder / "study.log")
    study = optuna.create_study(
        study_name=study_name, storage=storage, directions=["maximize"] * 2, load_if_exists=True
    )
    seed_choices = check_seed_choices(study, seeds, search)
    if base_config is not None:
        check_same_base(study, base_config, resolver(runner), candidates=candidates)
        base_args = ["--config", str(write_text(folder / "base.yaml", base_config)), *base_args]
    check_same_candidates(study, candidates)
    objective = StudyObjective(
        list(base_args),
        candidates,
        seeds,
        goal,
        str(folder),
        list(seed_keys),
        logger_save_dir,
        seed_choices,
        runner=runner,
    )
    settings = {
        "base_args": list(base_args),
        "space": space,
        "grid": grid,
        "no_op": no_op,
        "search": search,
        "n_trials": n_trials,
        "seed_keys": list(seed_keys),
        "reuse": lender_names,
    }
    for lender in lenders:
        copied = copy_completed(study, lender, objective.grid(), objective.values_of)
        if not quiet:
            print(f"reuse: {len(copied)} completed trials copied from study {lender.study_name!r}")
    floor_name = f"{study_name}.noise_floor"
    try:
        if search == "grid":
            study = run_trials(
                objective,
                study_name=study_name,
                storage=storage,
                directions=("maximize",) * 2,
                grid=objective.grid(),
                workers=workers,
                retry_failed=retry_failed,
                gpus_per_trial=gpus_per_trial,
            )
        else:
            study = run_trials(
                objective,
                study_name=study_name,
                storage=storage,
                directions=("maximize",) * 2,
                sampler=optuna.samplers.TPESampler(seed=0, multivariate=True),
                n_trials=n_trials,
                distributions=objective.distributions(),
                workers=workers,
                gpus_per_trial=gpus_per_trial,
            )
        floor = None
        if noise_floor:
            floor = optuna.create_study(
                study_name=floor_name, storage=storage, direction="maximize", load_if_exists=True
            )
            floor_objective = NoiseFloorObjective(
                replace(objective, seed_choices=check_seed_choices(floor, seeds, "grid"))
            )
            floor = run_trials(
                floor_objective,
                study_name=floor_name,
                storage=storage,
                grid=floor_objective.grid(),
                workers=workers,
                retry_failed=retry_failed,
                gpus_per_trial=gpus_per_trial,
            )
    except (StudyInterrupted, WorkerDied, OSError):
        # What completed is kept in the storage; its tables are written before the one-line report.
        with contextlib.suppress(Exception):
            study = optuna.load_study(study_name=study_name, storage=storage)
            floor = optuna.load_study(study_name=floor_name, storage=storage) if noise_floor else None
            write_results(
                study,
                floor,
                objective,
                lams,
                folder,
                settings,
                logger=logger,
                quiet=True,
                score_on=score_on,
                margins=margins,
            )
        raise
    return write_results(
        study, floor, objective, lams, folder, settings, logger=logger, quiet=quiet, score_on=score_on, margins=margins
    )

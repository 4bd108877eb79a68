"""Run an Optuna study's trials in one or several processes, all on one storage.

This is Optuna's documented pattern for parallel optimization ("Easy Parallelization"): every
worker process opens the same study and takes trials from the storage (a journal file here, an
RDB server across machines); there is no job queue of ours. Trials go through Optuna's
ask-and-tell interface, so a worker only ever creates a trial it runs. API::

    run_trials(objective, *, study_name, storage, sampler=None, directions=("maximize",),
               n_trials=None, workers=1, grid=None, retry_failed=False, gpus_per_trial=0) -> optuna.Study
    copy_completed(target, source, grid) -> list[optuna.trial.FrozenTrial]
    journal_storage(path) -> optuna.storages.JournalStorage
    open_storage(storage, heartbeat_interval=60) -> optuna.storages.BaseStorage

Its modules: :mod:`.storage` (journal and RDB storages), :mod:`.queue` (the cells of a grid and
the trial a worker takes next), :mod:`.worker` (one worker's loop and the trials of dead workers),
:mod:`.signals` (interrupts), :mod:`.devices` (each worker's GPUs and threads), :mod:`.processes`
(worker processes), :mod:`.reuse` (completed trials copied from another study) and :mod:`.run`
(:func:`run_trials`).

- **Grids** (:class:`Grid`, or a ``GridSampler``'s grid): every cell is queued once as a trial
  with its parameters (Optuna's trial queue, ``enqueue_trial``) and the workers take queued trials
  only, so no trial without parameters is ever created and the run ends when the queue is empty.
  Adding cells later (more seeds) queues just the new ones. A cell queued twice by two processes
  that started at once runs once: the later copy is PRUNED with ``duplicate_of``. A completed
  trial copied twice from another study (:func:`copy_completed` in two processes at once) counts
  once: only the first copy stands (:func:`repeated_copies`).
- **Open searches** (a sampler and ``n_trials``, the study's total over all workers and runs):
  each trial is drawn with ``study.ask(fixed_distributions=…)``, its parameters at once.
- **Failures are the trial's**: an exception or ``SystemExit`` inside the objective (the CLI exits
  with status 2 on a bad value) is recorded as FAIL with its one-line error (user attr ``error``)
  and the study goes on. Such a trial is not retried, unless ``retry_failed`` queues its cell again.
  A trial whose network diverged (:class:`~unlearn_pl.utils.errors.DivergenceError`: NaN or
  infinite weights) is marked ``diverged``: its FAIL is a finding about its cell, not an error.
- **Dead workers**: a RUNNING trial whose worker process on this host is gone (journal), or whose
  heartbeat stopped (RDB storage from :func:`open_storage`, Optuna's ``heartbeat_interval``), is
  marked FAIL and retried once by Optuna's ``RetryFailedTrialCallback(max_retry=1)``: a retry that
  dies too ends the chain. Killing the process that started the workers stops them.
- **Interrupts**: Ctrl-C (SIGINT) or SIGTERM stops every worker within seconds; the running trials
  are marked FAIL with ``interrupted = True`` and their cells are queued again on the next run.
  :func:`run_trials` then raises :class:`StudyInterrupted`; a worker that died raises :class:`WorkerDied`.
- **Devices**: each worker process gets its own GPUs (``CUDA_VISIBLE_DEVICES``, round-robin when
  workers outnumber GPUs) when the trials train on GPUs (``gpus_per_trial``), and ``cores // workers``
  torch threads; a trial asking for more GPUs than a worker owns is refused before the first trial.
  ``workers="auto"``: one worker per GPU (or per core for CPU trials).
- **Growing a grid**: Optuna fixes a categorical parameter's choices at its first record, so a
  grid with more cells is a new study; :func:`copy_completed` starts it from another study's
  completed trials of the cells both share (:mod:`.reuse`), and only the new cells run.
- **Other machines** join by calling :func:`run_trials` with the same RDB URL and study name,
  e.g. ``unlearn-pl tune … --storage postgresql://… --study_name NAME``.

Example::

    def objective(trial):                      # top level: picklable
        return -(trial.suggest_categorical("x", [0, 1, 2]) - 1) ** 2

    study = run_trials(objective, study_name="demo", storage=journal_storage("runs/demo/study.log"),
                       sampler=optuna.samplers.GridSampler({"x": [0, 1, 2]}), workers=2)
"""

from unlearn_pl.tuning.engine.devices import AUTO, trial_gpus
from unlearn_pl.tuning.engine.queue import (
    DIVERGED,
    REUSED_FROM,
    Grid,
    cell_key,
    final_failure,
    queue_cells,
    repeated_copies,
    trial_cell,
)
from unlearn_pl.tuning.engine.reuse import copy_completed
from unlearn_pl.tuning.engine.run import run_trials
from unlearn_pl.tuning.engine.signals import StudyInterrupted, WorkerDied
from unlearn_pl.tuning.engine.storage import HEARTBEAT_INTERVAL, journal_storage, open_storage
from unlearn_pl.tuning.engine.worker import Objective, fail_interrupted_trials

__all__ = [
    "AUTO",
    "DIVERGED",
    "HEARTBEAT_INTERVAL",
    "REUSED_FROM",
    "Grid",
    "Objective",
    "StudyInterrupted",
    "WorkerDied",
    "cell_key",
    "copy_completed",
    "fail_interrupted_trials",
    "final_failure",
    "journal_storage",
    "open_storage",
    "queue_cells",
    "repeated_copies",
    "run_trials",
    "trial_cell",
    "trial_gpus",
]

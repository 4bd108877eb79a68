"""Validation-based λ tuning (SPEC §6): grid search over an unlearner's hyperparameters, each
candidate scored on validation data with J(λ) = (1−λ)·acc(V) + λ·goal.

- :mod:`~unlearn_pl.tuning.objective`: the pure scoring functions (goals, J, choice per λ);
- :mod:`~unlearn_pl.tuning.runner`: :func:`tune`, which trains and scores every candidate and
  writes the tables;
- :mod:`~unlearn_pl.tuning.cli`: the ``unlearn-pl tune`` subcommand;
- :mod:`~unlearn_pl.tuning.sweep`: sweeps of experiment configs (widths, budgets, localizers…),
  each point tuned by :func:`tune`; ``python -m unlearn_pl.tuning.sweep SWEEP.yaml`` (not imported
  here, so that ``python -m`` runs it cleanly).
"""

from unlearn_pl.tuning.cli import TuneSubcommand, TuningTrainer
from unlearn_pl.tuning.objective import (
    DEFAULT_LAMBDAS,
    GOALS,
    bias_goal,
    best_index,
    check_lambdas,
    objective,
    privacy_goal,
    privacy_mia_goal,
    select,
)
from unlearn_pl.tuning.runner import CandidateResult, TrainerSettings, TuningResult, expand_grid, tune

__all__ = [
    "DEFAULT_LAMBDAS", "GOALS", "CandidateResult", "TrainerSettings", "TuneSubcommand", "TuningResult",
    "TuningTrainer", "best_index", "bias_goal", "check_lambdas", "expand_grid",
    "objective", "privacy_goal", "privacy_mia_goal", "select", "tune",
]

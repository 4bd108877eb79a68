"""Studies on Optuna: validation-based λ tuning and experiment sweeps, replicated over seeds.

- :mod:`~unlearn_pl.tuning.objective`: the pure scoring functions (goals, J(λ), choice per λ);
- :mod:`~unlearn_pl.tuning.space`: a study's axes and grid, expanded into candidates;
- :mod:`~unlearn_pl.tuning.study`: its trials, each an ``unlearn-pl fit`` run through the trial
  runner the study is given (the command line passes :func:`unlearn_pl.cli.run_cli`);
- :mod:`~unlearn_pl.tuning.engine`: :func:`run_trials`, Optuna trials in one or several processes
  on one storage (resume, failures recorded);
- :mod:`~unlearn_pl.tuning.checks`, :mod:`~unlearn_pl.tuning.stored`: the settings checked before
  the first trial, and against a stored study;
- :mod:`~unlearn_pl.tuning.runner`: :func:`run_study`; its results
  (:mod:`~unlearn_pl.tuning.results`) are the tables of :mod:`~unlearn_pl.tuning.trial_table`,
  :mod:`~unlearn_pl.tuning.selection` (with :mod:`~unlearn_pl.tuning.choice` and
  :mod:`~unlearn_pl.tuning.scores`) and :mod:`~unlearn_pl.tuning.differences` (with
  :mod:`unlearn_pl.stats`' intervals and verdicts), the summary and the plots.

The ``unlearn-pl tune`` subcommand is :mod:`unlearn_pl.cli.tune`.
"""

from unlearn_pl.stats import Estimate, mean_ci, paired_difference
from unlearn_pl.tuning.choice import TIE_BREAK, format_chosen, parse_chosen
from unlearn_pl.tuning.differences import DIFFERENCE_COLUMNS
from unlearn_pl.tuning.engine import journal_storage, run_trials
from unlearn_pl.tuning.objective import (
    DEFAULT_LAMBDAS,
    GOALS,
    best_index,
    bias_goal,
    check_lambdas,
    objective,
    privacy_goal,
    privacy_mia_goal,
    select,
)
from unlearn_pl.tuning.results import StudyResult
from unlearn_pl.tuning.runner import run_study
from unlearn_pl.tuning.space import Candidate, expand_space
from unlearn_pl.tuning.stored import check_same_base, check_seed_choices
from unlearn_pl.tuning.study import SEED_KEYS, StudyObjective, TrialRunner

__all__ = [
    "DEFAULT_LAMBDAS",
    "DIFFERENCE_COLUMNS",
    "GOALS",
    "SEED_KEYS",
    "TIE_BREAK",
    "Candidate",
    "Estimate",
    "StudyObjective",
    "StudyResult",
    "TrialRunner",
    "best_index",
    "bias_goal",
    "check_lambdas",
    "check_same_base",
    "check_seed_choices",
    "expand_space",
    "format_chosen",
    "journal_storage",
    "mean_ci",
    "objective",
    "paired_difference",
    "parse_chosen",
    "privacy_goal",
    "privacy_mia_goal",
    "run_study",
    "run_trials",
    "select",
]

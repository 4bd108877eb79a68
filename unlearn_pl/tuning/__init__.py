"""Studies on Optuna: validation-based λ tuning and experiment sweeps, replicated over seeds.

- :mod:`~unlearn_pl.tuning.objective`: the pure scoring functions (goals, J(λ), choice per λ);
- :mod:`~unlearn_pl.tuning.engine`: :func:`run_trials`, Optuna trials in one or several processes
  on one storage (resume, failures recorded);
- :mod:`~unlearn_pl.tuning.study`: a study's search space and its trials, each an ``unlearn-pl fit`` run;
- :mod:`~unlearn_pl.tuning.runner` and :mod:`~unlearn_pl.tuning.plots`: :func:`run_study`, its
  tables (with :mod:`unlearn_pl.stats`' confidence intervals) and plots;
- :mod:`~unlearn_pl.tuning.cli`: the ``unlearn-pl tune`` subcommand.
"""

from unlearn_pl.stats import Estimate, mean_ci, paired_difference
from unlearn_pl.tuning.cli import TuneSubcommand, TuningTrainer
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
from unlearn_pl.tuning.runner import StudyResult, parse_chosen, run_study
from unlearn_pl.tuning.study import Candidate, StudyObjective, expand_space

__all__ = [
    "DEFAULT_LAMBDAS", "GOALS", "Candidate", "Estimate", "StudyObjective", "StudyResult", "TuneSubcommand",
    "TuningTrainer", "best_index", "bias_goal", "check_lambdas", "expand_space", "journal_storage", "mean_ci",
    "objective", "paired_difference", "parse_chosen", "privacy_goal", "privacy_mia_goal", "run_study", "run_trials",
    "select",
]

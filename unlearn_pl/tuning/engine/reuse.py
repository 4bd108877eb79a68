"""Completed trials of one study copied into another, so a grown grid runs only its new cells.

Optuna fixes a categorical parameter's choices at its first record: a study cannot gain grid
cells on resume (``CategoricalDistribution does not support dynamic value space``). A study with
the larger grid, under a new name, starts instead from the completed trials of the smaller one:
each is added with ``Study.add_trial`` as a finished trial of the new study, its parameters
recorded with the new grid's distributions, its values, attributes and start and end times kept.
The queue (:func:`~unlearn_pl.tuning.engine.queue.queue_cells`) then sees those cells as done.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from unlearn_pl.tuning.engine.queue import DIVERGED, REUSED_FROM, Grid, cell_key, standing_cells, trial_cell


def copy_completed(
    target: optuna.Study,
    source: optuna.Study,
    grid: Grid,
    values: Callable[[FrozenTrial], Sequence[float]] | None = None,
) -> list[FrozenTrial]:
    """Add to ``target`` every completed trial of ``source``, and every trial whose network
    diverged (FAIL, user attr ``diverged``: an outcome of its cell, which would diverge again),
    whose cell is one of ``grid``'s and that no trial of ``target`` stands for yet, or only trials
    that failed; return the trials of ``source`` copied. A copy into a failed cell retries it (the
    ``failed_trial`` link Optuna's ``RetryFailedTrialCallback`` writes), so the failure no longer
    stands.

    ``values`` gives a copy's objective values from the source trial (the target may score its
    trials otherwise, e.g. by another goal); by default they are the source's.

    Two processes copying into one study at once may both copy a trial; only the first copy stands
    (:func:`~unlearn_pl.tuning.engine.queue.repeated_copies`).

    A copy records its origin (user attr ``reused_from``) and its run folder relative to the
    target's study folder (the source's folder beside it: both live in one ``output_dir``).
    ``grid.distributions`` must be set: they are the distributions the copies are recorded with.
    """
    if grid.distributions is None:
        raise ValueError("copying trials needs the grid's distributions, to record the copies' parameters with")
    wanted = {cell_key(cell) for cell in grid.cells}
    standing = standing_cells(target)
    copied = []
    outcomes = [
        t
        for t in source.get_trials(deepcopy=False)
        if t.state == TrialState.COMPLETE or (t.state == TrialState.FAIL and t.user_attrs.get(DIVERGED))
    ]
    for t in outcomes:
        key = cell_key(trial_cell(t))
        held = standing.get(key, [])
        if key not in wanted or any(h.state != TrialState.FAIL for h in held):
            continue
        retry = {"failed_trial": held[0].number, "retry_history": [h.number for h in held]} if held else {}
        attrs = {**t.user_attrs, REUSED_FROM: f"{source.study_name}#{t.number}"}
        if "run_dir" in attrs:
            attrs["run_dir"] = f"../{source.study_name}/{attrs['run_dir']}"
        finished = t.state == TrialState.COMPLETE
        copy = optuna.trial.create_trial(
            state=t.state,
            values=(values(t) if values is not None else t.values) if finished else None,
            params=dict(t.params),
            distributions={k: grid.distributions[k] for k in t.params},
            user_attrs=attrs,
            system_attrs=retry,
        )
        copy.datetime_start, copy.datetime_complete = t.datetime_start, t.datetime_complete
        target.add_trial(copy)
        standing[key] = [copy]
        copied.append(t)
    return copied

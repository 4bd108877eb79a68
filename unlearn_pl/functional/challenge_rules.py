"""The two decision-rule families of the NeurIPS 2023 Machine Unlearning Challenge's scorer, as the
count cells they reach (``metric.py`` of github.com/google-deepmind/unlearning_evaluation).

Given one example's sorted positive and negative samples (N confidences each), a rule's outcome is
its counts of true and false positives; both functions return the cells
``true_pos · (N + 1) + false_pos`` of the rules of one family, the flat indices into the ε table
of :func:`~unlearn_pl.functional.challenge_epsilons.forgetting_epsilons`. Which distribution is
positive, and the published choice of thresholds, are described there.
"""

from __future__ import annotations

import math

import numpy as np
import torch


def threshold_cells(pos: np.ndarray, neg: np.ndarray, per_unit: int) -> np.ndarray:
    """Table cells of the single-threshold rules "positive at or above t" (sorted samples in).

    >>> pos, neg = np.array([0.0, 1.0]), np.array([2.0, 3.0])
    >>> threshold_cells(pos, neg, 1)  # t = 0, 1.5, 3: (2, 2), (0, 2), (0, 1) true and false positives
    array([8, 2, 1])
    """
    n = len(pos)
    low, high = min(pos[0], neg[0]), max(pos[-1], neg[-1])
    count = math.ceil((high - low) * per_unit)
    # torch.linspace in float32, PyTorch's default dtype, as the published scorer makes them.
    thresholds = torch.linspace(torch.tensor(low), torch.tensor(high), count, dtype=torch.float32).double().numpy()
    true_pos = n - np.searchsorted(pos, thresholds, side="left")
    false_pos = n - np.searchsorted(neg, thresholds, side="left")
    return true_pos * (n + 1) + false_pos


def window_cells(
    pos: np.ndarray, neg: np.ndarray, pos_range: float, neg_range: float, per_unit: int, buffer: float
) -> np.ndarray:
    """Table cells of the double-threshold rules "positive inside [l, r]" (sorted samples in).

    For each right edge the published scorer tries ``2·buffer·per_unit`` left edges, but a rule's
    counts change only where a left edge passes one of the 2N sample values: the cells are found
    from those crossings (:func:`_crossings`), with the edges computed as ``np.linspace`` computes
    them, so values lying exactly on an edge count as published.
    """
    n = len(pos)
    if pos_range >= neg_range:  # positive here means the narrower distribution
        pos, neg = neg, pos
    width = min(pos_range, neg_range)
    low = pos[0] + width - buffer
    high = pos[-1] + buffer
    rights = np.linspace(low, high, num=math.ceil((high - low) * per_unit))
    starts, stops, count = rights - width - buffer, rights - width + buffer, math.ceil(2 * buffer * per_unit)
    merged = np.concatenate([pos, neg])
    order = np.argsort(merged, kind="stable")
    values = merged[order]
    # Running counts of each sample among the merged values: k merged values below an edge are
    # from_pos[k] positive and from_neg[k] negative ones (ties fall alike in both samples).
    from_pos = np.concatenate([[0], np.cumsum(order < n)])
    from_neg = np.arange(2 * n + 1) - from_pos
    at_right = np.searchsorted(values, rights, side="right")[:, None]  # (R, 1): values <= r
    crossing = _crossings(values, starts, stops, count)  # (R, 2N): first left edge above each value
    if crossing is None:  # degenerate edges (zero steps): try every rule
        lefts = np.linspace(starts, stops, num=count, axis=1)
        at_left = np.searchsorted(values, lefts, side="left")
        present = np.zeros((len(rights), 2 * n + 1), dtype=bool)
        np.put_along_axis(present, at_left, True, axis=1)
    else:
        # k values lie below the left edges j with crossing[k-1] <= j < crossing[k]: is there one?
        bounds = np.concatenate([np.zeros((len(rights), 1), np.int64), crossing, np.full((len(rights), 1), count)], 1)
        present = bounds[:, :-1] < bounds[:, 1:]
    k = np.broadcast_to(np.arange(2 * n + 1), present.shape)[present]
    right = np.broadcast_to(at_right, present.shape)[present]
    # An empty window (l > r) holds nothing.
    inside_pos = np.maximum(from_pos[right] - from_pos[k], 0)
    inside_neg = np.maximum(from_neg[right] - from_neg[k], 0)
    return inside_pos * (n + 1) + inside_neg


def _crossings(values: np.ndarray, starts: np.ndarray, stops: np.ndarray, count: int) -> np.ndarray | None:
    """``(R, V)``: for each row's left edges ``np.linspace(starts, stops, count, axis=1)`` and each
    sorted value, the index of the first edge above the value (``count`` when none is); ``None``
    when a row's step is 0 (``np.linspace`` computes the edges another way then)."""
    step = (stops - starts) / (count - 1)
    if (step == 0).any():
        return None
    start, stop, step = starts[:, None], stops[:, None], step[:, None]

    def edge(j: np.ndarray) -> np.ndarray:  # np.linspace's j-th value: j·step + start, the last exactly stop
        return np.where(j >= count - 1, stop, j * step + start)

    j = np.clip(np.floor((values[None, :] - start) / step) + 1, 0, count).astype(np.int64)
    for _ in range(count):  # the estimate is off by rounding only: one or two corrections
        lower = (j > 0) & (edge(np.maximum(j - 1, 0)) > values)
        higher = (j < count) & (edge(np.minimum(j, count - 1)) <= values)
        if not (lower.any() or higher.any()):
            return j
        j = j - lower + higher
    raise AssertionError("unreachable: the left edges increase")


__all__ = ["threshold_cells", "window_cells"]

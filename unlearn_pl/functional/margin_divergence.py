"""KLOM, the KL divergence of margins, as pure NumPy/PyTorch functions.

Georgiev, Rinberg, Park, Garg, Ilyas, Madry, Neel: "Attribute-to-Delete: Machine Unlearning via
Datamodel Matching", ICLR 2025, arXiv 2410.23232 (appendix E.1), with the binning and smoothing of
its authors' benchmark code, ``unlearning_bench/eval.py`` of github.com/RoyRin/data-unlearning-bench
(EasyDUB), and the variant of its repackaging, ``easydub/eval.py`` of github.com/easydub/EasyDUB-code
(Rinberg, Puigdemont, Pawelczyk, Cevher: "Easy Data Unlearning Bench", arXiv 2602.16400).

For one example, N unlearned models and N oracle models (retrained without the forget set) give
two samples of its margin ``z_y − log Σ_{j≠y} exp z_j``. KLOM is the KL divergence between their
histograms: both samples are clipped to [−100, 100], binned into 20 equal bins spanning their
joint range, the oracle's empty bins where the unlearned histogram has mass are raised to 1e-5,
and ``scipy.stats.entropy`` gives D_KL(unlearned ‖ oracle). 0 means the unlearned models' margins
are distributed as the oracles'. It is reported as a distribution over forget, retain and
validation examples: on the retain and validation sets it measures collateral damage.

Every choice of the published code is an argument here, its value by default:

- ``np.digitize`` puts a value equal to the top bin edge (the joint maximum, always present
  unless all 2N margins are equal) outside the 20 bins, so the largest margin(s) of every example
  are *dropped* from the histograms (``top_edge="drop"``); ``"include"`` closes the last bin as
  ``np.histogram`` does;
- where every unlearned margin is that maximum, the unlearned histogram is empty and the result
  is NaN (``renormalize=True``, the scipy call of data-unlearning-bench) or 0 (``False``);
- ``renormalize=True`` divides the smoothed oracle histogram by its new sum (scipy does); EasyDUB's
  explicit sum ``Σ p log(p / q)`` (``False``) uses it as is;
- the direction: both repositories' KLOM functions compute D_KL(unlearned ‖ oracle), but
  data-unlearning-bench's ``run.py`` passes the oracle margins first, which computes
  D_KL(oracle ‖ unlearned) (``reverse=True``);
- binning happens in the margins' own float type (NumPy follows the dtype of its inputs in
  ``clip`` and ``linspace``): float32 margins, as the authors' models produce, get float32 bin
  edges; other inputs are binned in float64.

Arrays are shaped ``(models, examples)``. Unlike the published code, which clips ±∞ to ±100
and lets NaN through, non-finite margins are refused.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch
from numpy.typing import ArrayLike
from scipy.special import rel_entr

#: The published defaults (``compute_binned_KL_div``): bins, smoothing floor, clipping range.
BINS = 20
SMOOTHING = 1e-5
CLIP = (-100.0, 100.0)

#: How many examples are binned at once (bounds the ``(models, chunk, bins + 1)`` comparison).
_CHUNK = 2048


def klom_margins(logits: ArrayLike | torch.Tensor, labels: ArrayLike | torch.Tensor) -> np.ndarray:
    """The margin ``z_y − logsumexp_{j≠y} z_j`` of every example, shape ``logits.shape[:-1]``.

    The same quantity as the logit-scaled confidence ``log p_y − log(1 − p_y)``, computed as the
    authors' ``get_margins_from_multimodel_logits`` does, with PyTorch in the logits' own float
    type (float32 and float64 kept, anything else computed in float32), so float32 logits give
    the authors' float32 margins.

    Args:
        logits: ``(..., C)`` unnormalized scores, ``C >= 2`` (e.g. ``(models, examples, C)``).
        labels: ``(...)`` true class indices.
    """
    # np.array copies: a read-only NumPy view (np.broadcast_to) cannot back a tensor.
    z = logits.detach().cpu() if isinstance(logits, torch.Tensor) else torch.as_tensor(np.array(logits))
    y = labels.detach().cpu() if isinstance(labels, torch.Tensor) else torch.as_tensor(np.array(labels))
    if z.dtype not in (torch.float32, torch.float64):
        z = z.float()
    if z.ndim < 1 or z.shape[-1] < 2:
        raise ValueError(f"logits must have shape (..., C) with C >= 2 classes; got {tuple(z.shape)}")
    if y.shape != z.shape[:-1]:
        raise ValueError(f"labels must have the leading shape of logits, {tuple(z.shape[:-1])}; got {tuple(y.shape)}")
    if y.numel() and (y.dtype.is_floating_point or y.min() < 0 or y.max() >= z.shape[-1]):
        raise ValueError(f"labels must be integer class indices in [0, {z.shape[-1] - 1}]")
    if not torch.isfinite(z).all():
        raise ValueError(f"logits contain {int((~torch.isfinite(z)).sum())} NaN or infinite values")
    index = y.long().unsqueeze(-1)
    correct = z.gather(-1, index).squeeze(-1)
    others = z.scatter(-1, index, float("-inf")).logsumexp(dim=-1)
    return (correct - others).numpy()


def klom(
    unlearned: ArrayLike | torch.Tensor,
    oracle: ArrayLike | torch.Tensor,
    *,
    bins: int = BINS,
    smoothing: float = SMOOTHING,
    clip: tuple[float, float] = CLIP,
    top_edge: Literal["drop", "include"] = "drop",
    renormalize: bool = True,
    reverse: bool = False,
) -> np.ndarray:
    """Each example's KLOM, shape ``(examples,)`` (see the module notes for every option).

    Args:
        unlearned: ``(N, E)`` margins of E examples under N unlearned models.
        oracle: ``(N, E)`` the same under N oracle (retrained) models.
        bins: number of equal-width bins over the joint (clipped) range of both samples.
        smoothing: floor of the oracle's bin probabilities where the unlearned histogram has mass.
        clip: the range margins are clipped to before binning.
        top_edge: ``"drop"`` (published) or ``"include"`` the values equal to the top bin edge.
        renormalize: normalize the smoothed oracle histogram (scipy, data-unlearning-bench), or
            not (EasyDUB-code).
        reverse: D_KL(oracle ‖ unlearned) instead of D_KL(unlearned ‖ oracle).

    Returns:
        float64 divergences; NaN where the histogram of the first argument of the divergence is
        empty (only with ``top_edge="drop"`` and ``renormalize=True``).

    >>> u = np.arange(8.0)[:, None] * [1.0, 1.0]
    >>> klom(u, u).tolist()  # identical margins
    [0.0, 0.0]
    """
    p, q = _check_margins(unlearned, oracle)
    if int(bins) != bins or bins < 1:
        raise ValueError(f"bins must be a positive integer; got {bins}")
    if not smoothing > 0:
        raise ValueError(f"smoothing must be > 0; got {smoothing}")
    low, high = clip
    if not low < high:
        raise ValueError(f"clip must be (low, high) with low < high; got {clip}")
    if top_edge not in ("drop", "include"):
        raise ValueError(f"top_edge must be 'drop' or 'include'; got {top_edge!r}")
    if reverse:
        p, q = q, p
    out = np.empty(p.shape[1])
    for start in range(0, p.shape[1], _CHUNK):
        part = slice(start, start + _CHUNK)
        out[part] = _binned_kl(p[:, part], q[:, part], int(bins), smoothing, low, high, top_edge, renormalize)
    return out


@dataclass(frozen=True)
class KLOMSummary:
    """The distribution of KLOM over a set of examples: quartiles and 95th percentile of the
    defined values, ``n`` examples of which ``undefined`` were NaN (left out of the quantiles)."""

    median: float
    q1: float
    q3: float
    p95: float
    n: int
    undefined: int

    def __format__(self, spec: str) -> str:
        """``median [q1, q3]``, each number in the format ``spec`` (``.3f`` when empty).

        >>> f"{KLOMSummary(0.2, 0.1, 0.4, 0.9, 100, 0)}"
        '0.200 [0.100, 0.400]'
        """
        spec = spec or ".3f"
        return f"{self.median:{spec}} [{self.q1:{spec}}, {self.q3:{spec}}]"


def summarize_klom(values: ArrayLike) -> KLOMSummary:
    """Median, quartiles and 95th percentile of per-example KLOM values (NaN ones counted apart).

    Attribute-to-Delete plots the distributions; EasyDUB's README reports the 95th percentile.

    >>> s = summarize_klom([0.0, 1.0, 2.0, 3.0, np.nan])
    >>> (s.median, s.q1, s.q3, s.n, s.undefined)
    (1.5, 0.75, 2.25, 5, 1)
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("no KLOM values to summarize")
    defined = x[~np.isnan(x)]
    if defined.size == 0:
        raise ValueError(f"all {x.size} KLOM values are NaN (undefined); there is nothing to summarize")
    if np.isinf(defined).any() or (defined < 0).any():
        raise ValueError("KLOM values must be finite and >= 0 (or NaN where undefined)")
    q1, median, q3, p95 = np.quantile(defined, [0.25, 0.5, 0.75, 0.95])
    return KLOMSummary(float(median), float(q1), float(q3), float(p95), int(x.size), int(x.size - defined.size))


def _check_margins(
    unlearned: ArrayLike | torch.Tensor, oracle: ArrayLike | torch.Tensor
) -> tuple[np.ndarray, np.ndarray]:
    """Both banks as ``(models, examples)`` arrays of one shape and float type, N >= 2, finite."""
    arrays = []
    for name, x in (("unlearned", unlearned), ("oracle", oracle)):
        a = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if not (np.issubdtype(a.dtype, np.floating) or np.issubdtype(a.dtype, np.integer)):
            raise ValueError(f"{name} must be a numeric array; got dtype {a.dtype}")
        if a.ndim != 2:
            raise ValueError(f"{name} must have shape (models, examples); got {a.shape}")
        arrays.append(a)
    p, q = arrays
    if p.shape != q.shape:
        raise ValueError(f"unlearned has shape {p.shape} but oracle has {q.shape}; they must match (models, examples)")
    if p.shape[0] < 2:
        raise ValueError(f"need at least 2 models on each side to compare distributions; got {p.shape[0]}")
    if p.shape[1] < 1:
        raise ValueError("need at least one example; got 0")
    # float32 margins are binned in float32, as the published NumPy code does with them.
    dtype = np.float32 if p.dtype == np.float32 and q.dtype == np.float32 else np.float64
    p, q = p.astype(dtype, copy=False), q.astype(dtype, copy=False)
    for name, a in (("unlearned", p), ("oracle", q)):
        if not np.isfinite(a).all():
            rows, cols = np.nonzero(~np.isfinite(a))
            raise ValueError(
                f"{name} contains {rows.size} NaN or infinite value(s), first at (model {rows[0]}, example {cols[0]})"
            )
    return p, q


def _binned_kl(
    p: np.ndarray, q: np.ndarray, bins: int, smoothing: float, low: float, high: float, top_edge: str, renormalize: bool
) -> np.ndarray:
    """KLOM of every column: D_KL(histogram of p ‖ smoothed histogram of q)."""
    p, q = np.clip(p, low, high), np.clip(q, low, high)
    start = np.minimum(p.min(0), q.min(0))
    stop = np.maximum(p.max(0), q.max(0))
    stop = np.where(start >= stop, start + 1, stop)  # one value everywhere: a unit-wide range
    edges = np.linspace(start, stop, bins + 1, axis=-1)  # (E, bins + 1)
    p_prob, q_prob = (_histogram(x, edges, top_edge) for x in (p, q))
    q_safe = np.where(p_prob > 0, np.maximum(q_prob, smoothing), q_prob)
    if renormalize:
        # scipy.stats.entropy(pk, qk): both normalized to sum 1, then Σ rel_entr(pk, qk).
        with np.errstate(invalid="ignore", divide="ignore"):
            pk = p_prob / p_prob.sum(1, keepdims=True)
            qk = q_safe / q_safe.sum(1, keepdims=True)
        return rel_entr(pk, qk).sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        terms = np.where(p_prob > 0, p_prob * np.log(p_prob / q_safe), 0.0)
    return terms.sum(1)


def _histogram(x: np.ndarray, edges: np.ndarray, top_edge: str) -> np.ndarray:
    """Bin probabilities ``(E, bins)`` of the columns of ``x`` (N, E), ``np.digitize``'s bins.

    A value's bin index is the number of edges at or below it (``np.digitize`` with increasing
    edges): 1..bins inside, bins + 1 at the top edge.
    """
    bins = edges.shape[1] - 1
    index = (x[:, :, None] >= edges[None, :, :]).sum(-1)  # (N, E)
    if top_edge == "include":
        index = np.minimum(index, bins)
    examples = x.shape[1]
    flat = (index + (bins + 2) * np.arange(examples)[None, :]).ravel()
    counts = np.bincount(flat, minlength=examples * (bins + 2)).reshape(examples, bins + 2)[:, 1 : bins + 1]
    total = counts.sum(1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, counts / total, 0.0)


__all__ = ["BINS", "CLIP", "SMOOTHING", "KLOMSummary", "klom", "klom_margins", "summarize_klom"]

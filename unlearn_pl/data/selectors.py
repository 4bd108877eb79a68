"""Forget-set selectors: which training examples the model must forget.

A selector sees the labels of the candidate pool (train minus validation) and a seeded generator,
and returns the chosen dataset indices plus, for ``Mislabeled``, the wrong labels those examples
carry in the training data.
"""

from __future__ import annotations

import json
import math
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from unlearn_pl.utils.arguments import NonNegativeInt

#: A forget-set size: a count of examples (int ≥ 1) or a fraction of the pool in (0, 1], checked by
#: the selectors. Plain ``int | float`` rather than a union of restricted types: jsonargparse
#: serializes such a union with its first member's type, so a saved config would turn 0.1 into 0.
ForgetSize = int | float


@dataclass
class ForgetSelection:
    """The outcome of a selector: forget indices and optional training-label overrides."""

    indices: np.ndarray
    relabels: dict[int, int] = field(default_factory=dict)


def _count(size: int | float, available: int, what: str) -> int:
    """Turn an int count or a float fraction of ``available`` into a validated count."""
    if isinstance(size, bool) or not isinstance(size, (int, float)):
        raise ValueError(f"size must be an int count or a float fraction; got {size!r}")
    if isinstance(size, float) and not math.isfinite(size):
        raise ValueError(f"size must be an int count or a float fraction in (0, 1]; got size={size!r}")
    n = int(round(size * available)) if isinstance(size, float) else int(size)
    if isinstance(size, float) and not 0.0 < size <= 1.0:
        raise ValueError(f"size as a fraction must be in (0, 1]; got {size}")
    if n < 1:
        raise ValueError(f"size={size!r} selects no example from {available} {what}; the forget set must be non-empty")
    return n


class ForgetSelector(ABC):
    """Base class of forget-set selectors.

    Subclasses implement :meth:`select`. Their constructor arguments are recorded in the split
    manifest via :meth:`describe`, so a split can be explained and reproduced.

    Example:
        >>> class FirstN(ForgetSelector):
        ...     def __init__(self, n: int = 10):
        ...         self.n = n
        ...     def select(self, pool, targets, num_classes, rng):
        ...         return ForgetSelection(np.sort(pool)[: self.n])
    """

    @abstractmethod
    def select(
        self, pool: np.ndarray, targets: np.ndarray, num_classes: int, rng: np.random.Generator
    ) -> ForgetSelection:
        """Choose forget examples among ``pool`` (dataset indices); ``targets`` is indexed by dataset index."""

    def describe(self) -> dict[str, Any]:
        """The selector's name and arguments, as written to the split manifest."""
        return {"selector": type(self).__name__, **{k: v for k, v in vars(self).items() if not k.startswith("_")}}


class RandomForget(ForgetSelector):
    """IID forget set: ``size`` examples (int) or a fraction of the pool (float), uniformly at random."""

    def __init__(self, size: ForgetSize = 0.1) -> None:
        self.size = size

    def select(self, pool, targets, num_classes, rng):
        n = _count(self.size, len(pool), "training examples")
        if n > len(pool):
            raise ValueError(f"size={self.size!r} asks for {n} forget examples but the pool has {len(pool)}")
        return ForgetSelection(np.sort(rng.choice(pool, size=n, replace=False)))


class ClassForget(ForgetSelector):
    """Non-IID forget set (the DEL setting): ``size`` examples, or a fraction of the *whole pool*,
    drawn uniformly from the examples of ``classes`` only.

    The DEL paper's CIFAR-10 setting is ``ClassForget(classes=[2, 5], size=0.1)``.
    """

    def __init__(self, classes: list[NonNegativeInt], size: ForgetSize = 0.1) -> None:
        if not classes:
            raise ValueError("classes must name at least one class")
        self.classes = list(classes)
        self.size = size

    def select(self, pool, targets, num_classes, rng):
        unknown = [
            c
            for c in self.classes
            if isinstance(c, bool) or not isinstance(c, (int, np.integer)) or not 0 <= c < num_classes
        ]
        if unknown:
            raise ValueError(f"unknown forget classes {unknown}; this dataset has classes 0..{num_classes - 1}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"classes {self.classes} names a class twice; name each forget class once")
        candidates = pool[np.isin(targets[pool], self.classes)]
        n = _count(self.size, len(pool), "training examples")
        if n > len(candidates):
            raise ValueError(
                f"size={self.size!r} asks for {n} forget examples but classes {self.classes} have only "
                f"{len(candidates)} training examples; lower size"
            )
        return ForgetSelection(np.sort(rng.choice(candidates, size=n, replace=False)))


class IndexForget(ForgetSelector):
    """An explicit forget set: dataset ``indices``, or a ``file`` (JSON list or one index per line)."""

    def __init__(self, indices: list[NonNegativeInt] | None = None, file: str | None = None) -> None:
        if (indices is None) == (file is None):
            raise ValueError("give exactly one of indices= or file=")
        self.indices = indices
        self.file = file

    def _read(self) -> list[int]:
        if self.indices is not None:
            return list(self.indices)
        assert self.file is not None  # __init__ takes exactly one of indices and file
        path = Path(self.file)
        if not path.exists():
            raise FileNotFoundError(f"forget index file {str(path)!r} does not exist")
        text = path.read_text().strip()
        try:
            return json.loads(text) if text.startswith("[") else [int(t) for t in text.split()]
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            raise ValueError(
                f"forget index file {str(path)!r} is neither a JSON list nor one integer index per line: {e}"
            ) from e

    def select(self, pool, targets, num_classes, rng):
        read = self._read()
        source = f"file {self.file!r}" if self.file is not None else "indices"
        if not isinstance(read, list):
            raise ValueError(f"forget {source} must be a list of integer indices; got {type(read).__name__}")
        # np.asarray(…, int64) would truncate 0.5 to 0 silently.
        odd = [i for i in read if isinstance(i, bool) or not isinstance(i, (int, np.integer))]
        if odd:
            raise ValueError(f"forget {source} holds non-integer indices {odd[:10]}; indices must be integers")
        wanted = np.asarray(read, dtype=np.int64)
        if len(wanted) == 0:
            raise ValueError("the forget index list is empty; the forget set must be non-empty")
        bad = wanted[(wanted < 0) | (wanted >= len(targets))]
        if len(bad):
            raise ValueError(
                f"forget indices out of range: {bad[:10].tolist()}; the training set has indices 0..{len(targets) - 1}"
            )
        uniq, counts = np.unique(wanted, return_counts=True)
        if (counts > 1).any():
            raise ValueError(
                f"forget indices are duplicated: {uniq[counts > 1][:10].tolist()}; each index may appear once"
            )
        outside = np.setdiff1d(wanted, pool)
        if len(outside):
            raise ValueError(
                f"forget indices {outside[:10].tolist()} are not in the candidate pool: they are in the validation "
                f"set or outside the train_size subset. Allowed: the {len(pool)} training indices not held out "
                "(see the split manifest), or set val_fraction=0 / train_size=None"
            )
        if len(wanted) == len(pool):
            raise ValueError(
                f"the forget indices cover the whole training set ({len(pool)} examples after the validation "
                "hold-out), leaving no retain set; the forget set must be a strict subset"
            )
        return ForgetSelection(np.sort(wanted))


class Mislabeled(ForgetSelector):
    """Bias-removal setting: a random forget set whose training labels are replaced by a wrong
    class (uniform over the other classes). The original model learns the wrong labels; a good
    unlearner removes their influence."""

    def __init__(self, size: ForgetSize = 0.1) -> None:
        self.size = size

    def select(self, pool, targets, num_classes, rng):
        present = np.unique(targets[pool]).tolist()
        if num_classes < 2 or len(present) < 2:
            raise ValueError(
                f"Mislabeled needs a dataset with at least 2 classes to draw a wrong label; this one has "
                f"num_classes={num_classes} and its training examples carry {len(present)} class(es) {present[:10]}"
            )
        chosen = RandomForget(self.size).select(pool, targets, num_classes, rng).indices
        shift = rng.integers(1, num_classes, size=len(chosen))  # never 0, so the label always changes
        wrong = (targets[chosen] + shift) % num_classes
        return ForgetSelection(chosen, {int(i): int(w) for i, w in zip(chosen, wrong, strict=True)})

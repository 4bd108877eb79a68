"""The retain/forget/validation split and its JSON manifest."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.utilities import rank_zero_warn

from unlearn_pl.data.selectors import ForgetSelector
from unlearn_pl.utils.io import write_json


@dataclass
class SplitManifest:
    """Disjoint retain/forget/validation index lists over the training set.

    Attributes:
        retain, forget, val: dataset indices (sorted) into the training split.
        relabels: training-label overrides by dataset index (``Mislabeled`` forget sets).
        seed: the seed that drew the split.
        selector: the forget selector's name and arguments.
        dataset: the training set's fingerprint; loading a manifest against other data fails.
        num_train: size of the full training split the indices refer to.
        val_fraction, train_size: the data module settings that drew the split (``None`` in
            manifests that do not record them).
    """

    retain: list[int]
    forget: list[int]
    val: list[int]
    relabels: dict[int, int] = field(default_factory=dict)
    seed: int = 0
    selector: dict[str, Any] = field(default_factory=dict)
    dataset: str = ""
    num_train: int = 0
    val_fraction: float | None = None
    train_size: int | None = None

    def check(self, num_classes: int | None = None) -> None:
        """Raise ``ValueError`` unless the three sets are integer, disjoint, duplicate-free and in
        range, and (given ``num_classes``) every relabel is a class of the data."""
        parts = {"retain": self.retain, "forget": self.forget, "val": self.val}
        for name, idx in parts.items():
            if not isinstance(idx, list):
                raise ValueError(f"split {name!r} must be a list of integer indices; got {type(idx).__name__}")
            # 0.5 would be served as example 0 (also in retain) and pass the overlap check below.
            odd = [i for i in idx if isinstance(i, bool) or not isinstance(i, (int, np.integer))][:10]
            if odd:
                raise ValueError(f"split {name!r} has non-integer indices {odd}; indices must be integers")
            if len(set(idx)) != len(idx):
                dup = sorted({i for i in idx if idx.count(i) > 1})[:10] if len(idx) < 100_000 else "…"
                raise ValueError(f"split {name!r} has duplicated indices {dup}; each index may appear once")
            if idx and (min(idx) < 0 or max(idx) >= self.num_train):
                bad = sorted(i for i in idx if not 0 <= i < self.num_train)[:10]
                raise ValueError(f"split {name!r} has indices {bad} outside the training set's 0..{self.num_train - 1}")
        for a, b in (("retain", "forget"), ("retain", "val"), ("forget", "val")):
            both = set(parts[a]) & set(parts[b])
            if both:
                raise ValueError(
                    f"splits {a!r} and {b!r} overlap at indices {sorted(both)[:10]}; the splits must be disjoint"
                )
        if not self.forget:
            raise ValueError("the forget set is empty; it must hold at least one example")
        if not self.retain:
            raise ValueError(
                f"the retain set is empty: the forget set takes all {len(self.forget)} training examples not held "
                "out for validation; it may not be the whole training set (choose a smaller size)"
            )
        if set(self.relabels) - set(self.forget):
            extra = sorted(set(self.relabels) - set(self.forget))[:10]
            raise ValueError(
                f"relabels name indices {extra} outside the forget set; only forget examples may be relabeled"
            )
        if num_classes is not None:
            outside = {i: y for i, y in self.relabels.items() if not 0 <= y < num_classes}
            if outside:
                raise ValueError(
                    f"relabels {dict(list(sorted(outside.items()))[:10])} are outside the classes 0..{num_classes - 1}"
                )

    def save(self, path: str | Path) -> Path:
        """Write the manifest atomically as JSON."""
        d = asdict(self)
        d["relabels"] = {str(k): v for k, v in self.relabels.items()}
        return write_json(path, d)

    @classmethod
    def load(cls, path: str | Path) -> SplitManifest:
        """Read a manifest written by :meth:`save` and check it."""
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"split manifest {str(path)!r} does not exist")
        try:
            d = json.loads(path.read_text())
            if not isinstance(d, dict):
                raise TypeError(f"expected a JSON object with retain/forget/val lists, found a JSON {type(d).__name__}")
            relabels = d.get("relabels", {})
            odd = [v for v in relabels.values() if isinstance(v, bool) or not isinstance(v, int)]
            if odd:
                raise TypeError(f"relabels must map indices to integer classes; found {odd[:10]}")
            d["relabels"] = {int(k): v for k, v in relabels.items()}
            split = cls(**d)
        except (json.JSONDecodeError, TypeError, KeyError, ValueError, AttributeError) as e:
            raise ValueError(f"{str(path)!r} is not a split manifest written by unlearn_pl: {e}") from e
        try:
            split.check()
        except ValueError as e:
            raise ValueError(f"split manifest {str(path)!r}: {e}") from e
        return split

    @classmethod
    def load_checked(
        cls, path: str | Path, fingerprint: str, num_train: int, num_classes: int, configured: dict[str, Any]
    ) -> SplitManifest:
        """:meth:`load` a manifest for the data of ``fingerprint`` (``num_train`` training examples,
        ``num_classes`` classes), and warn where it overrides the ``configured`` selector, seed,
        ``val_fraction`` or ``train_size``."""
        split = cls.load(path)
        if split.dataset != fingerprint:
            raise ValueError(
                f"manifest {str(path)!r} was made for dataset fingerprint {split.dataset!r}, but "
                f"the data read now has fingerprint {fingerprint!r}; use the matching data or another manifest"
            )
        if split.num_train != num_train:
            raise ValueError(
                f"manifest {str(path)!r} records num_train={split.num_train}, but the training split has {num_train} "
                "examples; use the manifest made for this data"
            )
        try:
            split.check(num_classes)
        except ValueError as e:
            raise ValueError(f"split manifest {str(path)!r}: {e}") from e
        recorded = {
            "forget": split.selector,
            "seed": split.seed,
            "val_fraction": split.val_fraction,
            "train_size": split.train_size,
        }
        # Manifests without val_fraction/train_size (None) record nothing to compare for them.
        differ = [k for k in configured if recorded[k] is not None and recorded[k] != configured[k]]
        if differ:
            lines = "; ".join(f"{k}: manifest {recorded[k]!r}, configured {configured[k]!r}" for k in differ)
            rank_zero_warn(
                f"the split comes from manifest {str(path)!r}, so the configured {', '.join(differ)} "
                f"are ignored ({lines})"
            )
        return split


def draw_test_indices(num_test: int, test_size: int | None, name: str) -> list[int]:
    """The test examples evaluated: all ``num_test``, or ``test_size`` of them drawn with a fixed seed,
    so every seed, arm and model is scored on the same examples."""
    if test_size is None:
        return list(range(num_test))
    if test_size > num_test:
        raise ValueError(f"test_size must be at most {num_test} (the size of {name}'s test split); got {test_size}")
    return np.sort(np.random.default_rng(0).choice(num_test, test_size, replace=False)).tolist()


def make_split(
    targets: np.ndarray,
    num_classes: int,
    selector: ForgetSelector,
    *,
    val_fraction: float,
    seed: int,
    dataset: str,
    train_size: int | None = None,
) -> SplitManifest:
    """Draw validation, then forget (via ``selector``), then retain = the rest; all seeded.

    ``train_size`` first subsamples the training set (e.g. 10k of Fashion-MNIST's 60k).
    """
    n = len(targets)
    if not 0.0 <= val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in [0, 1); got {val_fraction}")
    rng = np.random.default_rng(seed)
    if train_size is not None:
        if not 0 < train_size <= n:
            raise ValueError(f"train_size must be in 1..{n} (the training set size); got {train_size}")
        pool = np.sort(rng.choice(n, size=train_size, replace=False))
    else:
        pool = np.arange(n)
    n_val = int(round(val_fraction * len(pool)))
    val = np.sort(rng.choice(pool, size=n_val, replace=False))
    candidates = np.setdiff1d(pool, val)
    chosen = selector.select(candidates, targets, num_classes, rng)
    retain = np.setdiff1d(candidates, chosen.indices)
    split = SplitManifest(
        retain=retain.tolist(),
        forget=np.asarray(chosen.indices).tolist(),
        val=val.tolist(),
        relabels=chosen.relabels,
        seed=seed,
        selector=selector.describe(),
        dataset=dataset,
        num_train=n,
        val_fraction=val_fraction,
        train_size=train_size,
    )
    split.check(num_classes)
    return split


def load_or_make_split(
    manifest: str | None,
    targets: np.ndarray,
    num_classes: int,
    selector: ForgetSelector,
    *,
    val_fraction: float,
    seed: int,
    dataset: str,
    train_size: int | None = None,
) -> SplitManifest:
    """The split recorded in ``manifest`` when that file exists (checked against the data, see
    :meth:`SplitManifest.load_checked`), else a fresh :func:`make_split`, written to ``manifest``
    when a path is given so later runs load the same split."""
    if manifest and Path(manifest).exists():
        configured = {
            "forget": selector.describe(),
            "seed": seed,
            "val_fraction": val_fraction,
            "train_size": train_size,
        }
        return SplitManifest.load_checked(manifest, dataset, len(targets), num_classes, configured)
    split = make_split(
        targets, num_classes, selector, val_fraction=val_fraction, seed=seed, dataset=dataset, train_size=train_size
    )
    if manifest:
        split.save(manifest)
    return split

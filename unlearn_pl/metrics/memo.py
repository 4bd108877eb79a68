"""Caches of results of the frozen reference models, shared by deep copies of a callback.

The original and the oracle never change during a run, and :class:`~unlearn_pl.UnlearningModule`
reuses their per-example statistics across evaluations; metric callbacks can then reuse what they
computed from them too. The tuner deep-copies callbacks for every candidate while sharing the
reference networks and their statistics, so these caches are shared by deep copies (every entry is
validated by object identity, which makes sharing safe) and dropped by pickling (e.g. by
spawn-based launchers; weak references and identities do not survive it).
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Hashable
from typing import Any

from torch import Tensor, nn


class SharedMemo:
    """Base of the caches: deep copies share one, pickles start empty."""

    def __init__(self) -> None:
        self._entries: dict[Hashable, Any] = {}

    def __deepcopy__(self, memo: dict[int, Any]) -> SharedMemo:
        return self

    def __getstate__(self) -> dict[str, Any]:
        return {}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self._entries = {}

    def __len__(self) -> int:
        return len(self._entries)


class StatsMemo(SharedMemo):
    """Values computed from one model's per-example statistics, reused while the very same
    statistics object comes back (as the reference models' do from evaluation to evaluation)."""

    def get_or_compute(self, model: str, stats: object, compute: Callable[[], Any]) -> Any:
        hit = self._entries.get(model)
        if hit is not None and hit[0] is stats:
            return hit[1]
        value = compute()
        self._entries[model] = (stats, value)
        return value


class FrozenGridMemo(SharedMemo):
    """Prediction grids of frozen models by (model id, plane key, resolution).

    An entry remembers its model by weak reference and the model's state (train/eval mode and
    the version counters of its parameters and buffers); it is returned only for the same live
    model in the same state.
    """

    def get(self, key: tuple[int, str, int], model: nn.Module, state: tuple[Any, ...]) -> Tensor | None:
        hit = self._entries.get(key)
        if hit is not None and hit[0]() is model and hit[1] == state:
            return hit[2]
        return None

    def put(self, key: tuple[int, str, int], model: nn.Module, state: tuple[Any, ...], grid: Tensor) -> None:
        # Drop entries of models that no longer exist (their ids may be reused).
        self._entries = {k: v for k, v in self._entries.items() if v[0]() is not None}
        self._entries[key] = (weakref.ref(model), state, grid)

"""``EpochShuffleSampler``: a shuffling order that is a pure function of the seed and the epoch."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import DistributedSampler


class EpochShuffleSampler(DistributedSampler):
    """``DistributedSampler`` whose order is a pure function of ``(seed, epoch, pass)``.

    torch's ``DistributedSampler`` already derives its order from ``seed + epoch``, so a run
    resumed from a checkpoint (``--ckpt_path``) sees the order the uninterrupted run saw: Lightning
    sets the epoch through :meth:`set_epoch` before every epoch, also on resume. What this class
    adds:

    - Further passes within one epoch (a shorter loader cycled by a ``CombinedLoader`` in
      ``max_size_cycle`` mode) get new orders, from ``(seed, epoch, pass)``; torch's sampler would
      repeat the epoch's order in every cycle.
    - Without any :meth:`set_epoch` call (a plain training loop) every pass advances the epoch.
    - With ``num_replicas`` processes, process ``rank`` takes positions ``rank, rank +
      num_replicas, …`` of that one order (padded by repeating its start, as torch does). So the
      processes' k-th batches of size b together are the single-process k-th batch of size
      ``num_replicas · b``: DDP changes the data of a step only by the padding. Being a
      ``DistributedSampler``, Lightning keeps it instead of injecting its own.

    Args:
        size: number of examples to permute.
        seed: the seed of the order.
        num_replicas: number of processes sharing the order.
        rank: this process's index in ``0 … num_replicas−1``.
    """

    def __init__(self, size: int, seed: int, num_replicas: int = 1, rank: int = 0) -> None:
        if size < 0:
            raise ValueError(f"size must be >= 0; got {size}")
        # Explicit num_replicas/rank: the base class then never queries torch.distributed.
        super().__init__(range(size), num_replicas=num_replicas, rank=rank, shuffle=True, seed=int(seed))  # type: ignore[arg-type]  # torch's DistributedSampler takes only len() of its dataset
        self.size = size
        self._pass = 0  # passes already started in the current epoch
        self._epoch_set = False  # whether a loop drives the epoch through set_epoch

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose order the next pass yields (called by Lightning's loops)."""
        self.epoch = int(epoch)
        self._pass = 0
        self._epoch_set = True

    def permutation(self, epoch: int, pass_: int = 0) -> Tensor:
        """The order of pass ``pass_`` of ``epoch`` (pure: the same arguments give the same order)."""
        # SeedSequence mixes the three numbers, so nearby (seed, epoch) pairs give unrelated orders
        # (torch's seed + epoch makes seed 1's epoch 0 the same order as seed 0's epoch 1).
        seed = int(np.random.SeedSequence([self.seed, epoch, pass_]).generate_state(1)[0])
        return torch.randperm(self.size, generator=torch.Generator().manual_seed(seed))

    def __iter__(self) -> Iterator[int]:
        order = self.permutation(self.epoch, self._pass).tolist()
        if self._epoch_set:
            self._pass += 1  # the loop owns the epoch: another pass in it is a cycle
        else:
            self.epoch += 1  # nobody sets epochs: every pass is a new epoch
        if self.num_replicas > 1 and order:
            padding = self.total_size - len(order)
            order = (order + order * (padding // len(order) + 1))[: self.total_size]
            order = order[self.rank : self.total_size : self.num_replicas]
        return iter(order)

    def __len__(self) -> int:
        return self.num_samples

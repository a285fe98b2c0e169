"""The order the images are served in: a permutation per epoch that a resumed run repeats, a
shard per process, each process's share of the batch, and the held-out validation split."""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Sampler

from resnet_exp.data import DataError


def generator(*keys: int) -> torch.Generator:
    """A CPU generator seeded from ``keys`` alone (numpy's SeedSequence mixes them): the same keys,
    the same draws, in any process and after any resume."""
    state = np.random.SeedSequence(list(keys)).generate_state(2)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class EpochShuffle(Sampler[int]):
    """A new permutation every epoch, drawn from (seed, epoch) alone: epoch e is shuffled the same way
    whether the run got there in one go or was resumed from a checkpoint. Lightning calls
    ``set_epoch`` at the start of each epoch. ``resume=(epoch, samples)``: that epoch starts after its
    first ``samples`` samples (of this shard), for a run resumed from a checkpoint saved in the middle
    of it.

    With ``world`` processes (DDP), process ``rank`` takes every ``world``-th index of the epoch's
    permutation from position ``rank``: the processes see disjoint shards of equal length, so that
    batch b of every process together is batch b of the one-process run (the same samples; the
    ``n % world`` last ones of each permutation are left out, so that no process waits for another).
    """

    def __init__(self, n: int, seed: int, resume: tuple[int, int] = (0, 0), rank: int = 0, world: int = 1) -> None:
        if not 0 <= rank < world:
            raise ValueError(f"rank {rank} is not in 0..{world - 1}")
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.resume_epoch, self.resume_skip = resume
        # The epoch it starts in, before Lightning's first set_epoch: a resumed run's loader is
        # iterated once before that call, and worker processes fetch indices at once.
        self.epoch = self.resume_epoch

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.n // self.world

    def __iter__(self):
        order = torch.randperm(self.n, generator=generator(self.seed, self.epoch))[: len(self) * self.world][
            self.rank :: self.world
        ].tolist()
        if self.epoch == self.resume_epoch and self.resume_skip:  # resumed mid-epoch: the rest of it
            order, self.resume_skip = order[self.resume_skip :], 0
        return iter(order)


class Shard(Sampler[int]):
    """Indices ``rank, rank + world, ...`` of ``range(n)`` in order: one process's share of the test
    set, every sample evaluated exactly once over all processes (shards may differ in length by one)."""

    def __init__(self, n: int, rank: int = 0, world: int = 1) -> None:
        self.indices = range(rank, n, world)

    def __len__(self) -> int:
        return len(self.indices)

    def __iter__(self):
        return iter(self.indices)


def per_process_batch(batch_size: int, world: int) -> int:
    """Each of ``world`` processes' share of the batch: the run's batch stays ``batch_size``."""
    if batch_size % world:
        raise DataError(
            f"data.batch_size={batch_size} cannot be split evenly over {world} processes; "
            f"choose a multiple of {world} (the batch is that of all processes together)"
        )
    return batch_size // world


# The held-out validation split (``data.val_size``) is drawn with this seed, not the run's: every
# job of a sweep, whatever its seed, holds out the same images, so paired comparisons stay paired.
VAL_SPLIT_SEED = 20160316


def validation_split(n: int, val_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(training indices, validation indices) of ``n`` training images, ``val_size`` of them held
    out, chosen with ``VAL_SPLIT_SEED``; both sorted, so the training set keeps the file's order."""
    if not 0 <= val_size < n:
        raise DataError(f"data.val_size={val_size} must be from 0 (no validation split) to {n - 1}")
    order = torch.randperm(n, generator=torch.Generator().manual_seed(VAL_SPLIT_SEED))
    return order[val_size:].sort().values, order[:val_size].sort().values

"""Duration-bucketed batches, sharded across distributed ranks.

Utterances are sorted by duration, cut into ``buckets`` groups of similar length, shuffled
inside each group and packed into batches whose padded size (longest x count) stays under
``max_batch_seconds``. Batch order is shuffled per epoch. Everything depends only on
``(seed, epoch)``, so every rank computes the same batch list and takes every
``world_size``-th batch; the list is first extended by wrapping around so that all ranks
get the same number of batches (an unequal count hangs DDP at the end of an epoch).
"""

from __future__ import annotations

import math
import random
from typing import Iterator, Sequence

from torch.utils.data import Sampler


class DurationBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        durations: Sequence[float],
        max_batch_seconds: float,
        buckets: int = 30,
        shuffle: bool = True,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
    ):
        if max_batch_seconds <= 0:
            raise ValueError("max_batch_seconds must be positive")
        self.durations = list(durations)
        self.max_batch_seconds = max_batch_seconds
        self.buckets = max(1, buckets)
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.epoch = 0
        self.start_batch = 0  # batches of this epoch already consumed (mid-epoch resume)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def all_batches(self) -> list[list[int]]:
        """The whole epoch's batches, before sharding."""
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = sorted(range(len(self.durations)), key=lambda i: (self.durations[i], i))
        size = math.ceil(len(order) / self.buckets) if order else 1
        batches: list[list[int]] = []
        for start in range(0, len(order), size):
            group = order[start : start + size]
            if self.shuffle:
                rng.shuffle(group)
            batches.extend(self._pack(group))
        if self.shuffle:
            rng.shuffle(batches)
        return batches

    def _pack(self, indices: list[int]) -> list[list[int]]:
        batches, current, longest = [], [], 0.0
        for i in indices:
            longest_if_added = max(longest, self.durations[i])
            if current and longest_if_added * (len(current) + 1) > self.max_batch_seconds:
                batches.append(current)
                current, longest_if_added = [], self.durations[i]
            current.append(i)
            longest = longest_if_added
        if current:
            batches.append(current)
        return batches

    def _shard(self) -> list[list[int]]:
        batches = self.all_batches()
        per_rank = math.ceil(len(batches) / self.world_size)
        padded = (batches * (per_rank * self.world_size // max(len(batches), 1) + 1))[: per_rank * self.world_size]
        return padded[self.rank :: self.world_size]

    def __iter__(self) -> Iterator[list[int]]:
        yield from self._shard()[self.start_batch :]
        self.start_batch = 0

    def __len__(self) -> int:
        total = len(self.all_batches())
        return math.ceil(total / self.world_size) - self.start_batch

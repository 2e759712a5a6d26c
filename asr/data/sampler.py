"""Duration-bucketed batches, sharded across distributed ranks, resumable mid-epoch.

Utterances are sorted by duration, cut into ``buckets`` groups of similar length, shuffled
inside each group and packed (once, from the seed) into batches whose padded size
(longest x count) stays under ``max_batch_seconds``. Consecutive batches (similar durations) are then grouped into
*steps* of ``world_size`` batches, one per rank, so that ranks wait little for each other;
the order of steps is shuffled per epoch. Everything depends only on ``(seed, epoch)``:
every rank computes the same step list and takes its own batch of each step, so ranks read
disjoint utterances and all get the same number of batches (an unequal count hangs DDP at
the end of an epoch). An incomplete last step is padded with the first batches, so every
utterance is seen every epoch (``drop_remainder=True`` drops it instead).

Resuming: :meth:`DurationBatchSampler.state_dict` records the epoch and how many batches
of it the training loop consumed (:meth:`~DurationBatchSampler.mark_consumed`, called by
the data module as each batch reaches the model, so batches a loader merely prefetched are
not counted). After :meth:`~DurationBatchSampler.load_state_dict` the next iteration
skips them. :class:`ResumableDataLoader` exposes this state through Lightning's
stateful-loader protocol; :class:`asr.data.datamodule.ASRDataModule` also keeps it as its
own state, which Lightning restores before it builds the loaders.
"""

from __future__ import annotations

import math
import random
import warnings
from typing import Any, Iterator, Sequence

from torch.utils.data import DataLoader, Sampler


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
        drop_remainder: bool | None = None,
    ):
        if max_batch_seconds <= 0:
            raise ValueError("max_batch_seconds must be positive")
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.durations = list(durations)
        self.max_batch_seconds = max_batch_seconds
        self.buckets = max(1, buckets)
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
        self.drop_remainder = False if drop_remainder is None else drop_remainder
        self.epoch = 0
        self.consumed = 0  # batches of this epoch the training loop has taken (this rank)
        self._skip = 0  # batches to skip at the next iteration (set by load_state_dict)
        self._cache: tuple[int, list[list[list[int]]]] | None = None  # (epoch, steps)
        self._batches: list[list[int]] | None = None  # packed once, reordered per epoch
        # Lightning starts each epoch with ``batch_sampler.sampler.set_epoch(epoch)``, never
        # calling the batch sampler's own set_epoch: this attribute forwards that call here.
        self.sampler = _EpochForwarder(self)

    def set_epoch(self, epoch: int) -> None:
        if epoch != self.epoch:
            self.epoch, self.consumed, self._skip = epoch, 0, 0

    def mark_consumed(self, batches: int = 1) -> None:
        self.consumed += batches

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

    def steps(self) -> list[list[list[int]]]:
        """The epoch's steps, each ``world_size`` batches of utterance indices (rank r takes [r]).

        The batches themselves depend on the seed only, so every epoch has the same number
        of them (Lightning counts an epoch's batches once; a shorter epoch would silently
        skip validation); each epoch shuffles their order.
        """
        if self._cache is not None and self._cache[0] == self.epoch:
            return self._cache[1]
        if self._batches is None:
            pack_rng = random.Random(self.seed)
            order = sorted(range(len(self.durations)), key=lambda i: (self.durations[i], i))
            size = math.ceil(len(order) / self.buckets) if order else 1
            grouped: list[int] = []  # buckets in duration order, each shuffled inside
            for start in range(0, len(order), size):
                group = order[start : start + size]
                if self.shuffle:
                    pack_rng.shuffle(group)
                grouped.extend(group)
            self._batches = self._pack(grouped)  # neighbours have similar durations
        batches = self._batches
        W = self.world_size
        whole = len(batches) // W * W
        if whole < len(batches) and (not self.drop_remainder or whole == 0):
            # pad the last step by wrapping around (a tiny set may need to wrap several times)
            needed = math.ceil(len(batches) / W) * W
            batches = [batches[i % len(batches)] for i in range(needed)]
            whole = needed
        steps = [batches[i : i + W] for i in range(0, whole, W)]
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(steps)
        self._cache = (self.epoch, steps)
        return steps

    def all_batches(self) -> list[list[int]]:
        """Every rank's batches of the epoch, step by step."""
        return [batch for step in self.steps() for batch in step]

    def __iter__(self) -> Iterator[list[int]]:
        skip, self._skip = self._skip, 0
        self.consumed = skip
        for step in self.steps()[skip:]:
            yield step[self.rank]

    def __len__(self) -> int:
        """Batches this rank gets in a whole epoch (also when resuming mid-epoch)."""
        return len(self.steps())

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "consumed": self.consumed, "seed": self.seed, "world_size": self.world_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue the recorded epoch after the batches it had consumed (or the next epoch)."""
        if state["seed"] != self.seed or state["world_size"] != self.world_size:
            warnings.warn(
                f"sampler state from seed {state['seed']} on {state['world_size']} ranks does not fit seed "
                f"{self.seed} on {self.world_size} ranks: restarting epoch {state['epoch']} from its first batch"
            )
            self.set_epoch(state["epoch"])
            return
        self.set_epoch(state["epoch"])
        if state["consumed"] >= len(self):
            self.set_epoch(state["epoch"] + 1)
        else:
            self.consumed = self._skip = state["consumed"]


class _EpochForwarder:
    """Stands where Lightning looks for a sampler with ``set_epoch`` and forwards the epoch."""

    def __init__(self, owner: DurationBatchSampler):
        self.owner = owner

    def set_epoch(self, epoch: int) -> None:
        self.owner.set_epoch(epoch)


class ResumableDataLoader(DataLoader):
    """A DataLoader whose state is its :class:`DurationBatchSampler`'s (Lightning's
    ``state_dict``/``load_state_dict`` protocol for stateful loaders)."""

    def state_dict(self) -> dict[str, Any]:
        return self.batch_sampler.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.batch_sampler.load_state_dict(state)

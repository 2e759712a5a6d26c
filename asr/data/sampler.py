"""Duration-bucketed batches, sharded across distributed ranks, resumable mid-epoch.

Utterances are sorted by duration, cut into ``buckets`` groups of similar length, shuffled
inside each group and packed (once, from the seed) into batches whose padded size
(longest x count) stays under ``max_batch_seconds``; the batch count is thus the same
every epoch (Lightning counts an epoch's batches once). The largest batches are split in
two until the count is a multiple of ``world_size``. Consecutive batches (similar
durations) are grouped into *steps* of ``world_size`` batches, one per rank, so that ranks
wait little for each other; the order of steps is shuffled per epoch. Everything depends
only on ``(seed, epoch)``: every rank computes the same step list and takes its own batch
of each step, so ranks read disjoint utterances, every utterance is read once per epoch,
and all ranks get the same number of batches (an unequal count hangs DDP at the end of an
epoch). Only a set with fewer multi-utterance batches than that needs repeats a batch.

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


def pack_batches(durations: Sequence[float], max_batch_seconds: float, indices: Sequence[int]) -> list[list[int]]:
    """Cut ``indices``, in their order, into batches whose padded size (longest x count)
    stays under ``max_batch_seconds`` (a longer utterance alone makes a batch)."""
    batches, current, longest = [], [], 0.0
    for i in indices:
        longest_if_added = max(longest, durations[i])
        if current and longest_if_added * (len(current) + 1) > max_batch_seconds:
            batches.append(current)
            current, longest_if_added = [], durations[i]
        current.append(i)
        longest = longest_if_added
    if current:
        batches.append(current)
    return batches


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
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is outside world size {world_size}")
        self.durations = list(durations)
        self.max_batch_seconds = max_batch_seconds
        self.buckets = max(1, buckets)
        self.shuffle = shuffle
        self.seed = seed
        self.rank = rank
        self.world_size = world_size
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

    def _even_out(self, batches: list[list[int]]) -> list[list[int]]:
        """Split the largest batches in two (in place, so neighbours stay alike) until the
        count is a multiple of ``world_size``; repeat batches only if too few can split."""
        W = self.world_size
        need = -len(batches) % W
        largest = sorted((i for i, b in enumerate(batches) if len(b) > 1), key=lambda i: (-len(batches[i]), i))
        split = set(largest[:need])
        out: list[list[int]] = []
        for i, batch in enumerate(batches):
            out.extend([batch[: len(batch) // 2], batch[len(batch) // 2 :]] if i in split else [batch])
        if len(out) % W and out:  # e.g. fewer utterances than ranks: wrap around
            out += [out[i % len(out)] for i in range(-len(out) % W)]
        return out

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
            # neighbours have similar durations
            self._batches = self._even_out(pack_batches(self.durations, self.max_batch_seconds, grouped))
        W = self.world_size
        steps = [self._batches[i : i + W] for i in range(0, len(self._batches), W)]
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(steps)
        self._cache = (self.epoch, steps)
        return steps

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

"""How much of a batch is padding: duration-bucketed batches against random ones."""

from __future__ import annotations

import random
from typing import Sequence

from asr.data.sampler import DurationBatchSampler, pack_batches


def padded_fraction(batches: Sequence[Sequence[int]], durations: Sequence[float]) -> float:
    """Padded frames / all frames computed, each batch padded to its longest utterance."""
    total = sum(max(durations[i] for i in b) * len(b) for b in batches)
    return 1.0 - sum(durations[i] for b in batches for i in b) / total


def random_batches(durations: Sequence[float], max_batch_seconds: float, seed: int = 0) -> list[list[int]]:
    """Batches of shuffled utterances under the same padded-size limit (no bucketing)."""
    order = list(range(len(durations)))
    random.Random(seed).shuffle(order)
    return pack_batches(durations, max_batch_seconds, order)


def padding_figures(durations: Sequence[float], max_batch_seconds: float, buckets: int, seed: int = 0) -> dict:
    bucketed = list(DurationBatchSampler(durations, max_batch_seconds, buckets, shuffle=True, seed=seed))
    shuffled = random_batches(durations, max_batch_seconds, seed)
    return {
        "utterances": len(durations),
        "audio_hours": round(sum(durations) / 3600, 2),
        "max_batch_seconds": max_batch_seconds,
        "buckets": buckets,
        "bucketed_batches": len(bucketed),
        "bucketed_padding": round(padded_fraction(bucketed, durations), 4),
        "random_batches": len(shuffled),
        "random_padding": round(padded_fraction(shuffled, durations), 4),
    }

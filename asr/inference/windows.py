"""Long files through full context: overlapping windows, no longer than a segment, encoded
in padded batches, their words joined at the quietest moment of each overlap.

    window k:      [start ..................... start + length)
    window k + 1:                  [start + hop ..................... )
                                        ^ cut: the quietest moment of the overlap, at least
                                          ``margin`` from both of its edges; words whose
                                          middle lies before it come from window k, the
                                          others from window k + 1

Each window is one full-context pass with positions from 0 (as long as a training
utterance at most), batched with its neighbours: a few large model calls instead of the
streaming path's many small ones. Memory is bounded by one batch of windows (and the words
so far), whatever the length of the file.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Iterable, Iterator

import torch
from torch.nn import functional as F

from asr.audio.read import AudioError
from asr.decoding.alignment import Word
from asr.inference.stream import Segment

OVERLAP_S = 4.0  # seconds two neighbouring windows share
MARGIN_S = 1.0  # a cut leaves each window at least this much context past it
QUIET_S = 0.2  # loudness is averaged over this long a stretch to find the quietest moment
BATCH_WINDOWS = 3  # windows per model call: few calls, and a 1-minute file's batch as large as an hour's


@dataclass(frozen=True)
class WindowPlan:
    length: int  # samples per window (the last one may be shorter)
    hop: int  # samples from one window's start to the next's

    @property
    def overlap(self) -> int:
        return self.length - self.hop


def plan_windows(total: int, max_samples: int, overlap: int, quantum: int) -> WindowPlan:
    """Windows of at most ``max_samples`` that share ``overlap`` samples, spread evenly over
    ``total`` (a header's count: more audio than that only adds windows); ``hop`` and
    ``overlap`` are multiples of ``quantum`` (an output frame), so neighbours' frames align."""
    overlap = min(overlap, max_samples // 2) // quantum * quantum
    hop_max = max((max_samples - overlap) // quantum * quantum, quantum)
    count = max(1, math.ceil((total - overlap) / hop_max))
    hop = max(math.ceil(math.ceil((total - overlap) / count) / quantum) * quantum, quantum)  # <= hop_max
    return WindowPlan(hop + overlap, hop)


def windows(blocks: Iterable[torch.Tensor], plan: WindowPlan) -> Iterator[tuple[int, torch.Tensor, bool]]:
    """(N_i,) sample blocks -> (first sample, (M,) samples, is the last) per window, M <= length.

    Holds one window and less than a window plus a block of samples. When ``blocks`` raises
    :class:`AudioError`, the windows of the audio before it come first (the last one marked
    last), then the error."""
    buffer = torch.zeros(0)  # samples from ``start`` on
    start, ready, error = 0, None, None  # ready: the window before ``start``'s, not yielded yet
    try:
        for block in blocks:
            buffer = torch.cat([buffer, block])
            while buffer.numel() >= plan.length:
                if ready is not None:
                    yield (*ready, False)
                ready = (start, buffer[: plan.length].clone())
                buffer, start = buffer[plan.hop :], start + plan.hop
    except AudioError as err:
        error = err
    beyond = buffer.numel() > (plan.overlap if ready is not None else 0)  # audio past the ready window's end
    if ready is not None:
        yield (*ready, not beyond)
    if beyond:
        yield start, buffer, True
    if error is not None:
        raise error


def quiet_cut(energy_db: torch.Tensor, lo: int, hi: int, smooth: int) -> int:
    """(N,) per-frame loudness -> the frame in ``[lo, hi)`` at the middle of the quietest
    ``smooth`` frames (the middle of the range when it is empty)."""
    hi = min(hi, energy_db.numel())
    if hi - lo < smooth:
        return (lo + hi) // 2
    mean = F.avg_pool1d(energy_db[None, None, lo:hi].float(), smooth, stride=1)[0, 0]  # (hi - lo - smooth + 1,)
    return lo + int(mean.argmin()) + smooth // 2


def overlap_cut(energy_db: torch.Tensor, plan: WindowPlan, hop: int, rate: int) -> float:
    """Seconds from a (full) window's start to where it hands over to the next window: the
    quietest moment of their overlap, ``MARGIN_S`` inside it. ``energy_db``: (N,) loudness of
    the window's feature frames, ``hop`` samples apart at ``rate``."""
    margin = int(MARGIN_S * rate)
    lo, hi = (plan.hop + margin) // hop, (plan.length - margin) // hop
    return quiet_cut(energy_db, lo, hi, round(QUIET_S * rate / hop)) * hop / rate


class WordJoiner:
    """Window transcripts in order -> segments: each window gives the words whose middle
    lies between its cuts; a word that still overlaps the previous one is clipped at the cut."""

    def __init__(self):
        self.words: list[Word] = []  # every word kept so far, in order
        self.spans: list[tuple[float, float, int]] = []  # (start, end, words so far) per window
        self.left = 0.0  # the previous cut: where the next window's words begin

    def add(self, words: Iterable[Word], end: float, right: float | None) -> None:
        """Words of one window (times in the file); ``end``: where the window's frames end;
        ``right``: its cut with the next window (None for the last)."""
        stop = math.inf if right is None else right
        kept = [w for w in words if self.left <= (w.start + w.end) / 2 < stop]
        if kept and self.words and self.words[-1].end > kept[0].start:
            prev, first = self.words[-1], kept[0]
            at = min(max(self.left, prev.start), first.end)
            self.words[-1] = replace(prev, end=min(prev.end, at))
            kept[0] = replace(first, start=max(first.start, at))
        self.words.extend(kept)
        end = round(end if right is None else right, 3)
        self.spans.append((round(self.left, 3), end, len(self.words)))
        self.left = end

    def segments(self) -> list[Segment]:
        """One segment per window added, from its left cut to its right one."""
        out, first = [], 0
        for start, end, last in self.spans:
            words = tuple(self.words[first:last])
            out.append(Segment(start, end, " ".join(w.text for w in words), words))
            first = last
        return out

"""Chunks of many streams encoded in one batch.

A stream's thread hands each chunk to :meth:`ChunkBatcher.encode` (an
:data:`asr.inference.stream.ChunkEncoder`) and waits. The batcher's threads, one per compute
slot, take the first chunk waiting, then whatever else arrives within ``window_ms`` (at
most ``max_batch`` in all), and run the chunks of equal length in one
:meth:`~asr.inference.acoustic.AcousticModel.chunk_log_probs` call, whatever the backend
(torch: per-row positions and cache lengths; ONNX: one call per cache length). Each stream
keeps its own cache and decoder; its log-probs equal those of its chunks encoded alone (to
float rounding; ``tests/test_batched_streaming.py``). Under load chunks queue up while a batch computes,
so batches grow by themselves; a quiet server pays at most ``window_ms`` per chunk.
"""

from __future__ import annotations

import queue
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Sequence

import torch

from asr.inference.acoustic import AcousticModel, Cache

_STOP = object()


@dataclass
class _Request:
    """One stream's chunk, and what came of it."""

    x: torch.Tensor  # (1, C, D)
    offset: int  # position of its first frame in the stream's segment
    cache: Cache | None
    keep: int  # cached frames to carry on (-1: all)
    done: threading.Event = field(default_factory=threading.Event)
    result: tuple[torch.Tensor, list[Cache]] | None = None  # (1, C, V) log-probs, [new cache]
    error: BaseException | None = None


class ChunkBatcher:
    """``threads`` batch runners over one model; each holds one of ``slots`` while it computes."""

    def __init__(
        self,
        acoustic: AcousticModel,
        slots: threading.Semaphore,
        window_ms: float = 5.0,
        max_batch: int = 16,
        threads: int = 1,
    ):
        if max_batch < 1 or window_ms < 0:
            raise ValueError(f"need max_batch >= 1 and window_ms >= 0, not {max_batch} and {window_ms}")
        self.acoustic, self.slots = acoustic, slots
        self.window_s, self.max_batch = window_ms / 1000, max_batch
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.collecting = threading.Lock()  # one runner gathers a batch at a time
        self.closed = False
        self.sizes: Counter[int] = Counter()  # batch size -> how many batches of it ran
        self.runners = [threading.Thread(target=self._run, name="asr-batch", daemon=True) for _ in range(threads)]
        for runner in self.runners:
            runner.start()

    def encode(
        self, x: torch.Tensor, offsets: Sequence[int], caches: Sequence[Cache | None], keep: int
    ) -> tuple[torch.Tensor, list[Cache]]:
        """One stream's chunk, as :meth:`AcousticModel.chunk_log_probs` with a batch of one:
        (1, C, D) -> (1, C, V) log-probs and [its new cache]; blocks until its batch ran."""
        if self.closed:
            raise RuntimeError("the server is shutting down")
        (offset,), (cache,) = offsets, caches
        request = _Request(x, offset, cache, keep)
        self.inbox.put(request)
        request.done.wait()
        if request.error is not None:
            raise request.error
        return request.result

    def close(self) -> None:
        self.closed = True
        for _ in self.runners:
            self.inbox.put(_STOP)
        for runner in self.runners:
            runner.join(10)

    def _collect(self) -> list[_Request] | None:
        """The next batch's requests (None: stop)."""
        with self.collecting:
            first = self.inbox.get()
            if first is _STOP:
                return None
            batch = [first]
            deadline = time.monotonic() + self.window_s
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    item = self.inbox.get(timeout=remaining) if remaining > 0 else self.inbox.get_nowait()
                except queue.Empty:
                    break
                if item is _STOP:
                    self.inbox.put(_STOP)  # for this runner's next round
                    break
                batch.append(item)
            return batch

    def _run(self) -> None:
        while (batch := self._collect()) is not None:
            groups: dict[tuple[int, int], list[_Request]] = {}
            for request in batch:  # one forward_chunk per chunk length (and kept cache)
                groups.setdefault((request.x.shape[1], request.keep), []).append(request)
            with self.slots:
                for group in groups.values():
                    self._encode_group(group)

    def _encode_group(self, group: list[_Request]) -> None:
        try:
            with torch.inference_mode():
                if len(group) > 1:
                    try:
                        self._encode_batch(group)
                        self.sizes[len(group)] += 1
                        return
                    except Exception:  # one stream's chunk is at fault: find it, fail it alone
                        pass
                for r in group:  # the unbatched call, exactly
                    try:
                        r.result = self.acoustic.chunk_log_probs(r.x, [r.offset], [r.cache], r.keep)
                        self.sizes[1] += 1
                    except Exception as err:  # this stream hears of it; the runner goes on
                        r.error = err
        finally:
            for r in group:
                if r.result is None and r.error is None:
                    r.error = RuntimeError("the batch was interrupted")
                r.done.set()

    def _encode_batch(self, group: list[_Request]) -> None:
        x = torch.cat([r.x for r in group])  # (B, C, D)
        offsets, caches = [r.offset for r in group], [r.cache for r in group]
        log_probs, rows = self.acoustic.chunk_log_probs(x, offsets, caches, group[0].keep)  # (B, C, V)
        for b, r in enumerate(group):
            r.result = log_probs[b : b + 1], [rows[b]]

"""One client's stream, computed off the event loop.

:meth:`asr.inference.Recognizer.stream` pulls audio blocks and yields events, so each
stream runs that generator on a thread of its own, fed from a queue. The model computes
only while the thread holds one of the server's compute *slots* (:class:`ComputeSlots`,
as many as the cores given to it); a thread waiting for audio holds none, so open streams
cost memory, not CPU. Slots are granted first come, first served.

With a :class:`asr.serving.batching.ChunkBatcher` the chunks run batched across streams: a
stream's thread hands each chunk over, lets its slot go while the batch computes (on a
batcher thread holding a slot of its own) and takes it back for the rest (front end,
decoding, alignment). Without one (``--max-batch 1``) each stream encodes its chunks alone.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

import torch

from asr.audio.resample import StreamingResampler
from asr.audio.sources import PcmFormat
from asr.inference.options import TranscribeOptions
from asr.serving.batching import ChunkBatcher
from asr.serving.protocol import done_message, error_message, event_message

_END, _CANCEL = object(), object()


class _Cancelled(Exception):
    """The client went away or broke the protocol: stop the stream."""


class ComputeSlots:
    """How many streams may run the model at once (a FIFO semaphore)."""

    def __init__(self, count: int):
        if count < 1:
            raise ValueError(f"need at least one compute slot, not {count}")
        self.semaphore = threading.Semaphore(count)


class StreamSession:
    """Audio bytes in (:meth:`feed`, :meth:`end`, :meth:`cancel`), messages out through
    ``emit`` (called on the session's thread, so it must be thread-safe)."""

    def __init__(
        self,
        recognizer,
        options: TranscribeOptions,
        sample_rate: int,
        slots: ComputeSlots,
        emit: Callable[[dict], None],
        batcher: ChunkBatcher | None = None,
    ):
        self.recognizer, self.options, self.emit = recognizer, options, emit
        self.batcher = batcher
        self.pcm = PcmFormat(sample_rate)
        self.slots = slots.semaphore
        self.inbox: queue.SimpleQueue = queue.SimpleQueue()
        self.samples = 0  # received, at the client's rate
        self.thread = threading.Thread(target=self._run, name="asr-stream", daemon=True)
        self.thread.start()

    def feed(self, data: bytes) -> None:
        """Whole 16-bit samples (an even byte count)."""
        self.samples += len(data) // 2
        self.inbox.put(data)

    def end(self) -> None:
        self.inbox.put(_END)

    def cancel(self) -> None:
        self.inbox.put(_CANCEL)

    def _blocks(self) -> Iterator[torch.Tensor]:
        """(N_i,) blocks at the model's rate; the compute slot is let go while waiting. What
        queued up while the stream waited for a slot is taken as one block (fewer, larger
        calls under load; the result does not depend on how the audio is cut)."""
        resampler = StreamingResampler(self.pcm.sample_rate, self.recognizer.sample_rate)
        while True:
            self.slots.release()
            first = self.inbox.get()
            self.slots.acquire()
            data, mark = self._drain(first)
            if mark is _CANCEL:
                raise _Cancelled
            if data:
                block = resampler.process(torch.from_numpy(self.pcm.decode(data)[:, 0].copy()))
                if block.numel():
                    yield block
            if mark is _END:
                break
        tail = resampler.flush()
        if tail.numel():
            yield tail

    def _drain(self, item) -> tuple[bytes, object | None]:
        """``item`` and all queued after it -> (their audio joined, _END or _CANCEL if one came)."""
        data = []
        while item is not _END and item is not _CANCEL:
            data.append(item)
            try:
                item = self.inbox.get_nowait()
            except queue.Empty:
                return b"".join(data), None
        return b"".join(data), item

    def _encode(self, x: torch.Tensor, offsets: list[int], caches: list, keep: int):
        """A chunk through the batcher (:data:`asr.inference.stream.ChunkEncoder`); no slot held meanwhile."""
        self.slots.release()
        try:
            return self.batcher.encode(x, offsets, caches, keep)
        finally:
            self.slots.acquire()

    def _events(self) -> Iterator:
        encode = None if self.batcher is None else self._encode  # the batcher encodes the chunks
        return self.recognizer.stream(self._blocks(), self.options, encode)

    def _run(self) -> None:
        self.slots.acquire()
        try:
            finals = []
            for event in self._events():
                self.emit(event_message(event, len(finals)))
                if event.final:
                    finals.append(event.segment)
            self.emit(done_message(finals, self.samples / self.pcm.sample_rate))
        except _Cancelled:
            pass
        except Exception as err:  # the model or the audio failed: this stream only
            self.emit(error_message(f"internal error: {type(err).__name__}: {err}".splitlines()[0]))
        finally:
            self.slots.release()

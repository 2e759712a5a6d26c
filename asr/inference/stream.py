"""Transcription as a generator: audio blocks in, partial and final results out.

    for event in transcribe_stream(recognizer.acoustic, tokenizer, blocks, TranscribeOptions(chunk_ms=640)):
        print("final" if event.final else "partial", event.segment.text)

Blocks pass through the streaming front end (:mod:`asr.inference.frontend`); the frames
are cut into segments at pauses, found on their loudness as they arrive (see
:class:`TranscribeOptions`). With ``chunk_ms > 0`` each chunk of frames is encoded as soon
as it is complete, attending to itself and a cache of ``left_chunks`` earlier chunks, and a
partial result follows every chunk; once the segment ends, it is encoded again with full
attention and decoded afresh for its final result (``rescore``, the default: two passes,
so live finals match offline ones). With ``chunk_ms = 0`` a segment is encoded with full
attention once it ends. A finished segment is aligned (:mod:`asr.decoding.alignment`) to
give word timings.

The model is reached through :class:`asr.inference.acoustic.AcousticModel` only, so a torch
model and an exported ONNX one stream alike. ``encode_chunk`` (a :data:`ChunkEncoder`)
replaces the model's :meth:`~asr.inference.acoustic.AcousticModel.chunk_log_probs`, e.g. by
one that runs the chunk in a batch with other streams' chunks (:mod:`asr.serving.batching`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Iterable, Iterator, Sequence

import torch

from asr.decoding.alignment import Word, align_tokens, group_words, snap_to_pauses
from asr.audio.read import AudioError
from asr.inference.acoustic import AcousticModel, Cache
from asr.decoding.streaming import GreedyStream, StreamDecoder
from asr.inference.frontend import FrontendOutput, StreamingFrontend
from asr.inference.options import TranscribeOptions
from asr.text.tokenizer import BLANK, Tokenizer

if TYPE_CHECKING:
    from asr.decoding.ctc_beam import CTCBeamDecoder  # flashlight-text, imported only for the beam path


# (1, C, D) frames of one stream, [the position of the first], [the stream's cache (None at a
# segment's start)], cached frames to keep -> (1, C, V) log-probs and [the new cache]; as
# AcousticModel.chunk_log_probs with a batch of one
ChunkEncoder = Callable[[torch.Tensor, Sequence[int], Sequence["Cache | None"], int], tuple[torch.Tensor, list]]


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the audio
    end: float
    text: str
    words: tuple[Word, ...]  # empty in partial results


@dataclass(frozen=True)
class StreamEvent:
    final: bool  # True: ``segment`` is finished and timed; False: the open segment's hypothesis so far
    segment: Segment


class _Segmenter:
    """Frames in, events out: segment ends found on loudness as frames arrive, chunked or
    whole-segment encoding, decoding, and (chunked, ``options.rescore``) a full-context
    second pass over each finished segment."""

    def __init__(
        self,
        acoustic: AcousticModel,
        tokenizer: Tokenizer,
        options: TranscribeOptions,
        beam: CTCBeamDecoder | None = None,
        encode_chunk: ChunkEncoder | None = None,
    ):
        self.acoustic, self.tokenizer, self.options = acoustic, tokenizer, options
        self.encode_chunk = encode_chunk or acoustic.chunk_log_probs
        self.beam = beam  # the beam search each segment starts afresh (None: greedy)
        self.frame_shift = acoustic.frame_shift
        self.chunk = options.chunk_frames(self.frame_shift)
        self.rescore = bool(self.chunk) and options.rescore
        self.keep = options.left_chunks * self.chunk if options.left_chunks >= 0 else -1
        self.min_frames = round(options.min_segment_s / self.frame_shift)
        self.max_frames = max(round(options.max_segment_s / self.frame_shift), 1)
        self.pause_frames = max(round(options.pause_ms / 1000 / self.frame_shift), 1)
        self.peak_db = float("-inf")  # loudest frame heard so far
        self.start = 0  # global index of the open segment's first frame
        self.pending: list[torch.Tensor] = []  # (D,) frames not encoded yet
        self.pending_db: list[float] = []  # their loudness in dB (the loudest of their feature frames)
        self.pending_energy: list[torch.Tensor] = []  # (4,) dB of their feature frames
        self._reset()

    def _reset(self) -> None:
        self.decoder: StreamDecoder = self._new_decoder()
        self.cache = None  # encoder keys/values per layer (chunked mode)
        self.encoded = 0  # frames of the open segment already encoded
        self.scanned = 0  # frames of the open segment already checked for its end
        self.frames: list[torch.Tensor] = []  # (C, D) encoded input frames of the open segment (second pass)
        self.log_probs: list[torch.Tensor] = []  # (C, V) per chunk of the open segment
        self.energy: list[torch.Tensor] = []  # (C, 4) feature-frame loudness per chunk of the open segment
        self.quiet_run = 0  # quiet frames ending the scanned part of the open segment
        self.heard = False  # the open segment has a frame that is not quiet

    def _new_decoder(self) -> StreamDecoder:
        return self.beam.stream() if self.beam is not None else GreedyStream()

    def _quiet(self, db: float) -> bool:
        self.peak_db = max(self.peak_db, db)
        return db < self.peak_db - self.options.silence_db

    def push(self, out: FrontendOutput) -> Iterator[StreamEvent]:
        self.pending.extend(out.frames)
        energy = out.energy_db.cpu()
        self.pending_energy.extend(energy)
        self.pending_db.extend(energy.max(dim=1).values.tolist())
        while True:  # frames are scanned for a segment end before they are encoded
            while (cut := self._find_end()) is not None:
                yield from self._close(cut)
            if not (self.chunk and len(self.pending) >= self.chunk):
                return
            yield from self._encode_chunk(self.chunk)  # may end the segment (blank_end_ms)

    def finish(self) -> Iterator[StreamEvent]:
        if self.encoded + len(self.pending):
            yield from self._close(self.encoded + len(self.pending))

    def _find_end(self) -> int | None:
        """Scan the frames not scanned yet -> the open segment's length if it ends among
        them (at a pause once ``min_segment_s`` long, or at ``max_segment_s``), else None."""
        while self.scanned < self.encoded + len(self.pending):
            db = self.pending_db[self.scanned - self.encoded]
            self.quiet_run = self.quiet_run + 1 if self._quiet(db) else 0
            self.heard = self.heard or self.quiet_run == 0
            self.scanned += 1
            if self.scanned >= self.max_frames:
                if self.chunk:
                    return self.scanned
                half = self.scanned // 2  # no pause: cut at the quietest frame of the second half
                return 1 + min(range(half, self.scanned), key=lambda i: self.pending_db[i])
            if self.heard and self.scanned >= self.min_frames and self.quiet_run >= self.pause_frames:
                return self.scanned
        return None

    def _close(self, length: int) -> Iterator[StreamEvent]:
        """End the open segment after its first ``length`` frames -> its final event (after
        the last partial, without a second pass); the frames after it start the next. A
        segment of quiet alone (the silence after the last words) gives no event."""
        n = length - self.encoded
        if not self.heard:
            del self.pending[:n], self.pending_db[:n], self.pending_energy[:n]
            self.start += length
            self._reset()
            return
        if self.rescore:
            if n:
                self._take(n)
        elif self.chunk:
            while self.encoded < length:
                yield from self._encode_chunk(min(self.chunk, length - self.encoded))
        else:
            self._encode_segment(n)
        yield self._finalize()

    def _take(self, n: int) -> torch.Tensor:
        """The first ``n`` pending frames, moved into the open segment -> (1, n, D)."""
        x = torch.stack(self.pending[:n])[None]  # (1, n, D)
        self.frames.append(x[0])
        self.energy.append(torch.stack(self.pending_energy[:n]))
        del self.pending[:n], self.pending_db[:n], self.pending_energy[:n]
        self.encoded += n
        return x

    # chunked streaming ------------------------------------------------------------------

    @torch.inference_mode()
    def _encode_chunk(self, n: int) -> Iterator[StreamEvent]:
        offset = self.encoded
        x = self._take(n)
        if self.options.partials == "segment" and self.rescore:  # the segment so far, full context, afresh
            decoder = self._new_decoder()
            whole = self.acoustic.segment_log_probs(torch.cat(self.frames)[None])  # (T', V)
            decoder.step(whole)
            yield StreamEvent(False, self._segment(self.tokenizer.decode(decoder.finish()), ()))
        else:
            log_probs, (self.cache,) = self.encode_chunk(x, [offset], [self.cache], self.keep)
            self.log_probs.append(log_probs[0])  # (C, V)
            self.decoder.step(log_probs[0])
            yield StreamEvent(False, self._segment(self.tokenizer.decode(self.decoder.best()), ()))
            whole = torch.cat(self.log_probs)
        if self._blank_ending(whole):
            yield from self._close(self.encoded)

    def _blank_ending(self, log_probs: torch.Tensor) -> bool:
        """(T', V) log-probs of the open segment -> it has words and ends in ``blank_end_ms`` of blank."""
        frames = round(self.options.blank_end_ms / 1000 / self.frame_shift)
        if not frames or self.encoded < max(self.min_frames, frames + 1):
            return False
        best = log_probs.argmax(dim=-1)  # (T',)
        return bool((best[-frames:] == BLANK).all() and (best[:-frames] != BLANK).any())

    # full context within a segment ------------------------------------------------------

    def _encode_segment(self, n: int) -> None:
        x = self._take(n)
        log_probs = self.acoustic.segment_log_probs(x)  # (T', V)
        self.log_probs.append(log_probs)
        self.decoder.step(log_probs)

    # results ----------------------------------------------------------------------------

    def _segment(self, text: str, words: tuple[Word, ...]) -> Segment:
        start = self.start * self.frame_shift
        return Segment(round(start, 3), round(start + self.encoded * self.frame_shift, 3), text, words)

    def _finalize(self) -> StreamEvent:
        if self.rescore:  # second pass: the whole segment with full context, decoded afresh
            log_probs = self.acoustic.segment_log_probs(torch.cat(self.frames)[None])  # (T', V)
            decoder = self._new_decoder()
            decoder.step(log_probs)
            tokens = decoder.finish()
        else:
            tokens = self.decoder.finish()
            log_probs = torch.cat(self.log_probs)  # (T', V) of the whole segment
        words = words_of(self.acoustic, self.tokenizer, log_probs, tokens, torch.cat(self.energy), self.options,
                         self.start * self.frame_shift)  # fmt: skip
        event = StreamEvent(True, self._segment(self.tokenizer.decode(tokens), words))
        self.start += self.encoded
        self._reset()
        return event


def words_of(acoustic: AcousticModel, tokenizer: Tokenizer, log_probs: torch.Tensor, tokens: list[int],
             energy: torch.Tensor, options: TranscribeOptions, offset: float = 0.0) -> tuple[Word, ...]:  # fmt: skip
    """The one way from posteriors to timed words: (T', V) log-probs, the decoded token ids,
    (T', rate) or (rate T',) feature-frame loudness in dB -> words, ``offset`` seconds on,
    their edges snapped onto the pauses around them when ``options.snap_words``."""
    words = group_words(tokenizer, align_tokens(log_probs, tokens), acoustic.frame_shift, offset)
    if options.snap_words:
        cfg = acoustic.feature_config
        hop, window = cfg.hop_length / cfg.sample_rate, cfg.n_fft / cfg.sample_rate
        words = snap_to_pauses(words, energy.reshape(-1), hop, window, offset, options.silence_db)
    return tuple(words)


def transcribe_stream(
    acoustic: AcousticModel,
    tokenizer: Tokenizer,
    blocks: Iterable[torch.Tensor],
    options: TranscribeOptions,
    beam: CTCBeamDecoder | None = None,
    encode_chunk: ChunkEncoder | None = None,
) -> Iterator[StreamEvent]:
    """(N_i,) sample blocks at the model's rate -> partial and final :class:`StreamEvent`s.

    ``beam`` is the beam search to decode with (with its LM and hotwords; built by
    :meth:`asr.inference.Recognizer.beam_search`), None for greedy.
    ``encode_chunk`` runs each chunk through the model (None: this stream's alone).

    Memory is bounded by the longest segment, whatever the length of the stream. When
    ``blocks`` raises :class:`AudioError` part-way, the audio before it is transcribed and
    its final events yielded, then the error is raised again.
    """
    frontend = StreamingFrontend(acoustic)
    segmenter = _Segmenter(acoustic, tokenizer, options, beam, encode_chunk)
    error = None
    try:
        for block in blocks:
            yield from segmenter.push(frontend.process(block))
    except AudioError as err:
        error = err
    if error is None or frontend.total_samples:
        yield from segmenter.push(frontend.flush())
        yield from segmenter.finish()
    if error is not None:
        raise error

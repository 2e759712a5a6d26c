"""Transcription as a generator: audio blocks in, partial and final results out.

    for event in transcribe_stream(model, tokenizer, blocks, TranscribeOptions(chunk_ms=640)):
        print("final" if event.final else "partial", event.segment.text)

Blocks pass through the streaming front end (:mod:`asr.inference.frontend`); the frames
are cut into segments at pauses (see :class:`TranscribeOptions`). With ``chunk_ms > 0``
each chunk of frames is encoded as soon as it is complete, attending to itself and a
cache of ``left_chunks`` earlier chunks, and a partial result follows every chunk. With
``chunk_ms = 0`` a segment is encoded with full attention once it ends. A finished
segment is aligned (:mod:`asr.decoding.alignment`) to give word timings.

``model_context`` (e.g. ``lambda: torch.autocast("cpu", dtype=torch.bfloat16)``) is
entered around each call of the subsampling, encoder and head only, never across a
``yield``: the caller's code between events does not run under it.

``encode_chunk`` (a :data:`ChunkEncoder`) replaces the chunk's encoder + head call, e.g. by one
that runs it in a batch with other streams' chunks (:mod:`asr.serving.batching`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, ContextManager, Iterable, Iterator

import torch

from asr.decoding.alignment import Word, align_tokens, group_words, snap_to_pauses
from asr.audio.read import AudioError
from asr.model import CTCModel
from asr.model.encoder import LayerCache
from asr.decoding.streaming import GreedyStream, StreamDecoder
from asr.inference.frontend import FrontendOutput, StreamingFrontend
from asr.inference.options import DecodingOptions, TranscribeOptions
from asr.text.tokenizer import Tokenizer

if TYPE_CHECKING:
    from asr.decoding.ctc_beam import CTCBeamDecoder  # flashlight-text, imported only for the beam path


# (1, C, D) frames of one stream, the position of the first, the stream's encoder cache (None
# at a segment's start), frames of it to keep -> (1, C, V) logits and the new cache; as
# ``encoder.forward_chunk`` followed by ``head``
ChunkEncoder = Callable[[torch.Tensor, int, "list[LayerCache] | None", int], tuple[torch.Tensor, "list[LayerCache]"]]


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
    """Frames in, events out: chunked or whole-segment encoding, decoding, endpointing."""

    def __init__(
        self,
        model: CTCModel,
        tokenizer: Tokenizer,
        options: TranscribeOptions,
        model_context: Callable[[], ContextManager] = contextlib.nullcontext,
        beam: CTCBeamDecoder | None = None,
        encode_chunk: ChunkEncoder | None = None,
    ):
        self.model, self.tokenizer, self.options = model, tokenizer, options
        self.encode_chunk = encode_chunk or self._encode_alone
        self.beam = beam  # the beam search each segment starts afresh (None: greedy)
        self.model_context = model_context  # entered around each encoder + head call
        self.frame_shift = model.frame_shift
        self.chunk = options.chunk_frames(self.frame_shift)
        self.keep = options.left_chunks * self.chunk if options.left_chunks >= 0 else -1
        self.min_frames = round(options.min_segment_s / self.frame_shift)
        self.max_frames = max(round(options.max_segment_s / self.frame_shift), 1)
        self.pause_frames = max(round(options.pause_ms / 1000 / self.frame_shift), 1)
        self.peak_db = float("-inf")  # loudest frame heard so far
        self.start = 0  # global index of the open segment's first frame
        self.pending: list[torch.Tensor] = []  # (D,) frames not encoded yet
        self.pending_db: list[float] = []  # their loudness in dB (the loudest of their feature frames)
        self.pending_energy: list[torch.Tensor] = []  # (4,) dB of their feature frames
        self.scanned = 0  # pending frames already checked for a segment end (full context)
        self._reset()

    def _reset(self) -> None:
        self.decoder: StreamDecoder = self.beam.stream() if self.beam is not None else GreedyStream()
        self.cache = None  # encoder keys/values per layer (chunked mode)
        self.encoded = 0  # frames of the open segment already encoded
        self.log_probs: list[torch.Tensor] = []  # (C, V) per chunk of the open segment
        self.energy: list[torch.Tensor] = []  # (C, 4) feature-frame loudness per chunk of the open segment
        self.quiet_run = 0  # quiet frames ending the open segment

    def _quiet(self, db: float) -> bool:
        self.peak_db = max(self.peak_db, db)
        return db < self.peak_db - self.options.silence_db

    def push(self, out: FrontendOutput) -> Iterator[StreamEvent]:
        self.pending.extend(out.frames)
        energy = out.energy_db.cpu()
        self.pending_energy.extend(energy)
        self.pending_db.extend(energy.max(dim=1).values.tolist())
        if self.chunk:
            # the last chunk of a segment may be shorter, so that no segment passes max_frames
            while len(self.pending) >= min(self.chunk, self.max_frames - self.encoded):
                yield from self._encode_chunk(min(self.chunk, self.max_frames - self.encoded))
        else:
            yield from self._grow_segment()

    def finish(self) -> Iterator[StreamEvent]:
        if self.chunk:
            if self.pending:
                yield from self._encode_chunk(len(self.pending), endpoint=False)
        elif self.pending:
            self._encode_segment(len(self.pending))
        if self.encoded:
            yield self._finalize()

    # chunked streaming ------------------------------------------------------------------

    @torch.inference_mode()
    def _encode_chunk(self, n: int, endpoint: bool = True) -> Iterator[StreamEvent]:
        x = torch.stack(self.pending[:n])[None]  # (1, C, D)
        energies = self.pending_db[:n]
        self.energy.append(torch.stack(self.pending_energy[:n]))
        del self.pending[:n], self.pending_db[:n], self.pending_energy[:n]
        logits, self.cache = self.encode_chunk(x, self.encoded, self.cache, self.keep)
        log_probs = logits[0].float().log_softmax(dim=-1).cpu()  # (C, V)
        self.encoded += n
        self.log_probs.append(log_probs)
        self.decoder.step(log_probs)
        for db in energies:
            self.quiet_run = self.quiet_run + 1 if self._quiet(db) else 0
        yield StreamEvent(False, self._segment(self.tokenizer.decode(self.decoder.best()), ()))
        if endpoint and self._ends(self.encoded):
            yield self._finalize()

    def _encode_alone(self, x: torch.Tensor, offset: int, cache, keep: int) -> tuple[torch.Tensor, list[LayerCache]]:
        """The default :data:`ChunkEncoder`: this stream's chunk on its own."""
        with self.model_context():
            y, cache = self.model.encoder.forward_chunk(x, offset, cache, keep)
            return self.model.head(y), cache

    def _ends(self, length: int) -> bool:
        paused = length >= self.min_frames and self.quiet_run >= self.pause_frames
        return paused or length >= self.max_frames

    # full context within a segment ------------------------------------------------------

    def _grow_segment(self) -> Iterator[StreamEvent]:
        """Scan the frames not scanned yet for the end of the open segment."""
        while self.scanned < len(self.pending):
            self.quiet_run = self.quiet_run + 1 if self._quiet(self.pending_db[self.scanned]) else 0
            self.scanned += 1
            if self.scanned >= self.max_frames:  # no pause: cut at the quietest frame of the second half
                half = self.scanned // 2
                cut = 1 + min(range(half, self.scanned), key=lambda i: self.pending_db[i])
            elif self._ends(self.scanned):
                cut = self.scanned
            else:
                continue
            self._encode_segment(cut)
            yield self._finalize()
            self.scanned = 0  # frames after the cut start the next segment: scan them again

    @torch.inference_mode()
    def _encode_segment(self, n: int) -> None:
        x = torch.stack(self.pending[:n])[None]  # (1, T', D)
        self.energy.append(torch.stack(self.pending_energy[:n]))
        del self.pending[:n], self.pending_db[:n], self.pending_energy[:n]
        lengths = torch.tensor([n], device=x.device)
        with self.model_context():
            logits = self.model.head(self.model.encoder(x, lengths, chunk_frames=0))
        log_probs = logits[0].float().log_softmax(dim=-1).cpu()  # (T', V)
        self.encoded += n
        self.log_probs.append(log_probs)
        self.decoder.step(log_probs)

    # results ----------------------------------------------------------------------------

    def _segment(self, text: str, words: tuple[Word, ...]) -> Segment:
        start = self.start * self.frame_shift
        return Segment(round(start, 3), round(start + self.encoded * self.frame_shift, 3), text, words)

    def _finalize(self) -> StreamEvent:
        tokens = self.decoder.finish()
        log_probs = torch.cat(self.log_probs)  # (T', V) of the whole segment
        offset = self.start * self.frame_shift
        words = group_words(self.tokenizer, align_tokens(log_probs, tokens), self.frame_shift, offset)
        if self.options.snap_words:
            cfg = self.model.features.config
            energy = torch.cat(self.energy).reshape(-1)  # (4 T',) one per feature frame
            hop, window = cfg.hop_length / cfg.sample_rate, cfg.n_fft / cfg.sample_rate
            words = snap_to_pauses(words, energy, hop, window, offset, self.options.silence_db)
        event = StreamEvent(True, self._segment(self.tokenizer.decode(tokens), tuple(words)))
        self.start += self.encoded
        self._reset()
        return event


def transcribe_stream(
    model: CTCModel,
    tokenizer: Tokenizer,
    blocks: Iterable[torch.Tensor],
    options: TranscribeOptions,
    model_context: Callable[[], ContextManager] = contextlib.nullcontext,
    beam: CTCBeamDecoder | None = None,
    encode_chunk: ChunkEncoder | None = None,
) -> Iterator[StreamEvent]:
    """(N_i,) sample blocks at the model's rate -> partial and final :class:`StreamEvent`s.

    ``model_context()`` is entered around each subsampling, encoder and head call (e.g. autocast).
    ``beam`` is the beam search to decode with (with its LM and hotwords); None builds one
    from ``options`` when they ask for it (:attr:`TranscribeOptions.uses_beam`), else greedy.
    ``encode_chunk`` runs each chunk's encoder + head (None: this stream's alone).

    Memory is bounded by the longest segment, whatever the length of the stream. When
    ``blocks`` raises :class:`AudioError` part-way, the audio before it is transcribed and
    its final events yielded, then the error is raised again.
    """
    frontend = StreamingFrontend(model, model_context)
    if beam is None and options.uses_beam:
        from asr.decoding.ctc_beam import CTCBeamDecoder

        beam = CTCBeamDecoder(tokenizer, options.beam_width, options.decoding or DecodingOptions())
    segmenter = _Segmenter(model, tokenizer, options, model_context, beam, encode_chunk)
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

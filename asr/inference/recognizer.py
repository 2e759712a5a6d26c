"""Inference: a loaded model that turns audio into text with word timings.

    from asr import load_model
    result = load_model("exp/demo/model.pt").transcribe("a.wav")
    print(result.text, [(w.text, w.start, w.end) for w in result.words])

Files are read block by block (:mod:`asr.audio.sources`), so memory stays bounded for any
length. :meth:`Recognizer.transcribe` runs the streaming generator
(:func:`asr.inference.stream.transcribe_stream`); :meth:`Recognizer.transcribe_files`
decodes short files in padded batches (:meth:`Recognizer.transcribe_batch`) and, with full
context, long ones as overlapping windows in padded batches (:mod:`asr.inference.windows`).

The model is reached only through :class:`asr.inference.acoustic.AcousticModel`
(:attr:`Recognizer.acoustic`): a torch :class:`~asr.model.CTCModel` at a ``precision``
(:mod:`asr.inference.torch_backend`) or an exported ONNX directory
(:mod:`asr.inference.onnx_backend`).
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import replace
from pathlib import Path
from typing import Iterable, Iterator

import torch
from torch.nn import functional as F

from asr.inference.acoustic import AcousticModel, loudness_db
from asr.inference.torch_backend import PRECISIONS, TorchAcoustic
from asr.inference.results import FileResult, Transcript, collect, join_segments
from asr.inference.trace import TRACE_SECONDS, Recorder
from asr.audio.read import AudioError
from asr.inference.checkpoint import load_parts
from asr.config import RecipeConfig
from asr.data.batch import pad_1d
from asr.decoding import greedy_decode
from asr.model import CTCModel
from asr.inference.options import DecodingOptions, ModelDecoding, decoding_defaults, resolve_decoding
from asr.inference.stream import Segment, StreamEvent, TranscribeOptions, transcribe_stream, words_of
from asr.inference.windows import BATCH_WINDOWS, OVERLAP_S, WordJoiner, overlap_cut, plan_windows, windows
from asr.audio.sources import FILE_BLOCK_SECONDS, audio_info, file_blocks
from asr.text.tokenizer import Tokenizer

__all__ = [
    "PRECISIONS",
    "FileResult",
    "Recognizer",
    "Transcript",
    "TranscribeOptions",
    "collect",
    "join_segments",
    "load_model",
]
GROUP_SECONDS = 300.0  # short files read ahead and decoded together (bounds memory: ~20 MB of samples)
GROUP_FILES = 64
READ_SECONDS = 5.0  # block size of reads that need no resampling (the same samples as any size, fewer calls)


class Recognizer:
    """Audio in, :class:`Transcript` out. ``model``: a :class:`~asr.model.CTCModel` (run on
    ``device`` at ``precision``, see :mod:`asr.inference.torch_backend`) or any other
    :class:`~asr.inference.acoustic.AcousticModel` (an ONNX directory's: ``device`` and
    ``precision`` were chosen when it was loaded)."""

    def __init__(
        self,
        recipe: RecipeConfig,
        tokenizer: Tokenizer,
        model: CTCModel | AcousticModel,
        device: str = "cpu",
        precision: str = "32",
        decoding: ModelDecoding | None = None,
    ):
        self.recipe = recipe
        self.tokenizer = tokenizer
        if isinstance(model, CTCModel):
            self.acoustic: AcousticModel = TorchAcoustic(model, device, precision)
            self.model = self.acoustic.model  # what runs (int8: a quantized copy), for forward hooks
        else:  # another backend (an ONNX directory's): no torch module behind it to hook
            self.acoustic = self.model = model
        self.device, self.precision = self.acoustic.device, self.acoustic.precision
        self.decoding = decoding  # the model's tuned decoding (its decoding.json); None: greedy by default
        self._beams: dict = {}  # (beam width, DecodingOptions) -> CTCBeamDecoder, built once each

    @property
    def sample_rate(self) -> int:
        return self.recipe.features.sample_rate

    @property
    def frame_shift(self) -> float:
        """Seconds per output frame (``chunk_ms`` must be a multiple of it)."""
        return self.acoustic.frame_shift

    def stream(
        self, blocks: Iterable[torch.Tensor], options: TranscribeOptions = TranscribeOptions(), encode_chunk=None
    ) -> Iterator[StreamEvent]:
        """(N_i,) sample blocks at :attr:`sample_rate` -> partial and final events. ``encode_chunk``
        replaces the chunks' :meth:`~asr.inference.acoustic.AcousticModel.chunk_log_probs`
        (the server's cross-stream batcher)."""
        return self._stream(self.acoustic, blocks, options, encode_chunk)

    def _stream(self, acoustic: AcousticModel, blocks, options: TranscribeOptions, encode_chunk=None):
        return transcribe_stream(acoustic, self.tokenizer, blocks, options, self.beam_search(options), encode_chunk)

    def decoding_plan(self, options: TranscribeOptions) -> tuple[int, DecodingOptions | None]:
        """(beam width, what the search fuses; None = greedy) for ``options`` on this model:
        :func:`asr.inference.options.resolve_decoding` with the model's ``decoding.json``."""
        return resolve_decoding(self.decoding, options)

    def beam_search(self, options: TranscribeOptions):
        """The :class:`asr.decoding.ctc_beam.CTCBeamDecoder` for ``options`` (built once per
        plan, the LM loaded then), None for greedy."""
        key = self.decoding_plan(options)
        if key[1] is None:
            return None
        if key not in self._beams:
            from asr.decoding.ctc_beam import CTCBeamDecoder  # flashlight-text: only the beam path needs it

            self._beams[key] = CTCBeamDecoder(self.tokenizer, *key)
        return self._beams[key]

    def live_note(self, options: TranscribeOptions) -> str | None:
        """One line for a person who streams (``options.chunk_ms``) with a model that was not
        trained on attention chunks (``model.chunk_train_prob`` 0), else None."""
        if not options.chunk_ms or self.recipe.model.chunk_train_prob > 0:
            return None
        finals = "final results come from a full-context second pass" if options.rescore else "so are final results"
        return f"note: this model was not trained on attention chunks: partial results are rough; {finals}"

    def stream_file(self, path: str | Path, options: TranscribeOptions = TranscribeOptions()) -> Iterator[StreamEvent]:
        """Read ``path`` block by block -> events; :class:`asr.audio.AudioError` on bad input
        (raised after the events of the audio before the fault)."""
        return self.stream(file_blocks(path, self.sample_rate), options)

    def transcribe(
        self,
        audio: str | Path | torch.Tensor,
        options: TranscribeOptions = TranscribeOptions(),
        trace: bool = True,
        decoding: DecodingOptions | None = None,
        trace_seconds: float = TRACE_SECONDS,
    ) -> Transcript:
        """A file (any length, read in blocks) or an (N,) waveform -> :class:`Transcript`.

        With ``trace`` the transcript keeps what its pictures need (``result.show()``,
        ``result.save(png)``; the first ``trace_seconds``, from this same forward pass). ``decoding``
        (LM, lexicon, hotwords) replaces ``options.decoding``; see
        :func:`asr.inference.options.resolve_decoding` for what it adds to the model's own."""
        if decoding is not None:
            options = replace(options, decoding=decoding)

        recorder = Recorder(self.acoustic, trace_seconds) if trace else None
        acoustic = recorder.acoustic if trace else self.acoustic  # what the model computes, seen on its way
        if isinstance(audio, torch.Tensor):
            blocks, duration = [audio], audio.numel() / self.sample_rate
        else:
            info = audio_info(audio)
            blocks, duration = file_blocks(audio, self.sample_rate), info.frames / info.samplerate
        with recorder if trace else contextlib.nullcontext():
            result = collect(self._stream(acoustic, blocks, options), duration)
        return replace(result, trace=recorder.trace(self.tokenizer)) if trace else result

    @torch.inference_mode()
    def transcribe_batch(
        self,
        waves: list[torch.Tensor],
        options: TranscribeOptions = TranscribeOptions(),
        max_batch_seconds: float = 120.0,
    ) -> list[Transcript]:
        """(N_i,) waveforms, each one segment (no longer than ``options.max_segment_s``)
        -> transcripts, decoded in padded batches of similar length.

        With ``options.chunk_ms`` and ``rescore`` off the batch uses the chunk attention mask,
        which gives the same result as streaming each waveform chunk by chunk; with ``rescore``
        (the default) a streamed final result is the full-context one, and so is this.
        """
        durations = [w.numel() / self.sample_rate for w in waves]
        results: list[Transcript | None] = [None] * len(waves)
        for i, log_probs, energy in self._posteriors(waves, options, max_batch_seconds):
            results[i] = self._decode_one(log_probs, energy, durations[i], options)
        return results

    @torch.inference_mode()
    def log_probs(
        self,
        waves: list[torch.Tensor],
        options: TranscribeOptions = TranscribeOptions(),
        max_batch_seconds: float = 120.0,
    ) -> list[torch.Tensor]:
        """(N_i,) waveforms -> their (T'_i, V) CTC log-probs, in padded batches: to decode the
        same posteriors several ways (:meth:`decode_text`; evaluation, tuning, benchmarks)."""
        out: list[torch.Tensor | None] = [None] * len(waves)
        for i, log_probs, _ in self._posteriors(waves, options, max_batch_seconds):
            out[i] = log_probs
        return out

    def decode_text(self, log_probs: torch.Tensor, options: TranscribeOptions = TranscribeOptions()) -> str:
        """(T', V) log-probs -> text, greedy or by the beam search ``options`` ask for."""
        beam = self.beam_search(options)
        tokens = beam.decode(log_probs) if beam else greedy_decode(log_probs[None], torch.tensor([len(log_probs)]))[0]
        return self.tokenizer.decode(tokens)

    def _posteriors(self, waves: list[torch.Tensor], options: TranscribeOptions, max_batch_seconds: float):
        """-> (index, (T', V) log-probs, (rate T',) feature-frame loudness) per waveform, in
        padded batches of similar length."""
        shortest = self.acoustic.min_samples()
        waves = [w if w.numel() >= shortest else F.pad(w, (0, shortest - w.numel())) for w in waves]
        order = sorted(range(len(waves)), key=lambda i: waves[i].numel())
        chunk = options.chunk_frames(self.frame_shift)
        if options.rescore:
            chunk = 0  # two passes: a final result is the full-context one
        start = 0
        while start < len(order):
            end = start + 1  # grow the batch while its padded size fits
            while (
                end < len(order)
                and waves[order[end]].numel() * (end - start + 1) <= max_batch_seconds * self.sample_rate
            ):
                end += 1
            group = order[start:end]
            padded, lengths = pad_1d([waves[i] for i in group], torch.float32)
            log_probs, out_lens, energy = self._log_probs(padded, lengths, chunk, options.left_chunks)
            rate = self.acoustic.subsampling_rate  # feature frames per output frame
            for i, lp, n, db in zip(group, log_probs, out_lens.tolist(), energy):
                yield i, lp[:n], db[: rate * n]
            start = end

    def _log_probs(self, waves, lengths, chunk: int, left_chunks: int):
        """(B, N), (B,) -> (B, T', V) log-probs, (B,) frame counts, (B, T) feature-frame
        loudness in dB, all on the CPU."""
        feats, feat_lens = self.acoustic.log_mel(waves, lengths)  # (B, T, F)
        log_probs, lens = self.acoustic.log_probs(feats, feat_lens, chunk, left_chunks)
        return log_probs, lens.cpu(), loudness_db(feats).cpu()

    def _decode_one(
        self, log_probs: torch.Tensor, energy: torch.Tensor, duration: float, options, offset: float = 0.0
    ) -> Transcript:
        """(T', V) log-probs, (rate T',) feature-frame loudness -> one-segment transcript;
        ``offset``: the time of frame 0 in seconds (a window's start in its file)."""
        beam = self.beam_search(options)
        if beam is not None:
            tokens = beam.decode(log_probs)
        else:
            tokens = greedy_decode(log_probs[None], torch.tensor([log_probs.shape[0]]))[0]
        frame_shift = self.frame_shift
        words = words_of(self.acoustic, self.tokenizer, log_probs, tokens, energy, options, offset)
        text = self.tokenizer.decode(tokens)
        segment = Segment(round(offset, 3), round(offset + log_probs.shape[0] * frame_shift, 3), text, words)
        return Transcript(text, duration, words, (segment,))

    def transcribe_files(
        self,
        paths: Iterable[str | Path],
        options: TranscribeOptions = TranscribeOptions(),
        max_batch_seconds: float = 120.0,
    ) -> Iterator[FileResult]:
        """Transcribe files in order -> one :class:`FileResult` each, as soon as it is ready.

        Files no longer than ``options.max_segment_s`` are read (block by block) into
        groups and decoded in padded batches. Longer ones are read as overlapping windows of
        at most ``max_segment_s``, decoded in padded batches and joined by word times
        (:mod:`asr.inference.windows`; full context) or streamed (``chunk_ms``), so a file
        of any length takes bounded memory. A file that fails part-way keeps what was read of it.
        """
        group: list[tuple[Path, torch.Tensor, str | None]] = []
        for path in map(Path, paths):
            try:
                info = audio_info(path)
            except AudioError as err:
                yield from self._flush_group(group, options, max_batch_seconds)
                yield FileResult(path, None, str(err))
                continue
            duration = info.frames / info.samplerate
            if duration > options.max_segment_s:
                yield from self._flush_group(group, options, max_batch_seconds)
                if options.chunk_ms:
                    yield self._stream_one(path, options, duration)
                else:
                    yield self._window_one(path, options, duration, max_batch_seconds)
                continue
            group.append(self._read_short(path, info.samplerate))
            if len(group) >= GROUP_FILES or sum(w.numel() for _, w, _ in group) > GROUP_SECONDS * self.sample_rate:
                yield from self._flush_group(group, options, max_batch_seconds)
        yield from self._flush_group(group, options, max_batch_seconds)

    def _read_short(self, path: Path, rate: int) -> tuple[Path, torch.Tensor, str | None]:
        blocks, error = [], None
        # resampled blocks differ from the whole signal's in the last bit: keep their size there
        seconds = READ_SECONDS if rate == self.sample_rate else FILE_BLOCK_SECONDS
        try:
            for block in file_blocks(path, self.sample_rate, seconds):
                blocks.append(block)
        except AudioError as err:
            error = str(err)
        return path, torch.cat(blocks) if blocks else torch.zeros(0), error

    def _flush_group(self, group: list, options: TranscribeOptions, max_batch_seconds: float) -> Iterator[FileResult]:
        if not group:
            return
        transcripts = iter(self.transcribe_batch([w for _, w, _ in group if w.numel()], options, max_batch_seconds))
        for path, wave, error in group:
            yield FileResult(path, next(transcripts) if wave.numel() else None, error)
        group.clear()

    def _stream_one(self, path: Path, options: TranscribeOptions, duration: float) -> FileResult:
        segments, error = [], None
        try:
            for event in self.stream_file(path, options):
                if event.final:
                    segments.append(event.segment)
        except AudioError as err:
            error = str(err)
        return FileResult(path, join_segments(segments, None if error else duration), error)

    def _window_one(self, path: Path, options: TranscribeOptions, duration: float, max_batch_seconds: float):
        """A long file as overlapping full-context windows in padded batches -> :class:`FileResult`."""
        rate, shift = self.sample_rate, self.frame_shift
        plan = plan_windows(
            math.ceil(duration * rate), int(options.max_segment_s * rate), int(OVERLAP_S * rate), round(shift * rate)
        )
        per_batch = max(1, min(BATCH_WINDOWS, int(max_batch_seconds * rate) // plan.length))
        joiner, batch, error = WordJoiner(), [], None
        try:
            for window in windows(file_blocks(path, rate, READ_SECONDS), plan):
                batch.append(window)
                if window[2] or len(batch) >= per_batch:  # the last window, or a full batch
                    self._decode_windows(batch, plan, joiner, options, max_batch_seconds)
                    batch = []
        except AudioError as err:
            error = str(err)
        self._decode_windows(batch, plan, joiner, options, max_batch_seconds)
        return FileResult(path, join_segments(joiner.segments(), None if error else duration), error)

    @torch.inference_mode()
    def _decode_windows(self, batch: list, plan, joiner: WordJoiner, options, max_batch_seconds: float) -> None:
        """(first sample, (N,) samples, is the last) windows, in order -> their words, into ``joiner``."""
        rate, hop = self.sample_rate, self.recipe.features.hop_length
        found = {i: (lp, db) for i, lp, db in self._posteriors([w for _, w, _ in batch], options, max_batch_seconds)}
        for i, (start, wave, last) in enumerate(batch):
            log_probs, energy = found[i]  # (T', V), (rate T',) feature-frame loudness
            window = self._decode_one(log_probs, energy, wave.numel() / rate, options, start / rate)
            right = None if last else start / rate + overlap_cut(energy, plan, hop, rate)
            joiner.add(window.words, window.segments[0].end, right)

    def transcribe_waves(
        self,
        waves: list[torch.Tensor],
        max_batch_seconds: float = 120.0,
        options: TranscribeOptions = TranscribeOptions(),
    ) -> list[str]:
        """(N_i,) 16 kHz waveforms -> texts, full context, the model's default decoding, batched by similar length."""
        return [t.text for t in self.transcribe_batch(waves, options, max_batch_seconds)]


def load_model(path: str | Path, device: str = "cpu", precision: str = "32") -> Recognizer:
    """Rebuild a model from a self-describing checkpoint (``model.pt`` or ``*.ckpt``);
    ``precision`` is one of :data:`PRECISIONS` (see the module docstring). A directory is
    an exported ONNX model, run by onnxruntime (:mod:`asr.inference.onnx_backend`)."""
    if Path(path).is_dir():
        from asr.inference.onnx_backend import load_onnx  # numpy and onnxruntime: only this path needs them

        recipe, tokenizer, model = load_onnx(path, device, precision)
    else:
        recipe, tokenizer, model = load_parts(path)
    return Recognizer(recipe, tokenizer, model, device, precision, decoding_defaults(path))

"""Inference: a loaded model that turns audio into text with word timings.

    from asr import load_model
    result = load_model("exp/demo/model.pt").transcribe("a.wav")
    print(result.text, [(w.text, w.start, w.end) for w in result.words])

Files are read block by block (:mod:`asr.audio.sources`), so memory stays bounded for any
length. :meth:`Recognizer.transcribe` runs the streaming generator
(:func:`asr.inference.stream.transcribe_stream`); :meth:`Recognizer.transcribe_files`
decodes short files in padded batches (:meth:`Recognizer.transcribe_batch`) and, with full
context, long ones as overlapping windows in padded batches (:mod:`asr.inference.windows`).

``precision`` (:data:`PRECISIONS`): "32" runs the model in float32; "bf16" runs the
subsampling, encoder and CTC head under bfloat16 autocast; "int8" quantizes the encoder's
and head's ``nn.Linear`` layers dynamically to int8 once at load (CPU only; not the
subsampling's, which streaming calls once per audio block: a scale per call would make
the text depend on how the audio was cut). Log-mel features and log-probs are float32 at
every precision. Dynamic int8 scales activations per call, so its results vary slightly
with the chunk (``chunk_ms``) and with a padded batch's other utterances.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Iterator

import torch
from torch.nn import functional as F

from asr.decoding.alignment import Word
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

if TYPE_CHECKING:
    from asr.inference.trace import Trace

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
PRECISIONS = ("32", "bf16", "int8")  # float32, bfloat16 autocast, dynamic int8 Linear layers (CPU)
GROUP_SECONDS = 300.0  # short files read ahead and decoded together (bounds memory: ~20 MB of samples)
GROUP_FILES = 64
READ_SECONDS = 5.0  # block size of reads that need no resampling (the same samples as any size, fewer calls)


@dataclass(frozen=True)
class Transcript:
    text: str
    duration: float  # seconds of audio
    words: tuple[Word, ...] = ()  # timed words, in order
    segments: tuple[Segment, ...] = ()  # the pieces long audio was cut into
    # what the pictures need (first minute; Recognizer.transcribe only): asr.inference.trace
    trace: Trace | None = field(default=None, repr=False, compare=False)

    def show(self, **options):
        """Waveform, words, log-mel and CTC posteriors in a window or notebook (needs matplotlib)."""
        from asr.plot.transcript import show_transcript

        return show_transcript(self, **options)

    def save(self, path: str | Path, **options) -> Path:
        """The same figure as a PNG file."""
        from asr.plot.transcript import plot_transcript

        return plot_transcript(self, path, **options)


@dataclass(frozen=True)
class FileResult:
    path: Path
    transcript: Transcript | None  # None when no audio could be read
    error: str | None = None  # one line naming the file; ``transcript`` then holds the audio before the fault


def join_segments(segments: Iterable[Segment], duration: float | None = None) -> Transcript:
    """Finished segments -> one :class:`Transcript`; ``duration`` defaults to the last segment's end."""
    segments = tuple(segments)
    text = " ".join(s.text for s in segments if s.text)
    words = tuple(w for s in segments for w in s.words)
    if duration is None:
        duration = segments[-1].end if segments else 0.0
    return Transcript(text, duration, words, segments)


def collect(events: Iterable[StreamEvent], duration: float | None = None) -> Transcript:
    """The final events of a stream -> one :class:`Transcript` (partial events are skipped)."""
    return join_segments((e.segment for e in events if e.final), duration)


def quantize_int8(model: CTCModel) -> CTCModel:
    """A copy of ``model`` whose encoder and head ``nn.Linear`` layers are dynamically
    quantized to int8 (CPU). Not the front end's: streaming calls it once per audio block,
    and a scale per call would make the text depend on how the audio was cut into blocks."""
    from torch.ao.nn.quantized.dynamic import Linear as Int8Linear

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*deprecated")  # torch.ao.quantization's notices
        return torch.ao.quantization.quantize_dynamic(
            model, {"encoder", "head"}, dtype=torch.qint8, mapping={torch.nn.Linear: Int8Linear}
        )


class Recognizer:
    def __init__(
        self,
        recipe: RecipeConfig,
        tokenizer: Tokenizer,
        model: CTCModel,
        device: str = "cpu",
        precision: str = "32",
        decoding: ModelDecoding | None = None,
    ):
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        self.recipe = recipe
        self.tokenizer = tokenizer
        self.device = torch.device(device)
        if precision == "int8" and self.device.type != "cpu":
            raise ValueError(f"precision int8 runs on the CPU only, not on {device}")
        self.precision = precision
        self.decoding = decoding  # the model's tuned decoding (its decoding.json); None: greedy by default
        self._beams: dict = {}  # (beam width, DecodingOptions) -> CTCBeamDecoder, built once each
        self.model = model.to(self.device).eval()
        if precision == "int8":
            self.model = quantize_int8(self.model)  # a copy: ``model`` stays float32

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context every subsampling, encoder and head call runs in: bf16 autocast for precision
        "bf16", nothing otherwise."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @property
    def sample_rate(self) -> int:
        return self.recipe.features.sample_rate

    def stream(
        self, blocks: Iterable[torch.Tensor], options: TranscribeOptions = TranscribeOptions(), encode_chunk=None
    ) -> Iterator[StreamEvent]:
        """(N_i,) sample blocks at :attr:`sample_rate` -> partial and final events. ``encode_chunk``
        replaces the chunk's encoder + head call (the server's cross-stream batcher)."""
        beam = self.beam_search(options)
        return transcribe_stream(self.model, self.tokenizer, blocks, options, self.autocast, beam, encode_chunk)

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
    ) -> Transcript:
        """A file (any length, read in blocks) or an (N,) waveform -> :class:`Transcript`.

        With ``trace`` the transcript keeps what its pictures need (``result.show()``,
        ``result.save(png)``; the first minute, from this same forward pass). ``decoding``
        (LM, lexicon, hotwords) replaces ``options.decoding``; see
        :func:`asr.inference.options.resolve_decoding` for what it adds to the model's own."""
        from asr.inference.trace import Recorder  # imports no matplotlib

        if decoding is not None:
            options = replace(options, decoding=decoding)

        with Recorder(self.model) if trace else contextlib.nullcontext() as recorder:
            if isinstance(audio, torch.Tensor):
                result = collect(self.stream([audio], options), audio.numel() / self.sample_rate)
            else:
                info = audio_info(audio)
                result = collect(self.stream_file(audio, options), info.frames / info.samplerate)
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
        shortest = self.model.min_samples()
        waves = [w if w.numel() >= shortest else F.pad(w, (0, shortest - w.numel())) for w in waves]
        order = sorted(range(len(waves)), key=lambda i: waves[i].numel())
        chunk = options.chunk_frames(self.model.frame_shift)
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
            log_probs, out_lens, energy = self._log_probs(
                padded.to(self.device), lengths.to(self.device), chunk, options.left_chunks
            )
            for i, lp, n, db in zip(group, log_probs, out_lens.tolist(), energy):
                rate = self.model.subsampling.subsampling_rate  # feature frames per output frame
                yield i, lp[:n], db[: rate * n]
            start = end

    def _log_probs(self, waves, lengths, chunk: int, left_chunks: int):
        """(B, N), (B,) -> (B, T', V) log-probs, (B,) frame counts, (B, T) feature-frame
        loudness in dB, all on the CPU."""
        model = self.model
        feats, feat_lens = model.features(waves, lengths)  # (B, T, F)
        energy = torch.logsumexp(feats, dim=-1) * (10 / math.log(10))  # (B, T) total mel power, dB
        with self.autocast():
            x, lens = model.subsampling(model.cmvn(feats), feat_lens)  # (B, T', D)
            x = model.encoder(x, lens, chunk_frames=chunk, left_chunks=left_chunks)
            logits = model.head(x)
        return logits.float().log_softmax(dim=-1).cpu(), lens.cpu(), energy.cpu()

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
        frame_shift = self.model.frame_shift
        words = words_of(self.model, self.tokenizer, log_probs, tokens, energy, options, offset)
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
        rate, shift = self.sample_rate, self.model.frame_shift
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
        self, waves: list[torch.Tensor], max_batch_seconds: float = 120.0, options: TranscribeOptions = TranscribeOptions()
    ) -> list[str]:
        """(N_i,) 16 kHz waveforms -> texts, full context, the model's default decoding, batched by similar length."""
        return [t.text for t in self.transcribe_batch(waves, options, max_batch_seconds)]


def load_model(path: str | Path, device: str = "cpu", precision: str = "32") -> Recognizer:
    """Rebuild a model from a self-describing checkpoint (``model.pt`` or ``*.ckpt``);
    ``precision`` is one of :data:`PRECISIONS` (see the module docstring). A directory is
    an exported ONNX model, run by onnxruntime (:mod:`asr.inference.onnx_backend`)."""
    if Path(path).is_dir():
        from asr.inference.onnx_backend import load_onnx

        recognizer = load_onnx(path, device, precision)
        recognizer.decoding = decoding_defaults(path)
        return recognizer
    recipe, tokenizer, model = load_parts(path)
    return Recognizer(recipe, tokenizer, model, device, precision, decoding_defaults(path))

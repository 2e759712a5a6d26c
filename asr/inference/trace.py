"""What one transcription computed, kept for pictures: the waveform the model heard, its
log-mel features, the CTC log-probs and every attention layer's input.

    result = recognizer.transcribe("a.wav")          # trace=True: result.trace
    result, trace = record(recognizer, "a.wav")      # the same, as a pair

:class:`Recorder` sees what passes through the model's
:class:`~asr.inference.acoustic.AcousticModel` during that one transcription (the file is
not read again and the model does not run again), with any backend. Attention inputs are
kept by forward hooks on the model's ``attention_blocks`` (torch; an ONNX model has none to
hook, so its trace has no attention); weights are derived from them only when a picture
asks (:mod:`asr.plot.attention`). Only the first ``max_seconds`` are kept, so memory stays
bounded on long audio. Nothing here needs matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
from torch.utils.hooks import RemovableHandle

from asr.inference.acoustic import AcousticModel, Cache
from asr.inference.options import TranscribeOptions
from asr.model.encoder import SelfAttention
from asr.text.tokenizer import Tokenizer

@dataclass(frozen=True)
class AttentionCall:
    """What one :class:`SelfAttention` call saw."""

    x: torch.Tensor  # (B, T', D) the layer's normalized input, LN(x)
    mask: torch.Tensor  # (B, 1, 1|T', T') bool, True where query t may attend to key s


class AttentionCapture:
    """Forward hooks on every attention block of ``blocks`` (in layer order) while inside ``with``.

    ``calls[l][i]`` is layer ``l``'s :class:`AttentionCall` in the ``i``-th encoder pass
    (one per segment when transcribing). Passes starting after ``max_frames`` frames have
    been kept are skipped, so memory stays bounded on long audio.
    """

    def __init__(self, blocks: Sequence[SelfAttention], max_frames: int | None = None):
        self.modules = list(blocks)
        self.max_frames = max_frames
        self.calls: list[list[AttentionCall]] = [[] for _ in self.modules]
        self._handles: list[RemovableHandle] = []

    def _hook(self, layer: int):
        def keep(module: SelfAttention, args: tuple, kwargs: dict, output: torch.Tensor) -> None:
            kept = self.calls[layer]
            # every layer sees the same passes, so every layer makes the same decision
            if self.max_frames is not None and sum(c.x.shape[1] for c in kept) >= self.max_frames:
                return
            x = args[0] if args else kwargs["x"]
            mask = args[1] if len(args) > 1 else kwargs["mask"]
            kept.append(AttentionCall(x.detach(), mask.detach()))

        return keep

    def __enter__(self) -> "AttentionCapture":
        for i, module in enumerate(self.modules):
            self._handles.append(module.register_forward_hook(self._hook(i), with_kwargs=True))
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


@torch.inference_mode()
def attention_weights(attn: SelfAttention, call: AttentionCall) -> torch.Tensor:
    """The softmax weights ``attn`` used in ``call``: -> (B, H, T', T') float32 on the CPU.

    Row ``[b, h, t]`` is query frame ``t``'s distribution over key frames: it sums to 1
    and is 0 on keys the mask hides (padding, and the future in chunked attention).
    """
    return attn.weights(call.x, call.mask).float().cpu()


TRACE_SECONDS = 60.0  # default recorded length: longer figures are unreadable anyway


@dataclass(frozen=True)
class Trace:
    """The recorded start of one utterance; times in seconds from the start of the audio."""

    wave: torch.Tensor  # (N,) float32 samples the features were computed from
    sample_rate: int
    logmel: torch.Tensor  # (T, F) log-mel features before normalization, ``hop`` apart
    hop: float  # seconds between log-mel frames (frame t reads [t * hop, t * hop + window))
    window: float  # seconds each log-mel frame reads
    log_probs: torch.Tensor  # (T', V) CTC log-probs, exactly those the final results were decoded from
    frame_shift: float  # seconds per encoder frame (frame t' starts at t' * frame_shift)
    tokenizer: Tokenizer
    blocks: tuple[SelfAttention, ...]  # each layer's attention block: turns ``attention`` into weights
    attention: tuple[tuple[AttentionCall, ...], ...]  # [layer][segment]; empty without full-context passes

    @property
    def seconds(self) -> float:
        """Length of the recorded audio."""
        return self.wave.numel() / self.sample_rate


class Recorder:
    """What passes through ``acoustic`` while inside ``with``; :meth:`trace` -> what it saw.

    Transcribe through :attr:`acoustic` (an :class:`AcousticModel` that hands every call on
    and keeps a copy of its first minute), one utterance at a time as
    :meth:`asr.inference.Recognizer.transcribe` does: a padded batch of several utterances
    cannot be told apart and makes :meth:`trace` fail. The log-probs kept are those of the
    full-context passes when there were any (a segment's final pass), else the chunks'.
    """

    def __init__(self, acoustic: AcousticModel, max_seconds: float = TRACE_SECONDS, attention: bool = True):
        self.model = acoustic
        self.acoustic = _Recording(acoustic, self)
        cfg = acoustic.feature_config
        self.sample_rate, self.hop_samples = cfg.sample_rate, cfg.hop_length
        self.window = cfg.n_fft / cfg.sample_rate
        self.max_samples = round(max_seconds * cfg.sample_rate)
        self.max_feats = round(max_seconds * cfg.sample_rate / cfg.hop_length)
        self.max_frames = round(max_seconds / acoustic.frame_shift)
        blocks = acoustic.attention_blocks
        self.capture = AttentionCapture(blocks, self.max_frames) if attention and blocks else None
        self.waves: list[torch.Tensor] = []  # (n_i * hop,) new samples of each front-end call
        self.tail = torch.zeros(0)  # samples the last call's frames read beyond those
        self.feats: list[torch.Tensor] = []  # (n_i, F)
        self.full: list[torch.Tensor] = []  # (T'_i, V) of each full-context pass
        self.chunks: list[torch.Tensor] = []  # (C_i, V) of each chunk
        self.batch = 1  # largest batch seen

    def __enter__(self) -> "Recorder":
        if self.capture is not None:
            self.capture.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.capture is not None:
            self.capture.__exit__(*exc)

    def on_log_mel(self, waves: torch.Tensor, feats: torch.Tensor) -> None:
        """(B, N) samples -> (B, n, F) log-mel. The streaming front end passes each sample
        once at the start of a call; calls overlap by ``n_fft - hop`` samples."""
        self.batch = max(self.batch, feats.shape[0])
        kept = sum(f.shape[0] for f in self.feats)
        if feats.shape[0] != 1 or kept >= self.max_feats:
            return
        n = feats.shape[1]
        self.feats.append(feats[0].detach().float().cpu())
        self.waves.append(waves[0, : n * self.hop_samples].detach().float().cpu())
        self.tail = waves[0, n * self.hop_samples : (n - 1) * self.hop_samples + round(self.window * self.sample_rate)]
        self.tail = self.tail.detach().float().cpu()

    def on_log_probs(self, log_probs: torch.Tensor, full: bool) -> None:
        """(B, T', V) log-probs of a full-context pass (``full``) or of a chunk."""
        self.batch = max(self.batch, log_probs.shape[0])
        kept = self.full if full else self.chunks
        if log_probs.shape[0] == 1 and sum(p.shape[0] for p in kept) < self.max_frames:
            kept.append(log_probs[0])

    def trace(self, tokenizer: Tokenizer) -> Trace:
        """-> the :class:`Trace` of the utterance transcribed inside ``with``."""
        if self.batch > 1:
            raise ValueError(f"recorded a batch of {self.batch} utterances: trace one utterance at a time")
        log_probs = self.full or self.chunks
        if not log_probs:
            raise ValueError("nothing was recorded: transcribe through 'Recorder(acoustic).acoustic'")
        wave = torch.cat([*self.waves, self.tail])[: self.max_samples]
        calls = tuple(tuple(c) for c in self.capture.calls) if self.capture is not None else ()
        return Trace(
            wave=wave,
            sample_rate=self.sample_rate,
            logmel=torch.cat(self.feats)[: self.max_feats],
            hop=self.hop_samples / self.sample_rate,
            window=self.window,
            log_probs=torch.cat(log_probs)[: self.max_frames],
            frame_shift=self.model.frame_shift,
            tokenizer=tokenizer,
            blocks=tuple(self.model.attention_blocks),
            attention=calls if calls and calls[0] else (),
        )


class _Recording:
    """An :class:`AcousticModel` that hands every call to ``acoustic`` and shows the
    recorder the log-mel features and log-probs that come back."""

    def __init__(self, acoustic: AcousticModel, recorder: Recorder):
        self.inner, self.recorder = acoustic, recorder
        for name in ("backend", "precision", "feature_config", "subsampling_rate", "frame_shift", "d_model", "device",
                     "attention_blocks", "min_samples", "output_lengths", "frames"):  # fmt: skip
            setattr(self, name, getattr(acoustic, name))

    def log_mel(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats, feat_lens = self.inner.log_mel(waves, lengths)
        self.recorder.on_log_mel(waves, feats)
        return feats, feat_lens

    def log_probs(self, log_mel, lengths, chunk_frames: int = 0, left_chunks: int = -1):
        log_probs, out_lens = self.inner.log_probs(log_mel, lengths, chunk_frames, left_chunks)
        self.recorder.on_log_probs(log_probs, full=not chunk_frames)
        return log_probs, out_lens

    def segment_log_probs(self, frames: torch.Tensor) -> torch.Tensor:
        log_probs = self.inner.segment_log_probs(frames)
        self.recorder.on_log_probs(log_probs[None], full=True)
        return log_probs

    def chunk_log_probs(self, frames: torch.Tensor, offsets: Sequence[int], caches: Sequence[Cache | None], keep: int):
        log_probs, caches = self.inner.chunk_log_probs(frames, offsets, caches, keep)
        self.recorder.on_log_probs(log_probs, full=False)
        return log_probs, caches


def record(recognizer, audio, options=None, max_seconds: float = TRACE_SECONDS):
    """Transcribe ``audio`` (a file or an (N,) waveform) with ``recognizer`` while
    recording -> (:class:`~asr.inference.Transcript`, :class:`Trace`)."""
    result = recognizer.transcribe(audio, options or TranscribeOptions(), trace=True, trace_seconds=max_seconds)
    return result, result.trace


def trace_of(result, trace: Trace | None = None) -> Trace:
    """``trace``, or else the one a transcript carries (``result.trace``)."""
    trace = trace if trace is not None else getattr(result, "trace", None)
    if trace is None:
        raise ValueError("no trace of this transcript: record one with asr.inference.trace.record (or Recorder)")
    return trace

"""What one transcription computed, kept for pictures: the waveform the model heard, its
log-mel features, the CTC log-probs and every attention layer's input.

    with Recorder(recognizer.model) as recorder:
        result = recognizer.transcribe("a.wav")
    trace = recorder.trace(recognizer.tokenizer)

Forward hooks on the model record during that one transcription: the file is not read
again and the model does not run again. Attention weights are derived from the recorded
inputs only when a picture asks for them (:mod:`asr.plot.attention`). Only the first
``max_seconds`` are kept, so memory stays bounded on long audio. Nothing here needs
matplotlib.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch.utils.hooks import RemovableHandle

from asr.model import CTCModel
from asr.model.encoder import SelfAttention, TransformerEncoder
from asr.text.tokenizer import Tokenizer

@dataclass(frozen=True)
class AttentionCall:
    """What one :class:`SelfAttention` call saw."""

    x: torch.Tensor  # (B, T', D) the layer's normalized input, LN(x)
    mask: torch.Tensor  # (B, 1, 1|T', T') bool, True where query t may attend to key s


class AttentionCapture:
    """Forward hooks on every attention block of ``encoder`` while inside ``with``.

    ``calls[l][i]`` is layer ``l``'s :class:`AttentionCall` in the ``i``-th encoder pass
    (one per segment when transcribing). Passes starting after ``max_frames`` frames have
    been kept are skipped, so memory stays bounded on long audio.
    """

    def __init__(self, encoder: TransformerEncoder, max_frames: int | None = None):
        self.modules = [layer.attn for layer in encoder.layers]
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
    log_probs: torch.Tensor  # (T', V) CTC log-probs, exactly those the decoder saw
    frame_shift: float  # seconds per encoder frame (frame t' starts at t' * frame_shift)
    tokenizer: Tokenizer
    model: CTCModel  # its attention blocks turn ``attention`` into weights
    attention: tuple[tuple[AttentionCall, ...], ...]  # [layer][segment]; empty in chunked streaming

    @property
    def seconds(self) -> float:
        """Length of the recorded audio."""
        return self.wave.numel() / self.sample_rate


class Recorder:
    """Forward hooks on ``model`` while inside ``with``; :meth:`trace` -> what they saw.

    Records utterances one at a time (:meth:`asr.inference.Recognizer.transcribe`, whose
    streaming front end calls the model with a batch of one); a padded batch of several
    utterances cannot be told apart and makes :meth:`trace` fail.
    """

    def __init__(self, model: CTCModel, max_seconds: float = TRACE_SECONDS, attention: bool = True):
        self.model = model
        cfg = model.features.config
        self.sample_rate, self.hop_samples = cfg.sample_rate, cfg.hop_length
        self.window = cfg.n_fft / cfg.sample_rate
        self.max_samples = round(max_seconds * cfg.sample_rate)
        self.max_feats = round(max_seconds * cfg.sample_rate / cfg.hop_length)
        self.max_frames = round(max_seconds / model.frame_shift)
        self.capture = AttentionCapture(model.encoder, self.max_frames) if attention else None
        self.waves: list[torch.Tensor] = []  # (n_i * hop,) new samples of each front-end call
        self.tail = torch.zeros(0)  # samples the last call's frames read beyond those
        self.feats: list[torch.Tensor] = []  # (n_i, F)
        self.log_probs: list[torch.Tensor] = []  # (C_i, V)
        self.batch = 1  # largest batch seen
        self._handles: list[RemovableHandle] = []

    def __enter__(self) -> "Recorder":
        self._handles = [
            self.model.features.register_forward_hook(self._on_features),
            self.model.head.register_forward_hook(self._on_head),
        ]
        if self.capture is not None:
            self.capture.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()
        if self.capture is not None:
            self.capture.__exit__(*exc)

    def _on_features(self, module, args: tuple, output: tuple[torch.Tensor, torch.Tensor]) -> None:
        """LogMel: (B, N) samples -> (B, n, F). The streaming front end passes each sample
        once at the start of a call; calls overlap by ``n_fft - hop`` samples."""
        waves, feats = args[0], output[0]
        self.batch = max(self.batch, feats.shape[0])
        kept = sum(f.shape[0] for f in self.feats)
        if feats.shape[0] != 1 or kept >= self.max_feats:
            return
        n = feats.shape[1]
        self.feats.append(feats[0].detach().float().cpu())
        self.waves.append(waves[0, : n * self.hop_samples].detach().float().cpu())
        self.tail = waves[0, n * self.hop_samples : (n - 1) * self.hop_samples + round(self.window * self.sample_rate)]
        self.tail = self.tail.detach().float().cpu()

    def _on_head(self, module, args: tuple, output: torch.Tensor) -> None:
        """CTC head: (B, C, D) -> (B, C, V) logits, turned into log-probs as the decoders do."""
        self.batch = max(self.batch, output.shape[0])
        if output.shape[0] != 1 or sum(p.shape[0] for p in self.log_probs) >= self.max_frames:
            return
        self.log_probs.append(output[0].detach().float().log_softmax(dim=-1).cpu())

    def trace(self, tokenizer: Tokenizer) -> Trace:
        """-> the :class:`Trace` of the utterance transcribed inside ``with``."""
        if self.batch > 1:
            raise ValueError(f"recorded a batch of {self.batch} utterances: trace one utterance at a time")
        if not self.log_probs:
            raise ValueError("nothing was recorded: transcribe inside 'with Recorder(model)'")
        wave = torch.cat([*self.waves, self.tail])[: self.max_samples]
        calls = tuple(tuple(c) for c in self.capture.calls) if self.capture is not None else ()
        return Trace(
            wave=wave,
            sample_rate=self.sample_rate,
            logmel=torch.cat(self.feats)[: self.max_feats],
            hop=self.hop_samples / self.sample_rate,
            window=self.window,
            log_probs=torch.cat(self.log_probs)[: self.max_frames],
            frame_shift=self.model.frame_shift,
            tokenizer=tokenizer,
            model=self.model,
            attention=calls if calls and calls[0] else (),
        )


def record(recognizer, audio, options=None, max_seconds: float = TRACE_SECONDS):
    """Transcribe ``audio`` (a file or an (N,) waveform) with ``recognizer`` while
    recording -> (:class:`~asr.inference.Transcript`, :class:`Trace`)."""
    from asr.inference.stream import TranscribeOptions

    with Recorder(recognizer.model, max_seconds) as recorder:
        result = recognizer.transcribe(audio, options or TranscribeOptions())
    return result, recorder.trace(recognizer.tokenizer)


def trace_of(result, trace: Trace | None = None) -> Trace:
    """``trace``, or else the one a transcript carries (``result.trace``)."""
    trace = trace if trace is not None else getattr(result, "trace", None)
    if trace is None:
        raise ValueError("no trace of this transcript: record one with asr.inference.trace.record (or Recorder)")
    return trace

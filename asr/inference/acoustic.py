"""What inference asks of an acoustic model, whatever runs it (torch or onnxruntime).

    acoustic = recognizer.acoustic
    feats, feat_lens = acoustic.log_mel(waves, lengths)              # (B, T, F), (B,)
    log_probs, out_lens = acoustic.log_probs(feats, feat_lens)       # (B, T', V), (B,)

Two ways through it:

- a padded batch of whole utterances: :meth:`AcousticModel.log_mel`, then
  :meth:`AcousticModel.log_probs` (full context, or the chunk attention mask);
- a stream: :meth:`~AcousticModel.log_mel` block by block, :meth:`~AcousticModel.frames`
  (CMVN + subsampling) as feature frames arrive, then :meth:`~AcousticModel.chunk_log_probs`
  chunk by chunk with a cache per stream, or :meth:`~AcousticModel.segment_log_probs` over a
  finished segment with full context.

Log-mel features and frames stay on :attr:`~AcousticModel.device`; log-probs always come
back float32 on the CPU. Implementations: :class:`asr.inference.torch_backend.TorchAcoustic`
(a :class:`~asr.model.CTCModel` at a precision) and
:class:`asr.inference.onnx_backend.OnnxAcoustic` (an exported directory's graphs).
"""

from __future__ import annotations

import math
from typing import Any, Protocol, Sequence

import torch

from asr.config import FeatureConfig

Cache = Any  # what one stream's encoder keeps between chunks; each backend's own, opaque to callers


class AcousticModel(Protocol):
    backend: str  # "torch" or "onnx", for people (logs, the page)
    precision: str  # what the encoder computes in: "32", "bf16" (torch), "int8"
    feature_config: FeatureConfig  # sample rate, window (n_fft), hop and mel bins of the log-mel features
    subsampling_rate: int  # feature frames per output frame
    frame_shift: float  # seconds per output frame: subsampling_rate x hop
    d_model: int  # D, the width of an encoder input frame
    device: torch.device  # where features and frames are computed
    # each encoder layer's attention module, for pictures (asr.inference.trace); () where there are none to hook
    attention_blocks: tuple

    def min_samples(self) -> int:
        """Fewest samples that give one output frame."""
        ...

    def output_lengths(self, feat_lens: torch.Tensor) -> torch.Tensor:
        """(B,) feature frame counts -> (B,) output frame counts."""
        ...

    def log_mel(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, N) samples, (B,) sample counts -> (B, T, F) log-mel (natural log, not normalized), (B,)."""
        ...

    def frames(self, log_mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) log-mel, (B,) -> (B, T', D) float32 encoder input (CMVN + subsampling), (B,)."""
        ...

    def log_probs(
        self, log_mel: torch.Tensor, lengths: torch.Tensor, chunk_frames: int = 0, left_chunks: int = -1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) log-mel of a padded batch, (B,) -> (B, T', V) log-probs, (B,) output frame
        counts: the whole model, with full context (``chunk_frames`` 0) or attention in chunks
        of ``chunk_frames`` frames seeing ``left_chunks`` earlier ones (-1: all), as streaming."""
        ...

    def segment_log_probs(self, frames: torch.Tensor) -> torch.Tensor:
        """(1, T', D) frames of one segment -> (T', V) log-probs with full attention."""
        ...

    def chunk_log_probs(
        self, frames: torch.Tensor, offsets: Sequence[int], caches: Sequence[Cache | None], keep: int
    ) -> tuple[torch.Tensor, list[Cache]]:
        """(B, C, D) one chunk of each of B streams, (B,) position of each chunk's first frame in
        its segment, (B,) each stream's cache (None at a segment's start), cached frames to keep
        (-1: all) -> (B, C, V) log-probs, (B,) new caches. Row b equals stream b's chunk alone."""
        ...


def loudness_db(log_mel: torch.Tensor) -> torch.Tensor:
    """(..., F) natural-log mel power -> (...) total mel power per frame in dB."""
    return torch.logsumexp(log_mel, dim=-1) * (10 / math.log(10))

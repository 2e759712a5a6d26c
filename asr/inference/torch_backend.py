"""A :class:`~asr.model.CTCModel` behind :class:`asr.inference.acoustic.AcousticModel`.

``precision`` (:data:`PRECISIONS`): "32" runs the model in float32; "bf16" runs the
subsampling, encoder and CTC head under bfloat16 autocast; "int8" quantizes the encoder's
and head's ``nn.Linear`` layers dynamically to int8 once at load (CPU only; not the
subsampling's, which streaming calls once per audio block: a scale per call would make
the text depend on how the audio was cut). Log-mel features and log-probs are float32 at
every precision. Dynamic int8 scales activations per call, so its results vary slightly
with the chunk and with a padded batch's other utterances.
"""

from __future__ import annotations

import contextlib
import warnings
from typing import Sequence

import torch

from asr.model import CTCModel
from asr.model.encoder import LayerCache, batch_caches, split_caches

PRECISIONS = ("32", "bf16", "int8")  # float32, bfloat16 autocast, dynamic int8 Linear layers (CPU)


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


class TorchAcoustic:
    """``model`` on ``device`` at ``precision``, in eval mode (int8: a quantized copy; the
    caller's ``model`` stays float32). :attr:`model` is what runs, for forward hooks."""

    backend = "torch"

    def __init__(self, model: CTCModel, device: str | torch.device = "cpu", precision: str = "32"):
        if precision not in PRECISIONS:
            raise ValueError(f"precision {precision!r} is not one of {', '.join(PRECISIONS)}")
        self.device = torch.device(device)
        if precision == "int8" and self.device.type != "cpu":
            raise ValueError(f"precision int8 runs on the CPU only, not on {device}")
        self.precision = precision
        self.model = model.to(self.device).eval()
        if precision == "int8":
            self.model = quantize_int8(self.model)
        self.feature_config = model.features.config
        self.subsampling_rate = model.subsampling.subsampling_rate
        self.frame_shift = model.frame_shift
        self.d_model = model.head.in_features
        self.attention_blocks = tuple(layer.attn for layer in self.model.encoder.layers)

    def _context(self) -> contextlib.AbstractContextManager:
        """Entered around every subsampling, encoder and head call: bf16 autocast for
        precision "bf16", nothing otherwise."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def min_samples(self) -> int:
        return self.model.min_samples()

    def output_lengths(self, feat_lens: torch.Tensor) -> torch.Tensor:
        return self.model.subsampling.output_lengths(feat_lens)

    @torch.inference_mode()
    def log_mel(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model.features(waves.to(self.device), lengths.to(self.device))  # (B, T, F), (B,)

    @torch.inference_mode()
    def frames(self, log_mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        feats = self.model.cmvn(log_mel)  # (B, T, F)
        with self._context():
            x, lens = self.model.subsampling(feats, lengths)  # (B, T', D)
        return x.float(), lens

    @torch.inference_mode()
    def log_probs(
        self, log_mel: torch.Tensor, lengths: torch.Tensor, chunk_frames: int = 0, left_chunks: int = -1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        m = self.model
        with self._context():
            x, lens = m.subsampling(m.cmvn(log_mel), lengths)  # (B, T', D)
            x = m.encoder(x, lens, chunk_frames=chunk_frames, left_chunks=left_chunks)
            logits = m.head(x)  # (B, T', V)
        return logits.float().log_softmax(dim=-1).cpu(), lens.cpu()

    @torch.inference_mode()
    def segment_log_probs(self, frames: torch.Tensor) -> torch.Tensor:
        lengths = torch.tensor([frames.shape[1]], device=frames.device)
        with self._context():
            logits = self.model.head(self.model.encoder(frames, lengths, chunk_frames=0))  # (1, T', V)
        return logits[0].float().log_softmax(dim=-1).cpu()

    @torch.inference_mode()
    def chunk_log_probs(
        self, frames: torch.Tensor, offsets: Sequence[int], caches: Sequence[list[LayerCache] | None], keep: int
    ) -> tuple[torch.Tensor, list[list[LayerCache]]]:
        encoder = self.model.encoder
        with self._context():
            if len(caches) == 1:  # one stream: its own cache as it is
                y, cache = encoder.forward_chunk(frames, offsets[0], caches[0], keep)
                rows = [cache]
            else:  # per-row positions and cache lengths (zeros before a shorter row's frames)
                cache, lengths = batch_caches(caches)  # (B,) cached frames per row
                y, cache = encoder.forward_chunk(frames, torch.tensor(list(offsets)), cache, keep, lengths)
                kept = cache[0].keys.shape[2]
                rows = split_caches(cache, (lengths + frames.shape[1]).clamp(max=kept))
            logits = self.model.head(y)  # (B, C, V)
        return logits.float().log_softmax(dim=-1).cpu(), rows

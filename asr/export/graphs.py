"""The three graphs an ONNX model directory holds, as ``nn.Module``s around a trained
:class:`~asr.model.CTCModel` (they add no weights; each reads the model's own).

- :class:`FullContext`: log-mel features of a padded batch -> CTC log-probs and lengths;
- :class:`Subsampling`: log-mel features -> encoder input frames (the streaming front end);
- :class:`StreamingChunk`: one chunk of encoder input frames and the caches of earlier
  frames -> log-probs of the chunk and the caches extended by it.

Log-mel features themselves are computed outside the graphs (``asr.model.features.LogMel``,
whose parameters the directory's JSON lists), so a stream's front end may cut the audio
anywhere; the feature statistics (CMVN) are inside.
"""

from __future__ import annotations

import torch
from torch import nn

from asr.model import CTCModel
from asr.model.encoder import LayerCache


class FullContext(nn.Module):
    """(B, T, F) log-mel, (B,) frame counts -> (B, T', V) log-probs, (B,) output frame counts."""

    def __init__(self, model: CTCModel):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor, feature_lengths: torch.Tensor):
        m = self.model
        x, lengths = m.subsampling(m.cmvn(features), feature_lengths)  # (B, T', D)
        x = m.encoder(x, lengths, chunk_frames=0)
        return m.head(x).log_softmax(dim=-1), lengths  # (B, T', V), (B,)


class Subsampling(nn.Module):
    """(B, T, F) log-mel -> (B, T', D) encoder input frames (T' as ``subsampling.output_lengths``)."""

    def __init__(self, model: CTCModel):
        super().__init__()
        self.model = model

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        lengths = torch.full(features.shape[:1], features.shape[1], dtype=torch.int64)
        frames, _ = self.model.subsampling(self.model.cmvn(features), lengths)
        return frames


class StreamingChunk(nn.Module):
    """One chunk of a stream, caches explicit (N layers, H heads, Dh = D / H, ``left`` frames
    of convolution context):

    frames (B, C, D), offset (B,) position of each stream's frame 0 in this chunk, keys and
    values (N, B, H, L, Dh) of the L frames still in view, conv (N, B, left, D) the
    convolution modules' state (only with ``conv_kernel > 0``) -> log_probs (B, C, V), keys
    and values (N, B, H, L + C, Dh), conv (N, B, left, D). The caller keeps the last
    ``left_chunks * C`` frames of the keys and values for the next chunk (all of them for
    ``left_chunks = -1``); the first chunk passes L = 0 and a zero convolution state. Equals
    :meth:`TransformerEncoder.forward_chunk` followed by the head.
    """

    def __init__(self, model: CTCModel):
        super().__init__()
        self.model = model
        self.has_conv = model.encoder.conv_module is not None  # (N, B, K - 1, D) state; a layer without one passes its row on

    def forward(self, frames, offset, keys, values, conv=None):
        enc = self.model.encoder
        x = frames * enc.pos.scale  # PositionalEncoding.forward at a tensor offset (eval: no dropout)
        if enc.pos.absolute:
            x = x + enc.pos.pe[offset[:, None] + torch.arange(frames.shape[1])]  # (B, C, D)
        new_keys, new_values, new_conv = [], [], []
        for i, layer in enumerate(enc.layers):
            cache = LayerCache(keys[i], values[i], conv[i] if layer.conv is not None else None)
            x, cache = layer.forward_chunk(x, cache, offset)
            new_keys.append(cache.keys)
            new_values.append(cache.values)
            if self.has_conv:
                new_conv.append(conv[i] if cache.conv is None else cache.conv)
        log_probs = self.model.head(enc.norm(x)).log_softmax(dim=-1)  # (B, C, V)
        out = (log_probs, torch.stack(new_keys), torch.stack(new_values))  # (N, B, H, L + C, Dh) each
        return (*out, torch.stack(new_conv)) if self.has_conv else out

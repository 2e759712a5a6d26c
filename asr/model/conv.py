"""Conformer convolution module, causal or centred, exact in chunked streaming either way.

LN -> pointwise (D -> 2D) -> GLU -> depthwise conv -> LN -> SiLU -> pointwise. The
depthwise convolution reads ``left`` frames before frame t and ``right`` after it:

- causal (``left = kernel - 1``, ``right = 0``): valid frames never read padding or the
  future, so the same computation serves full context, chunked attention and streaming;
- centred (``left = right = (kernel - 1) / 2``): padded frames are zeroed first; under
  chunked attention (``chunk_frames > 0``) a frame reads no frame past its chunk's end
  (zeros instead), so a stream fed chunk by chunk gets the same outputs.

Streaming keeps the GLU outputs of the last ``left`` frames (:meth:`ConvModule.forward_chunk`).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from asr.model.dropout import Dropout
from asr.model.precision import DepthwiseConv1d, fp32_on_cpu


class ConvModule(nn.Module):
    """(B, T, D) -> (B, T, D): the convolution branch of a Conformer block (add it to x)."""

    def __init__(self, d_model: int, kernel: int, dropout: float, causal: bool = True):
        super().__init__()
        if not causal and kernel % 2 == 0:
            raise ValueError(f"a centred convolution needs an odd kernel, got {kernel}")
        self.kernel = kernel
        self.causal = causal
        self.left = kernel - 1 if causal else (kernel - 1) // 2  # frames read before t
        self.right = kernel - 1 - self.left  # frames read after t
        self.norm_in = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = DepthwiseConv1d(d_model, d_model, kernel, groups=d_model)  # fp32 on CPUs
        self.norm_mid = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.dropout = Dropout(dropout)

    def glu(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, D) -> (B, T, D) the depthwise convolution's input (what a stream caches)."""
        return F.glu(self.pointwise_in(self.norm_in(x)), dim=-1)

    def _out(self, y: torch.Tensor) -> torch.Tensor:
        """(B, D, T) depthwise outputs -> (B, T, D) module output."""
        return self.dropout(self.pointwise_out(F.silu(self.norm_mid(y.transpose(1, 2)))))

    def forward(self, x: torch.Tensor, valid: torch.Tensor | None = None, chunk_frames: int = 0) -> torch.Tensor:
        """(B, T, D), valid (B, T) bool (True on real frames; None = all) -> (B, T, D).
        ``chunk_frames > 0``: the chunking of attention, which a centred kernel respects."""
        y = self.glu(x)  # (B, T, D)
        if self.causal:  # never reads padding or the future: needs neither mask nor chunks
            return self._out(self.depthwise(F.pad(y.transpose(1, 2), (self.left, 0))))  # (B, D, T)
        if valid is not None:
            y = y * valid.unsqueeze(-1).to(y.dtype)  # padding reads as zeros, as past a stream's end
        y = y.transpose(1, 2)  # (B, D, T)
        if chunk_frames <= 0:
            return self._out(self.depthwise(F.pad(y, (self.left, self.right))))
        return self._out(self._chunked(y, chunk_frames))

    def _chunked(self, y: torch.Tensor, chunk: int) -> torch.Tensor:
        """(B, D, T) -> (B, D, T) depthwise outputs reading nothing past each chunk's end.

        The taps on frames t - left .. t are one convolution (they never cross a chunk's end);
        each tap on a later frame t + r is added where t + r lies in t's chunk. Forward +
        backward take about 2x the plain convolution's time whatever the chunk (D = 192, one
        thread), where convolving each chunk apart with its left context took 2-20x.
        """
        y, context = fp32_on_cpu(y)
        with context:
            return self._chunked_taps(y, chunk)

    def _chunked_taps(self, y: torch.Tensor, chunk: int) -> torch.Tensor:
        T = y.shape[2]
        weight = self.depthwise.weight  # (D, 1, K)
        out = F.conv1d(F.pad(y, (self.left, 0)), weight[:, :, : self.left + 1], self.depthwise.bias, groups=y.shape[1])
        within = torch.arange(T, device=y.device) % chunk  # (T,) place of each frame in its chunk
        later = weight[:, 0, self.left + 1 :].to(out.dtype)  # (D, right) taps on t + 1 .. t + right
        ahead = F.pad(y.to(out.dtype), (0, self.right))  # (B, D, T + right)
        for r in range(1, min(self.right, chunk - 1) + 1):  # a tap r >= chunk frames ahead always crosses
            inside = (within + r < chunk).to(out.dtype)  # (T,) 1 where t + r is in t's chunk
            out = out + ahead[:, :, r : r + T] * (later[:, r - 1, None] * inside)  # (B, D, T)
        return out

    def forward_chunk(self, x: torch.Tensor, cache: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        """One streaming chunk: (B, C, D) and the GLU outputs of the ``left`` frames before it
        ((B, left, D); None = zeros, the stream's start) -> (B, C, D) and the next chunk's cache."""
        y = self.glu(x)  # (B, C, D)
        if cache is None:
            cache = y.new_zeros(y.shape[0], self.left, y.shape[2])
        seq = torch.cat([cache, y], dim=1)  # (B, left + C, D)
        seq_t = seq.transpose(1, 2)  # (B, D, left + C)
        out = self.depthwise(F.pad(seq_t, (0, self.right)) if self.right else seq_t)  # (B, D, C): zeros past the chunk
        return self._out(out), seq[:, seq.shape[1] - self.left :]  # (B, left, D)

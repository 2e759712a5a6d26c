"""Multi-head self-attention through ``scaled_dot_product_attention``, optionally with
rotary positions (RoPE): queries and keys turned by an angle proportional to their frame
index, so their product depends only on the offset between the two frames.

Rotary angles are computed in float64 from the frame index, so a stream hours long
(positions in the millions) turns its keys as exactly as its first second does; there is
no table and no cap on the length.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from asr.model.dropout import dropout

KVCache = tuple[torch.Tensor, torch.Tensor]  # one layer's keys and values, each (B, H, L, Dh)
ROPE_BASE = 10000.0  # wavelengths from 2 pi to 2 pi * ROPE_BASE frames, as in RoFormer


def rotary_angles(positions: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(..., T) frame indices -> cos, sin of their angles, each (..., T, Dh / 2) float64."""
    inv_freq = ROPE_BASE ** (-torch.arange(0, head_dim, 2, dtype=torch.float64, device=positions.device) / head_dim)
    angles = positions.to(torch.float64)[..., None] * inv_freq  # (..., T, Dh/2)
    return angles.cos(), angles.sin()


def rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """(B, H, T, Dh) turned pairwise (dims i and i + Dh/2) by cos, sin (T | B x 1, T, Dh/2) -> (B, H, T, Dh)."""
    cos, sin = cos.to(x.dtype), sin.to(x.dtype)  # the products stay in x's dtype (bf16 under autocast)
    x1, x2 = x.chunk(2, dim=-1)  # (B, H, T, Dh/2) each
    return torch.cat([x1 * cos - x2 * sin, x2 * cos + x1 * sin], dim=-1)


class SelfAttention(nn.Module):
    """Multi-head self-attention; fused SDPA kernel, weights recomputable on demand.

    ``rope``: queries and keys carry rotary positions (frame ``offset + t`` for row ``t``).
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float, rope: bool = False):
        super().__init__()
        assert d_model % n_heads == 0, "d_model must be divisible by n_heads"
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout
        self.rope = rope

    def _qkv(self, x: torch.Tensor, offset: int | torch.Tensor = 0) -> tuple[torch.Tensor, ...]:
        """(B, T, D) -> q, k, v each (B, H, T, Dh); ``offset`` () or (B,): position of row 0."""
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads)  # (B, T, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, Dh)
        if self.rope:
            positions = torch.as_tensor(offset, device=x.device)[..., None] + torch.arange(T, device=x.device)
            cos, sin = rotary_angles(positions, D // self.n_heads)  # (T, Dh/2) or (B, T, Dh/2)
            if cos.dim() == 3:  # one offset per utterance (exported graphs): broadcast over heads
                cos, sin = cos[:, None], sin[:, None]  # (B, 1, T, Dh/2)
            q, k = rotate(q, cos, sin), rotate(k, cos, sin)
        return q, k, v

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D), mask (B, 1, T|1, T) bool (True = may attend) -> (B, T, D)"""
        B, T, D = x.shape
        q, k, v = self._qkv(x)
        if self.training and self.dropout > 0 and x.device.type == "cpu":
            # Explicit softmax(QK^T)V: SDPA's fused CPU kernel has no dropout (it falls back to a
            # slower path drawing a Bernoulli per weight); this is 2.6x faster with dropout in bf16.
            # Without dropout SDPA stays: it keeps the scores in fp32, which pretrained layers with
            # large logits need (Whisper's: bf16 scores moved its outputs by up to 4).
            y = dropout(self._softmax(q, k, mask), self.dropout, True) @ v  # (B, H, T, Dh)
        else:
            drop = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)  # (B, H, T, Dh)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))  # (B, T, H*Dh) -> (B, T, D)

    @staticmethod
    def _softmax(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, H, T, Dh) queries and keys -> (B, H, T, T) attention weights."""
        scores = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(q.shape[-1]))  # (B, H, T, T)
        # the dtype's lowest value, not -inf: a row with no key left would get uniform weights
        # instead of NaN (TransformerEncoder.attention_mask leaves none; other masks might)
        return scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1)

    def weights(self, x: torch.Tensor, mask: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """The softmax weights SDPA uses, computed explicitly: -> (B, H, T, T). ``offset``
        shifts every position (rotary only; the weights must not change)."""
        q, k, _ = self._qkv(x, offset)
        return self._softmax(q, k, mask)

    def forward_chunk(
        self,
        x: torch.Tensor,
        cache: KVCache | None,
        offset: int | torch.Tensor = 0,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, KVCache]:
        """One streaming chunk: (B, C, D) frames from position ``offset`` (() or (B,)) on and the
        keys/values of earlier frames, each (B, H, L, Dh) -> (B, C, D) and the keys/values of
        all L + C frames.

        Every query sees every cached key and every key of its own chunk: exactly the
        rows of the chunk mask in :meth:`TransformerEncoder.attention_mask` for this chunk.
        ``mask`` (B, 1, 1, L + C) bool, True = may attend, hides the cache padding of a batch
        of streams whose caches hold fewer than L frames (None: every key is real).
        Rotary keys are turned by their absolute position before they enter the cache.
        """
        B, C, D = x.shape
        q, k, v = self._qkv(x, offset)  # each (B, H, C, Dh)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)  # (B, H, L + C, Dh)
            v = torch.cat([cache[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)  # (B, H, C, Dh)
        return self.proj(y.transpose(1, 2).reshape(B, C, D)), (k, v)

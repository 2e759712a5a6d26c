"""Pre-norm transformer encoder; attention through ``scaled_dot_product_attention``."""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from asr.config import ModelConfig


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on valid frames."""
    return torch.arange(max_len, device=lengths.device) < lengths.unsqueeze(1)


class PositionalEncoding(nn.Module):
    """Sinusoidal absolute positions added to the input scaled by sqrt(D)."""

    def __init__(self, d_model: int, dropout: float, max_len: int = 10000):
        super().__init__()
        self.scale = math.sqrt(d_model)
        position = torch.arange(max_len).unsqueeze(1)  # (L, 1)
        freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (D/2,)
        pe = torch.zeros(max_len, d_model)
        pe[:, 0::2] = torch.sin(position * freq)
        pe[:, 1::2] = torch.cos(position * freq)
        self.register_buffer("pe", pe, persistent=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, offset: int = 0) -> torch.Tensor:
        """(B, T, D) -> (B, T, D); ``offset`` is the position of frame 0 (streaming)."""
        T = x.shape[1]
        if offset + T > self.pe.shape[0]:
            raise ValueError(f"input of {offset + T} frames exceeds the {self.pe.shape[0]} positions encoded")
        return self.dropout(x * self.scale + self.pe[offset : offset + T])


class SelfAttention(nn.Module):
    """Multi-head self-attention; fused SDPA kernel, weights recomputable on demand."""

    def __init__(self, d_model: int, n_heads: int, dropout: float):
        super().__init__()
        assert d_model % n_heads == 0, "d_model must be divisible by n_heads"
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.dropout = dropout

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        B, T, D = x.shape
        qkv = self.qkv(x).view(B, T, 3, self.n_heads, D // self.n_heads)  # (B, T, 3, H, Dh)
        q, k, v = qkv.permute(2, 0, 3, 1, 4)  # each (B, H, T, Dh)
        return q, k, v

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D), mask (B, 1, T|1, T) bool (True = may attend) -> (B, T, D)"""
        B, T, D = x.shape
        q, k, v = self._qkv(x)
        drop = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)  # (B, H, T, Dh)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))  # (B, T, H*Dh) -> (B, T, D)

    def weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The softmax weights SDPA uses, computed explicitly: -> (B, H, T, T)."""
        q, k, _ = self._qkv(x)
        scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])  # (B, H, T, T)
        return scores.masked_fill(~mask, float("-inf")).softmax(dim=-1)


class EncoderLayer(nn.Module):
    """x + Attn(LN(x)), then x + FFN(LN(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        D = config.d_model
        self.norm_attn = nn.LayerNorm(D)
        self.attn = SelfAttention(D, config.n_heads, config.dropout)
        self.norm_ff = nn.LayerNorm(D)
        self.ff = nn.Sequential(
            nn.Linear(D, config.ff_dim), nn.GELU(), nn.Dropout(config.dropout), nn.Linear(config.ff_dim, D)
        )
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D), mask (B, 1, T|1, T) -> (B, T, D)"""
        x = x + self.dropout(self.attn(self.norm_attn(x), mask))
        return x + self.dropout(self.ff(self.norm_ff(x)))


class TransformerEncoder(nn.Module):
    """(B, T', D), (B,) lengths -> (B, T', D); padded frames never influence valid ones."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.pos = PositionalEncoding(config.d_model, config.dropout)
        self.layers = nn.ModuleList(EncoderLayer(config) for _ in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.config = config

    @staticmethod
    def attention_mask(
        lengths: torch.Tensor, max_len: int, chunk_frames: int = 0, left_chunks: int = -1
    ) -> torch.Tensor:
        """(B,) -> (B, 1, 1|T, T) bool, True where query t may attend to key s.

        Keys must be valid frames. With ``chunk_frames > 0`` frame t may also only see
        its own chunk and ``left_chunks`` chunks before it (all of them when negative).
        """
        mask = padding_mask(lengths, max_len)[:, None, None, :]  # (B, 1, 1, T)
        if chunk_frames > 0:
            chunk = torch.arange(max_len, device=lengths.device) // chunk_frames  # (T,)
            allowed = chunk[None, :] <= chunk[:, None]  # (T, T): no look-ahead past the chunk
            if left_chunks >= 0:
                allowed &= chunk[None, :] >= chunk[:, None] - left_chunks
            mask = mask & allowed[None, None]  # (B, 1, T, T)
        return mask

    def _training_chunks(self) -> tuple[int, int]:
        cfg = self.config
        if not self.training or cfg.chunk_train_prob <= 0 or torch.rand(()) >= cfg.chunk_train_prob:
            return 0, -1
        chunk = int(torch.randint(1, cfg.max_chunk_frames + 1, ()))
        left = int(torch.randint(0, cfg.max_left_chunks + 1, ())) if cfg.max_left_chunks >= 0 else -1
        return chunk, left

    def forward(
        self, x: torch.Tensor, lengths: torch.Tensor, chunk_frames: int | None = None, left_chunks: int = -1
    ) -> torch.Tensor:
        """``chunk_frames=None``: full context at inference, random chunks in training
        (``model.chunk_train_prob``); an int forces that chunking."""
        if chunk_frames is None:
            chunk_frames, left_chunks = self._training_chunks()
        mask = self.attention_mask(lengths, x.shape[1], chunk_frames, left_chunks)
        x = self.pos(x)
        for layer in self.layers:
            x = layer(x, mask)
        return self.norm(x)

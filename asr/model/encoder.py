"""Pre-norm transformer encoder; attention through ``scaled_dot_product_attention``."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn
from torch.nn import functional as F

from asr.config import ModelConfig
from asr.model.dropout import Dropout, dropout

KVCache = tuple[torch.Tensor, torch.Tensor]  # one layer's keys and values, each (B, H, L, Dh)


class LayerCache(NamedTuple):
    """What one layer keeps between streaming chunks."""

    keys: torch.Tensor  # (B, H, L, Dh) of the frames attention may still look back to
    values: torch.Tensor  # (B, H, L, Dh)
    conv: torch.Tensor | None  # (B, kernel - 1, D) GLU outputs of the last frames (conv layers only)


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
        self.dropout = Dropout(dropout)

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
        if self.training and x.device.type == "cpu":
            # Explicit softmax(QK^T)V: SDPA's fused CPU kernel has no dropout (it falls back to a
            # slower path drawing a Bernoulli per weight); this is 2.6x faster with dropout in bf16.
            y = dropout(self._softmax(q, k, mask), self.dropout, True) @ v  # (B, H, T, Dh)
        else:
            drop = self.dropout if self.training else 0.0
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, dropout_p=drop)  # (B, H, T, Dh)
        return self.proj(y.transpose(1, 2).reshape(B, T, D))  # (B, T, H*Dh) -> (B, T, D)

    @staticmethod
    def _softmax(q: torch.Tensor, k: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, H, T, Dh) queries and keys -> (B, H, T, T) attention weights."""
        scores = q @ k.transpose(-2, -1) * (1.0 / math.sqrt(q.shape[-1]))  # (B, H, T, T)
        # the dtype's lowest value, not -inf: a padded query whose chunk holds no valid key
        # gets uniform weights instead of NaN (which 0-weights would spread to valid frames)
        return scores.masked_fill(~mask, torch.finfo(scores.dtype).min).softmax(dim=-1)

    def weights(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The softmax weights SDPA uses, computed explicitly: -> (B, H, T, T)."""
        q, k, _ = self._qkv(x)
        return self._softmax(q, k, mask)

    def forward_chunk(self, x: torch.Tensor, cache: KVCache | None) -> tuple[torch.Tensor, KVCache]:
        """One streaming chunk: (B, C, D) and the keys/values of earlier frames, each
        (B, H, L, Dh) -> (B, C, D) and the keys/values of all L + C frames.

        Every query sees every cached key and every key of its own chunk: exactly the
        rows of the chunk mask in :meth:`TransformerEncoder.attention_mask` for this chunk.
        """
        B, C, D = x.shape
        q, k, v = self._qkv(x)  # each (B, H, C, Dh)
        if cache is not None:
            k = torch.cat([cache[0], k], dim=2)  # (B, H, L + C, Dh)
            v = torch.cat([cache[1], v], dim=2)
        y = F.scaled_dot_product_attention(q, k, v)  # (B, H, C, Dh)
        return self.proj(y.transpose(1, 2).reshape(B, C, D)), (k, v)


class CausalConvModule(nn.Module):
    """LN -> pointwise (D -> 2D) -> GLU -> causal depthwise conv -> LN -> SiLU -> pointwise.

    Frame t sees frames t - kernel + 1 .. t only, so valid frames never read padding or
    the future, and a streaming cache of ``kernel - 1`` frames makes chunks exact.
    """

    def __init__(self, d_model: int, kernel: int, dropout: float):
        super().__init__()
        self.kernel = kernel
        self.norm_in = nn.LayerNorm(d_model)
        self.pointwise_in = nn.Linear(d_model, 2 * d_model)
        self.depthwise = nn.Conv1d(d_model, d_model, kernel, groups=d_model)
        self.norm_mid = nn.LayerNorm(d_model)
        self.pointwise_out = nn.Linear(d_model, d_model)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, cache: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, D) -> (B, T, D). ``cache`` (B, kernel - 1, D): GLU outputs of the frames
        before ``x`` (streaming); zeros when None."""
        y = F.glu(self.pointwise_in(self.norm_in(x)), dim=-1)  # (B, T, D)
        if cache is None:
            y = F.pad(y.transpose(1, 2), (self.kernel - 1, 0))  # (B, D, K - 1 + T)
        else:
            y = torch.cat([cache, y], dim=1).transpose(1, 2)
        y = self.depthwise(y).transpose(1, 2)  # (B, T, D)
        return self.dropout(self.pointwise_out(F.silu(self.norm_mid(y))))


class EncoderLayer(nn.Module):
    """x + Attn(LN(x)), [x + Conv(x)], then x + FFN(LN(x))."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        D = config.d_model
        self.norm_attn = nn.LayerNorm(D)
        self.attn = SelfAttention(D, config.n_heads, config.dropout)
        self.norm_ff = nn.LayerNorm(D)
        self.ff = nn.Sequential(
            nn.Linear(D, config.ff_dim), nn.GELU(), Dropout(config.dropout), nn.Linear(config.ff_dim, D)
        )
        self.dropout = Dropout(config.dropout)
        self.conv = CausalConvModule(D, config.conv_kernel, config.dropout) if config.conv_kernel > 0 else None

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T, D), mask (B, 1, T|1, T) -> (B, T, D)"""
        x = x + self.dropout(self.attn(self.norm_attn(x), mask))
        if self.conv is not None:
            x = x + self.conv(x)
        return x + self.dropout(self.ff(self.norm_ff(x)))

    def forward_chunk(self, x: torch.Tensor, cache: LayerCache | None) -> tuple[torch.Tensor, LayerCache]:
        """(B, C, D) and this layer's cache of earlier frames -> (B, C, D) and the cache
        extended by this chunk (keys and values of every frame; the caller trims them)."""
        y, (k, v) = self.attn.forward_chunk(self.norm_attn(x), None if cache is None else cache[:2])
        x = x + self.dropout(y)
        conv_state = None
        if self.conv is not None:
            conv = self.conv
            past = cache.conv if cache is not None else x.new_zeros(x.shape[0], conv.kernel - 1, x.shape[2])
            x_conv = x
            x = x + conv(x_conv, past)
            glu = F.glu(conv.pointwise_in(conv.norm_in(x_conv)), dim=-1)  # (B, C, D): what the next chunk looks back to
            conv_state = torch.cat([past, glu], dim=1)[:, glu.shape[1] :]  # (B, kernel - 1, D)
        return x + self.dropout(self.ff(self.norm_ff(x))), LayerCache(k, v, conv_state)


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

    def forward_chunk(
        self, x: torch.Tensor, offset: int, cache: list[LayerCache] | None, keep: int = -1
    ) -> tuple[torch.Tensor, list[LayerCache]]:
        """Encode one chunk of a stream: (B, C, D) frames starting at position ``offset``
        -> (B, C, D) and the new per-layer cache.

        ``cache`` holds each layer's keys and values of earlier frames, (B, H, L, Dh) each,
        and its convolution state (None for the first chunk); ``keep`` is how many of the latest frames to carry to
        the next chunk (``left_chunks * chunk_frames``; all when negative). Fed chunks of
        ``chunk_frames`` frames, the outputs equal :meth:`forward` with the same
        ``chunk_frames`` and ``left_chunks``; the memory held is bounded by ``keep``.
        """
        x = self.pos(x, offset)
        new_cache = []
        for i, layer in enumerate(self.layers):
            x, (k, v, conv) = layer.forward_chunk(x, None if cache is None else cache[i])
            if keep >= 0:
                start = max(k.shape[2] - keep, 0)
                k, v = k[:, :, start:], v[:, :, start:]  # (B, H, <=keep, Dh)
            new_cache.append(LayerCache(k, v, conv))
        return self.norm(x), new_cache

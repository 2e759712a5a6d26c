"""Pre-norm transformer encoder; attention through ``scaled_dot_product_attention``
(:mod:`asr.model.attention`), optional convolution module (:mod:`asr.model.conv`) and
macaron feed-forward halves."""

from __future__ import annotations

import math
from typing import NamedTuple, Sequence

import torch
from torch import nn

from asr.config import ModelConfig
from asr.model.attention import KVCache, SelfAttention
from asr.model.conv import ConvModule
from asr.model.dropout import Dropout

__all__ = [
    "EncoderLayer", "KVCache", "LayerCache", "SelfAttention", "TransformerEncoder", "batch_caches", "padding_mask",
    "split_caches",
]  # fmt: skip


class LayerCache(NamedTuple):
    """What one layer keeps between streaming chunks."""

    keys: torch.Tensor  # (B, H, L, Dh) of the frames attention may still look back to
    values: torch.Tensor  # (B, H, L, Dh)
    conv: torch.Tensor | None  # (B, left, D) GLU outputs of the last frames (conv layers only; ConvModule.left)


def padding_mask(lengths: torch.Tensor, max_len: int) -> torch.Tensor:
    """(B,) lengths -> (B, T) bool, True on valid frames."""
    return torch.arange(max_len, device=lengths.device) < lengths.unsqueeze(1)


class PositionalEncoding(nn.Module):
    """Absolute sinusoidal positions (at most ``max_len`` frames) added to the input, or none.

    ``kind`` (``ModelConfig.pos_enc``): "abs" scales the input by sqrt(D) and adds
    interleaved sines and cosines; "whisper" adds Whisper's table (all sines, then all
    cosines, timescales 1 .. 10,000) to the unscaled input, so its pretrained layers see
    what they were trained on; "rope" (positions inside attention) only scales.
    """

    def __init__(self, d_model: int, dropout: float, max_len: int = 10000, kind: str = "abs"):
        super().__init__()
        self.scale = 1.0 if kind == "whisper" else math.sqrt(d_model)
        self.absolute = kind != "rope"
        if kind == "abs":
            position = torch.arange(max_len).unsqueeze(1)  # (L, 1)
            freq = torch.exp(torch.arange(0, d_model, 2) * (-math.log(10000.0) / d_model))  # (D/2,)
            pe = torch.zeros(max_len, d_model)
            pe[:, 0::2] = torch.sin(position * freq)
            pe[:, 1::2] = torch.cos(position * freq)
            self.register_buffer("pe", pe, persistent=False)
        elif kind == "whisper":
            half = d_model // 2
            freq = torch.exp(-math.log(10000.0) / (half - 1) * torch.arange(half))  # (D/2,)
            angle = torch.arange(max_len)[:, None] * freq[None, :]  # (L, D/2)
            self.register_buffer("pe", torch.cat([angle.sin(), angle.cos()], dim=1), persistent=False)  # (L, D)
        self.dropout = Dropout(dropout)

    def forward(self, x: torch.Tensor, offset: int | torch.Tensor = 0) -> torch.Tensor:
        """(B, T, D) -> (B, T, D); ``offset`` is the position of frame 0 (streaming): an int,
        or (B,) one per row (a batch of streams at different positions)."""
        if not self.absolute:
            return self.dropout(x * self.scale)
        T = x.shape[1]
        last = int(offset.max()) if isinstance(offset, torch.Tensor) else offset
        if last + T > self.pe.shape[0]:
            raise ValueError(f"input of {last + T} frames exceeds the {self.pe.shape[0]} positions encoded")
        if isinstance(offset, torch.Tensor):
            positions = offset.to(x.device)[:, None] + torch.arange(T, device=x.device)  # (B, T)
            return self.dropout(x * self.scale + self.pe[positions])  # pe[positions]: (B, T, D)
        return self.dropout(x * self.scale + self.pe[offset : offset + T])


def feed_forward(config: ModelConfig) -> nn.Sequential:
    """(B, T, D) -> (B, T, D): D -> ff_dim -> D with GELU."""
    D = config.d_model
    return nn.Sequential(
        nn.Linear(D, config.ff_dim), nn.GELU(), Dropout(config.dropout), nn.Linear(config.ff_dim, D)
    )


class EncoderLayer(nn.Module):
    """x + Attn(LN(x)), [x + Conv(x)], then x + FFN(LN(x)).

    Macaron (``config.macaron``): x + FFN'(LN(x)) / 2 first and the last FFN halved, as in
    the Conformer block.
    """

    def __init__(self, config: ModelConfig, conv: bool = True):
        """``conv``: whether this layer has the convolution module (where ``config.conv_kernel`` > 0)."""
        super().__init__()
        D = config.d_model
        if config.macaron:
            self.norm_ff_first = nn.LayerNorm(D)
            self.ff_first = feed_forward(config)
        self.macaron = config.macaron
        self.norm_attn = nn.LayerNorm(D)
        self.attn = SelfAttention(D, config.n_heads, config.dropout, rope=config.pos_enc == "rope")
        self.norm_ff = nn.LayerNorm(D)
        self.ff = feed_forward(config)
        self.dropout = Dropout(config.dropout)
        self.conv = None
        if conv and config.conv_kernel > 0:
            self.conv = ConvModule(D, config.conv_kernel, config.dropout, causal=config.conv_causal)

    def _ff_first(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.5 * self.dropout(self.ff_first(self.norm_ff_first(x))) if self.macaron else x

    def _ff_last(self, x: torch.Tensor) -> torch.Tensor:
        y = self.dropout(self.ff(self.norm_ff(x)))
        return x + (0.5 * y if self.macaron else y)

    def forward(
        self, x: torch.Tensor, mask: torch.Tensor, valid: torch.Tensor | None = None, chunk_frames: int = 0
    ) -> torch.Tensor:
        """(B, T, D), mask (B, 1, T|1, T), valid (B, T) bool True on real frames (None: all
        real), ``chunk_frames`` the chunking ``mask`` encodes (0 = none) -> (B, T, D)"""
        x = self._ff_first(x)
        x = x + self.dropout(self.attn(self.norm_attn(x), mask))
        if self.conv is not None:
            x = x + self.conv(x, valid, chunk_frames)
        return self._ff_last(x)

    def forward_chunk(
        self,
        x: torch.Tensor,
        cache: LayerCache | None,
        offset: int | torch.Tensor = 0,
        mask: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, LayerCache]:
        """(B, C, D) frames from position ``offset`` (() or (B,)) on and this layer's cache of
        earlier frames -> (B, C, D) and the cache extended by this chunk (keys and values of
        every frame; the caller trims them). ``mask`` (B, 1, 1, L + C): the keys each row
        may see (:meth:`SelfAttention.forward_chunk`; None: all)."""
        x = self._ff_first(x)
        kv = None if cache is None else cache[:2]
        y, (k, v) = self.attn.forward_chunk(self.norm_attn(x), kv, offset, mask)
        x = x + self.dropout(y)
        conv_state = None
        if self.conv is not None:
            y, conv_state = self.conv.forward_chunk(x, None if cache is None else cache.conv)
            x = x + y
        return self._ff_last(x), LayerCache(k, v, conv_state)


class TransformerEncoder(nn.Module):
    """(B, T', D), (B,) lengths -> (B, T', D); padded frames never influence valid ones."""

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.pos = PositionalEncoding(config.d_model, config.dropout, kind=config.pos_enc)
        self.layers = nn.ModuleList(EncoderLayer(config, i >= config.conv_from_layer) for i in range(config.n_layers))
        self.norm = nn.LayerNorm(config.d_model)
        self.config = config

    @property
    def conv_module(self) -> ConvModule | None:
        """The first layer's convolution module that has one (they are all alike), None where none has."""
        return next((layer.conv for layer in self.layers if layer.conv is not None), None)

    @staticmethod
    def attention_mask(
        lengths: torch.Tensor, max_len: int, chunk_frames: int = 0, left_chunks: int = -1
    ) -> torch.Tensor:
        """(B,) -> (B, 1, 1|T, T) bool, True where query t may attend to key s.

        Keys must be valid frames. With ``chunk_frames > 0`` a valid frame t may also only
        see its own chunk and ``left_chunks`` chunks before it (all of them when negative).

        No row is ever fully masked: attention kernels may answer such a row with NaN (some
        CUDA SDPA kernels did), which the backward pass spreads to every weight. So a padded
        query sees every valid key, unchunked (its output is never read), and an utterance
        of no frame at all keeps frame 0 as its key.
        """
        keys = padding_mask(lengths.clamp_min(1), max_len)[:, None, None, :]  # (B, 1, 1, T)
        if chunk_frames <= 0:
            return keys
        chunk = torch.arange(max_len, device=lengths.device) // chunk_frames  # (T,)
        allowed = chunk[None, :] <= chunk[:, None]  # (T, T): no look-ahead past the chunk
        if left_chunks >= 0:
            allowed &= chunk[None, :] >= chunk[:, None] - left_chunks
        padded_query = ~padding_mask(lengths, max_len)[:, None, :, None]  # (B, 1, T, 1)
        return keys & (allowed[None, None] | padded_query)  # (B, 1, T, T)

    def _masks(
        self, lengths: torch.Tensor, max_len: int, chunk_frames: int = 0, left_chunks: int = -1
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """-> the attention mask (:meth:`attention_mask`) and (B, T) valid frames for centred
        convolutions (None where the layers have none)."""
        mask = self.attention_mask(lengths, max_len, chunk_frames, left_chunks)
        conv = self.conv_module
        valid = padding_mask(lengths, max_len) if conv is not None and not conv.causal else None
        return mask, valid

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
        return self.forward_taps(x, lengths, (), chunk_frames, left_chunks)[0]

    def forward_taps(
        self,
        x: torch.Tensor,
        lengths: torch.Tensor,
        taps: Sequence[int],
        chunk_frames: int | None = None,
        left_chunks: int = -1,
    ) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """:meth:`forward`, and the outputs of the layers numbered in ``taps`` (1-based), each
        (B, T', D) through the final norm (InterCTC), in layer order."""
        if chunk_frames is None:
            chunk_frames, left_chunks = self._training_chunks()
        mask, valid = self._masks(lengths, x.shape[1], chunk_frames, left_chunks)
        x = self.pos(x)
        tapped = []
        for number, layer in enumerate(self.layers, start=1):
            x = layer(x, mask, valid, chunk_frames)
            if number in taps:
                tapped.append(self.norm(x))
        return self.norm(x), tapped

    def forward_layers(self, x: torch.Tensor, lengths: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        """Layers ``start`` .. ``stop - 1`` (0-based) alone, full context: (B, T', D) input of
        layer ``start`` (positions are added when it is 0), (B,) lengths -> (B, T', D) output
        of layer ``stop - 1``, before the final norm. Run back to back, two ranges give
        :meth:`forward` without chunks (the frozen front's cache, :mod:`asr.training.frozen_cache`)."""
        mask, valid = self._masks(lengths, x.shape[1])
        if start == 0:
            x = self.pos(x)
        for layer in self.layers[start:stop]:
            x = layer(x, mask, valid, 0)
        return x

    def forward_chunk(
        self,
        x: torch.Tensor,
        offset: int | torch.Tensor,
        cache: list[LayerCache] | None,
        keep: int = -1,
        cache_lengths: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, list[LayerCache]]:
        """Encode one chunk of a stream: (B, C, D) frames starting at position ``offset``
        -> (B, C, D) and the new per-layer cache.

        ``cache`` holds each layer's keys and values of earlier frames, (B, H, L, Dh) each,
        and its convolution state (None for the first chunk); ``keep`` is how many of the latest frames to carry to
        the next chunk (``left_chunks * chunk_frames``; all when negative). Fed chunks of
        ``chunk_frames`` frames, the outputs equal :meth:`forward` with the same
        ``chunk_frames`` and ``left_chunks``; the memory held is bounded by ``keep``.

        A batch of streams at different points (:func:`batch_caches`, :func:`split_caches`):
        ``offset`` (B,) the position of each row's first frame, ``cache_lengths`` (B,) how many
        of the L cached frames are row b's (its last ones; the rest is padding no query sees).
        Each row's outputs equal those of its stream encoded alone.
        """
        x = self.pos(x, offset)
        mask = None
        if cache is not None and cache_lengths is not None:
            L = cache[0].keys.shape[2]
            if bool((cache_lengths < L).any()):
                first = (L - cache_lengths).to(x.device)[:, None]  # (B, 1) each row's first real key
                mask = (torch.arange(L + x.shape[1], device=x.device) >= first)[:, None, None, :]  # (B, 1, 1, L + C)
        new_cache = []
        for i, layer in enumerate(self.layers):
            x, (k, v, conv) = layer.forward_chunk(x, None if cache is None else cache[i], offset, mask)
            if keep >= 0:
                start = max(k.shape[2] - keep, 0)
                k, v = k[:, :, start:], v[:, :, start:]  # (B, H, <=keep, Dh)
            new_cache.append(LayerCache(k, v, conv))
        return self.norm(x), new_cache


def batch_caches(caches: Sequence[list[LayerCache] | None]) -> tuple[list[LayerCache] | None, torch.Tensor]:
    """One cache per stream (batch 1 each, from :meth:`TransformerEncoder.forward_chunk`; None
    before a stream's first chunk) -> the batch's cache and (B,) cached frames per row.

    Row b's L_b frames end each (B, H, L, Dh) tensor, L the longest, zeros before them;
    a stream without a cache gets L_b = 0 and a zero convolution state (a stream's start).
    """
    lengths = torch.tensor([0 if c is None else c[0].keys.shape[2] for c in caches])  # (B,)
    model = next((c for c in caches if c is not None), None)
    if model is None:
        return None, lengths
    L = int(lengths.max())
    batched = []
    for i, layer in enumerate(model):
        keys = layer.keys.new_zeros(len(caches), *layer.keys.shape[1:2], L, layer.keys.shape[3])  # (B, H, L, Dh)
        values = torch.zeros_like(keys)
        conv = None if layer.conv is None else layer.conv.new_zeros(len(caches), *layer.conv.shape[1:])  # (B, left, D)
        for b, cache in enumerate(caches):
            if cache is not None:
                n = cache[i].keys.shape[2]
                keys[b, :, L - n :], values[b, :, L - n :] = cache[i].keys[0], cache[i].values[0]
                if conv is not None:
                    conv[b] = cache[i].conv[0]
        batched.append(LayerCache(keys, values, conv))
    return batched, lengths


def split_caches(cache: list[LayerCache], lengths: torch.Tensor) -> list[list[LayerCache]]:
    """The cache :meth:`TransformerEncoder.forward_chunk` returned for a batch, and (B,) real
    frames per row in it (cached + chunk, at most what was kept) -> one batch-1 cache per row,
    each a copy (a stream does not hold the batch's tensors alive)."""
    rows = []
    for b, n in enumerate(lengths.tolist()):
        row = []
        for layer in cache:
            L = layer.keys.shape[2]
            conv = None if layer.conv is None else layer.conv[b : b + 1].clone()
            keys, values = layer.keys[b : b + 1, :, L - n :], layer.values[b : b + 1, :, L - n :]  # (1, H, n, Dh)
            row.append(LayerCache(keys.clone(), values.clone(), conv))
        rows.append(row)
    return rows

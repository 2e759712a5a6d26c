"""One encoder layer of ours against same-size layers built from well-kept parts.

``torch.nn.TransformerEncoderLayer`` (pre-norm, GELU, batch first) and one block of
``torchaudio.models.Conformer`` (two half feed-forwards, a convolution module: more
parameters by design) get the same width, heads, feed-forward size and dropout as ours,
and the same padded batch; each is timed forward + backward in training mode. Ours is
built from the recipe's ``model`` section, so each block option can be timed.
"""

from __future__ import annotations

import time

import torch
from torch import nn

from asr.config import ModelConfig
from asr.model.encoder import EncoderLayer, TransformerEncoder, padding_mask

KINDS = ("ours", "torch", "conformer")


class _Layer(nn.Module):
    """(B, T, D), (B,) lengths -> (B, T, D) for each kind."""

    def __init__(self, kind: str, config: ModelConfig):
        super().__init__()
        self.kind = kind
        D, H, F, p = config.d_model, config.n_heads, config.ff_dim, config.dropout
        if kind == "ours":
            self.layer = EncoderLayer(config)
        elif kind == "torch":
            self.layer = nn.TransformerEncoderLayer(D, H, F, p, activation="gelu", batch_first=True, norm_first=True)
        elif kind == "conformer":
            from torchaudio.models import Conformer

            self.layer = Conformer(D, H, F, 1, max(config.conv_kernel, 15) | 1, dropout=p)
        else:
            raise ValueError(f"layer kind {kind!r} is not one of {', '.join(KINDS)}")

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        if self.kind == "ours":
            T = x.shape[1]
            return self.layer(x, TransformerEncoder.attention_mask(lengths, T), padding_mask(lengths, T))
        if self.kind == "torch":
            pad = torch.arange(x.shape[1], device=x.device)[None] >= lengths[:, None]  # (B, T) True = padding
            return self.layer(x, src_key_padding_mask=pad)
        return self.layer(x, lengths)[0]


def layer_speed(
    kind: str,
    config: ModelConfig,
    device: torch.device,
    batch: int = 8,
    frames: int = 306,
    precision: str = "bf16",
    repeats: int = 5,
    compile: bool = False,
) -> dict:
    """Best forward + backward seconds of one layer on a (batch, frames, D) input whose
    utterances are 100% .. 75% of ``frames`` long; peak memory above the start."""
    from asr.bench.machine import peak_memory_gib, sync

    torch.manual_seed(0)
    module = _Layer(kind, config).to(device).train()
    run = torch.compile(module) if compile else module
    x = torch.randn(batch, frames, config.d_model, device=device, requires_grad=True)
    lengths = torch.linspace(frames, 0.75 * frames, batch, device=device).long()

    def step():
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=precision == "bf16"):
            y = run(x, lengths)
        y.float().square().mean().backward()

    rss_start = peak_memory_gib(device)
    started = time.perf_counter()
    step()  # warm-up (and compilation)
    sync(device)
    first = time.perf_counter() - started
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        sync(device)
        best = min(best, time.perf_counter() - started)
    return {
        "kind": kind + (" + torch.compile" if compile else ""),
        "parameters_m": round(sum(p.numel() for p in module.parameters()) / 1e6, 3),
        "precision": precision,
        "batch": [batch, frames, config.d_model],
        "ms_fwd_bwd": round(1e3 * best, 2),
        "first_call_s": round(first, 2),
        "peak_memory_gib": round(peak_memory_gib(device) - (rss_start if device.type == "cpu" else 0.0), 3),
    }

"""Depthwise convolutions in fp32 under CPU autocast: there bf16 costs more than it saves.

oneDNN's bf16 depthwise kernels are slow on CPUs without a native bf16 depthwise path: on an
AMD EPYC (Zen 4, avx512_bf16), one thread, the demo's 8x subsampling took 291 ms forward and
backward per 100 s batch with every convolution in bf16 and 160 ms with its two depthwise
convolutions in fp32 (the module alone, timed by hand); the whole training step
(`python -m asr.bench.train --config recipes/demo/demo.yaml --threads 1`) went from 0.667 to
0.567 s (BENCHMARKS.md). A depthwise convolution does few FLOPs
per value it reads, so fp32 costs little anywhere; the pointwise ones (matmuls) stay bf16.
On GPUs autocast is left as it is. The parameters and their names are nn.Conv1d's and
nn.Conv2d's, so checkpoints do not change.
"""

from __future__ import annotations

import contextlib

import torch
from torch import nn


def fp32_on_cpu(x: torch.Tensor):
    """-> (``x``, a context to run the convolution in): on a CPU under autocast ``x`` in fp32
    and autocast off, else ``x`` as it is and no change."""
    if x.device.type == "cpu" and torch.is_autocast_enabled("cpu"):
        return x.float(), torch.autocast("cpu", enabled=False)
    return x, contextlib.nullcontext()


class DepthwiseConv1d(nn.Conv1d):
    """nn.Conv1d (groups = channels) that runs in fp32 under CPU autocast: (B, C, T) -> (B, C, T')."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, context = fp32_on_cpu(x)
        with context:
            return super().forward(x)


class DepthwiseConv2d(nn.Conv2d):
    """nn.Conv2d (groups = channels) that runs in fp32 under CPU autocast: (B, C, H, W) -> (B, C, H', W')."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x, context = fp32_on_cpu(x)
        with context:
            return super().forward(x)

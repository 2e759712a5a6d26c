"""Convolutional front ends: 4x fewer frames in time (two 3x3 stride-2 convolutions), 8x
(FastConformer-style: one 3x3 stride-2 convolution, then two depthwise-separable ones) or
2x (Whisper's: two 1-D convolutions over time with the mel bins as channels).

None pads, so output frame ``t`` reads input frames ``[rate * t, rate * t + right_context]``
only: valid outputs never read padding, and a stream can be subsampled block by block
(:mod:`asr.inference.frontend`) with the frames of the whole signal.
"""

from __future__ import annotations

import torch
from torch import nn

from asr.model.precision import DepthwiseConv2d


def _halve(n: torch.Tensor | int, times: int):
    """Length after ``times`` kernel-3 stride-2 unpadded convolutions: n -> (n - 1) // 2 (floor) each."""
    for _ in range(times):
        n = (n - 1) // 2
    return n


class _Subsampling(nn.Module):
    """(B, T, F) features -> (B, T', D); ``stages`` kernel-3 stride-2 convolutions in time and frequency.

    Subclasses set ``self.conv`` (B, 1, T, F) -> (B, C, T', F') and declare the class constants.
    """

    subsampling_rate: int  # input frames per output frame
    right_context: int  # output frame t reads input frames rate * t .. rate * t + right_context
    min_frames: int  # fewest input frames that give one output frame
    stages: int

    def __init__(self, n_mels: int, channels: int, d_model: int):
        super().__init__()
        self.conv = self.make_conv(channels)
        # channels-last (B, T, F, C) in memory: oneDNN's convolutions skip two layout
        # conversions per call; 1.6x faster forward + backward on a CPU in bf16 (asr.bench)
        self.conv.to(memory_format=torch.channels_last)
        self.out = nn.Linear(channels * _halve(n_mels, self.stages), d_model)

    def make_conv(self, channels: int) -> nn.Module:
        raise NotImplementedError

    @classmethod
    def output_lengths(cls, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) input frame counts -> (B,) output frame counts."""
        return _halve(lengths, cls.stages).clamp(min=0)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = feats.unsqueeze(1).contiguous(memory_format=torch.channels_last)  # (B, 1, T, F)
        x = self.conv(x)  # (B, C, T', F')
        B, C, T, F = x.shape
        x = self.out(x.transpose(1, 2).reshape(B, T, C * F))  # (B, T', C*F') -> (B, T', D)
        return x, self.output_lengths(lengths)


class Conv2dSubsampling4(_Subsampling):
    """(B, T, F) -> (B, T', D) with T' = ((T - 1) // 2 - 1) // 2: frame t sees ``[4t, 4t + 6]``."""

    subsampling_rate = 4
    right_context = 6
    min_frames = 7
    stages = 2

    def make_conv(self, channels: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(1, channels, kernel_size=3, stride=2),
            nn.ReLU(),
            nn.Conv2d(channels, channels, kernel_size=3, stride=2),
            nn.ReLU(),
        )


class DepthwiseSubsampling8(_Subsampling):
    """(B, T, F) -> (B, T', D) with T' = (((T - 1) // 2 - 1) // 2 - 1) // 2: frame t sees ``[8t, 8t + 14]``.

    A full 3x3 stride-2 convolution (1 -> C channels), then twice a depthwise 3x3 stride-2
    convolution followed by a pointwise (1x1) one: the C x C mixing costs 1/9 of a full
    3x3 convolution, so 8x costs less than today's 4x (asr.bench.flops).
    """

    subsampling_rate = 8
    right_context = 14
    min_frames = 15
    stages = 3

    def make_conv(self, channels: int) -> nn.Module:
        layers: list[nn.Module] = [nn.Conv2d(1, channels, kernel_size=3, stride=2), nn.ReLU()]
        for _ in range(2):
            layers += [
                DepthwiseConv2d(channels, channels, kernel_size=3, stride=2, groups=channels),  # fp32 on CPUs
                nn.Conv2d(channels, channels, kernel_size=1),
                nn.ReLU(),
            ]
        return nn.Sequential(*layers)


class Conv1dSubsampling2(nn.Module):
    """(B, T, F) -> (B, T', D) with T' = (T - 3) // 2: frame t sees ``[2t, 2t + 4]``.

    Whisper's front end (F -> D kernel-3 convolution, GELU, D -> D kernel-3 stride-2
    convolution, GELU), so its weights load as they are (``model.init``), but unpadded:
    frame t here is Whisper's frame t + 1, and a padded batch equals its utterances alone.
    ``channels`` is unused (both convolutions have D channels).
    """

    subsampling_rate = 2
    right_context = 4
    min_frames = 5

    def __init__(self, n_mels: int, channels: int, d_model: int):
        super().__init__()
        self.conv1 = nn.Conv1d(n_mels, d_model, kernel_size=3)
        self.conv2 = nn.Conv1d(d_model, d_model, kernel_size=3, stride=2)
        self.act = nn.GELU()

    @classmethod
    def output_lengths(cls, lengths: torch.Tensor) -> torch.Tensor:
        """(B,) input frame counts -> (B,) output frame counts."""
        return torch.div(lengths - 3, 2, rounding_mode="floor").clamp(min=0)

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.act(self.conv1(feats.transpose(1, 2)))  # (B, F, T) -> (B, D, T - 2)
        x = self.act(self.conv2(x))  # (B, D, T')
        return x.transpose(1, 2), self.output_lengths(lengths)  # (B, T', D)


SUBSAMPLINGS: dict[str, type[nn.Module]] = {
    "conv4": Conv2dSubsampling4, "dw8": DepthwiseSubsampling8, "conv1d2": Conv1dSubsampling2,
}  # fmt: skip


def subsampling_class(name: str) -> type[nn.Module]:
    """``ModelConfig.subsampling`` -> its class (whose ``output_lengths`` needs no instance)."""
    if name not in SUBSAMPLINGS:
        raise ValueError(f"model.subsampling must be one of {', '.join(SUBSAMPLINGS)}, got {name!r}")
    return SUBSAMPLINGS[name]

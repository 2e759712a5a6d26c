"""Log-mel features, global mean/variance normalization and SpecAugment.

All three are ``nn.Module``s that work on padded batches and keep padding out of the
valid frames: the filterbank is computed without centre padding, so frame ``t`` reads
samples ``[t * hop, t * hop + n_fft)`` only, and a padded batch gives every utterance
exactly the frames it gets alone.
"""

from __future__ import annotations

import torch
import torchaudio
from torch import nn

from asr.config import FeatureConfig, SpecAugmentConfig


def num_frames(num_samples: torch.Tensor, config: FeatureConfig) -> torch.Tensor:
    """(B,) sample counts -> (B,) log-mel frame counts (0 for audio shorter than one window)."""
    frames = torch.div(num_samples - config.n_fft, config.hop_length, rounding_mode="floor") + 1
    return frames.clamp(min=0)


class LogMel(nn.Module):
    """(B, N) waveforms, (B,) sample counts -> (B, T, F) log-mel, (B,) frame counts."""

    def __init__(self, config: FeatureConfig):
        super().__init__()
        self.config = config
        self.mel = torchaudio.transforms.MelSpectrogram(
            sample_rate=config.sample_rate,
            n_fft=config.n_fft,
            hop_length=config.hop_length,
            n_mels=config.n_mels,
            center=False,  # no reflection padding: padded batches equal unpadded utterances
            power=2.0,
            norm="slaney" if config.mel == "slaney" else None,
            mel_scale=config.mel,
        )

    def num_frames(self, num_samples: torch.Tensor) -> torch.Tensor:
        """(B,) sample counts -> (B,) frame counts (0 for audio shorter than one window)."""
        return num_frames(num_samples, self.config)

    def forward(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if waves.shape[-1] < self.config.n_fft:  # shorter than one window: pad so the batch has 1 frame
            waves = nn.functional.pad(waves, (0, self.config.n_fft - waves.shape[-1]))
        with torch.autocast(device_type=waves.device.type, enabled=False):
            spec = self.mel(waves.float())  # (B, F, T)
        return (spec + 1e-6).log().transpose(1, 2), self.num_frames(lengths)  # (B, T, F)


class GlobalCMVN(nn.Module):
    """Subtract the training set's per-bin mean and divide by its standard deviation.

    The statistics are buffers, so they travel inside every checkpoint.
    """

    def __init__(self, n_mels: int):
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_mels))
        self.register_buffer("std", torch.ones(n_mels))

    def set_stats(self, mean: torch.Tensor, std: torch.Tensor) -> None:
        self.mean.copy_(mean)
        self.std.copy_(std.clamp(min=1e-5))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """(B, T, F) -> (B, T, F)"""
        return (feats - self.mean) / self.std


class SpecAugment(nn.Module):
    """Frequency and time masks (set to zero, the normalized mean), training mode only.

    Masks are drawn per utterance and, in time, limited to that utterance's length.
    """

    def __init__(self, config: SpecAugmentConfig):
        super().__init__()
        self.config = config

    def forward(self, feats: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """(B, T, F), (B,) -> (B, T, F)"""
        if not self.training:
            return feats
        cfg = self.config
        B, T, F = feats.shape
        keep = torch.ones(B, T, F, dtype=torch.bool, device=feats.device)
        bins = torch.arange(F, device=feats.device)
        frames = torch.arange(T, device=feats.device)
        for _ in range(cfg.freq_masks):
            width = torch.randint(0, cfg.freq_width + 1, (B, 1), device=feats.device)
            start = (torch.rand(B, 1, device=feats.device) * (F - width)).long()
            keep &= ~((bins >= start) & (bins < start + width)).unsqueeze(1)  # (B, 1, F)
        for _ in range(cfg.time_masks):
            max_width = (lengths.float() * cfg.time_width).long().unsqueeze(1)  # (B, 1)
            width = (torch.rand(B, 1, device=feats.device) * (max_width + 1).float()).long()
            start = (torch.rand(B, 1, device=feats.device) * (lengths.unsqueeze(1) - width).clamp(min=0).float()).long()
            keep &= ((frames < start) | (frames >= start + width)).unsqueeze(2)  # (B, T, 1)
        return feats * keep

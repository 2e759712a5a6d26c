"""Helpers shared by the transforms: seeding, levels, FFT sizes and zero-phase FFT filters."""

from __future__ import annotations

import math
import random

import torch

SAMPLE_RATE = 16000
EPS = 1e-12


def torch_generator(rng: random.Random) -> torch.Generator:
    """A torch generator seeded from ``rng`` (so one ``random.Random`` drives everything)."""
    return torch.Generator().manual_seed(rng.getrandbits(63))


def power(wave: torch.Tensor) -> float:
    """Mean square of (N,)."""
    return float(wave.double().square().mean()) if wave.numel() else 0.0


def fast_size(n: int) -> int:
    """Smallest power of two >= n: FFT lengths that are cheap whatever the utterance length."""
    return 1 << max(0, (n - 1).bit_length())


def fft_convolve(wave: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Full linear convolution of (N,) with (L,) -> (N + L - 1,), FFT at a power-of-two length.

    torchaudio.functional.fftconvolve transforms at exactly N + L - 1, which is slow when that
    length has a large prime factor; padding to a power of two keeps the cost predictable.
    """
    n = wave.numel() + kernel.numel() - 1
    size = fast_size(n)
    spectrum = torch.fft.rfft(wave, size) * torch.fft.rfft(kernel, size)
    return torch.fft.irfft(spectrum, size)[:n]


def fft_filter(wave: torch.Tensor, gain_at, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Zero-phase filter of (N,) or a zero-padded batch (B, N): ``gain_at(freqs (F,) Hz float64)
    -> (F,)`` amplitude gain, or (B, F) one per row, in one FFT on the wave's device.

    The signal is zero-padded to a power of two at least 1/8 longer, so the (short) impulse
    response of a smooth gain curve does not wrap around onto the utterance.
    """
    n = wave.shape[-1]
    size = fast_size(n + n // 8 + 256)
    freqs = torch.fft.rfftfreq(size, 1.0 / sample_rate, dtype=torch.float64, device=wave.device)
    gain = gain_at(freqs).to(torch.float32)
    return torch.fft.irfft(torch.fft.rfft(wave, size) * gain, size)[..., :n]


def band_gain(freqs: torch.Tensor, low: float, high: float, edge: float = 0.2) -> torch.Tensor:
    """(F,) Hz -> (F,) amplitude: 1 inside [low, high], 0 outside, raised-cosine edges
    ``edge`` octaves wide centred on ``low`` and ``high`` (each band edge is the -6 dB point)."""
    octaves = torch.log2(freqs.clamp_min(1.0))
    inside = torch.minimum(octaves - math.log2(low), math.log2(high) - octaves)
    ramp = (inside / edge + 0.5).clamp(0.0, 1.0)  # 0 half an edge outside the band, 1 half an edge inside
    return 0.5 - 0.5 * torch.cos(torch.pi * ramp)

"""Channel effects: telephone and wideband codecs' band limits, random EQ, gain, clipping."""

from __future__ import annotations

import math
import random

import torch
import torchaudio.functional as AF

from asr.data.augment.common import SAMPLE_RATE, band_gain, fft_filter

MU = 255  # G.711 mu-law


def mu_law_encode(wave: torch.Tensor) -> torch.Tensor:
    """(N,) in [-1, 1] -> (N,) int64 codes 0..255: sign(x) ln(1 + mu|x|) / ln(1 + mu), 8 bits."""
    compressed = torch.sign(wave) * torch.log1p(MU * wave.abs().clamp(max=1.0)) / math.log1p(MU)
    return torch.round((compressed + 1) / 2 * MU).long()


def mu_law_decode(codes: torch.Tensor) -> torch.Tensor:
    """(N,) codes 0..255 -> (N,) float32 in [-1, 1] (inverse of :func:`mu_law_encode` up to quantization)."""
    compressed = codes.float() / MU * 2 - 1
    return torch.sign(compressed) * torch.expm1(compressed.abs() * math.log1p(MU)) / MU


def narrowband(wave: torch.Tensor) -> torch.Tensor:
    """(N,) 16 kHz -> (N,) as heard through a G.711 call: 300-3400 Hz, 8 kHz, mu-law."""
    peak = float(wave.abs().max())
    if peak == 0:
        return wave
    band = fft_filter(wave, lambda f: band_gain(f, 300.0, 3400.0), SAMPLE_RATE)
    low = AF.resample(band, SAMPLE_RATE, 8000)
    scale = max(float(low.abs().max()), 1e-20)  # codec input at full scale, level restored after
    low = mu_law_decode(mu_law_encode(low / scale)) * scale
    # Upsampling leaves images of the quantization noise above 4 kHz; the band filter removes them.
    back = AF.resample(low, 8000, SAMPLE_RATE)[: wave.numel()]
    back = torch.nn.functional.pad(back, (0, wave.numel() - back.numel()))
    return fft_filter(back, lambda f: band_gain(f, 300.0, 3400.0), SAMPLE_RATE)


def wideband(wave: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N,) G.722-like: 50-7000 Hz band only."""
    return fft_filter(wave, lambda f: band_gain(f, 50.0, 7000.0), SAMPLE_RATE)


class Telephone:
    """Narrow-band (G.711) or, for ``wideband_share`` of draws, wideband (G.722-like) channel."""

    def __init__(self, prob: float, wideband_share: float = 0.3):
        self.prob, self.wideband_share = prob, wideband_share

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.prob <= 0 or rng.random() >= self.prob or wave.numel() == 0:
            return wave
        return (wideband if rng.random() < self.wideband_share else narrowband)(wave).to(torch.float32)


class ChannelEQ:
    """A few random peaking bands (log-Gaussian in frequency, one octave or so wide), zero phase."""

    def __init__(self, prob: float, bands=(1, 3), gain_db: float = 10.0):
        self.prob, self.bands, self.gain_db = prob, tuple(map(int, bands)), gain_db

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.prob <= 0 or rng.random() >= self.prob or wave.numel() == 0:
            return wave
        # (centre Hz, gain dB, width in octaves): centres log-uniform over 100 Hz..6.4 kHz
        peaks = [(100.0 * 2 ** rng.uniform(0, 6), rng.uniform(-self.gain_db, self.gain_db), rng.uniform(0.3, 1.5)) for _ in range(rng.randint(*self.bands))]

        def gain(freqs: torch.Tensor) -> torch.Tensor:
            octaves = torch.log2(freqs.clamp_min(1.0))
            db = sum(g * torch.exp(-0.5 * ((octaves - math.log2(c)) / w) ** 2) for c, g, w in peaks)
            return torch.pow(10.0, db / 20.0)

        return fft_filter(wave, gain, SAMPLE_RATE).to(torch.float32)


class Gain:
    """Scale by a random gain in dB."""

    def __init__(self, prob: float, gain_db=(-20.0, 10.0)):
        self.prob, self.gain_db = prob, tuple(map(float, gain_db))

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.prob <= 0 or rng.random() >= self.prob:
            return wave
        return wave * 10 ** (rng.uniform(*self.gain_db) / 20)


class Clip:
    """Hard clipping at a random fraction of the utterance's peak."""

    def __init__(self, prob: float, ratio=(0.3, 0.9)):
        self.prob, self.ratio = prob, tuple(map(float, ratio))

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.prob <= 0 or rng.random() >= self.prob or wave.numel() == 0:
            return wave
        threshold = rng.uniform(*self.ratio) * float(wave.abs().max())
        return wave.clamp(-threshold, threshold)

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
    """(N,) or a zero-padded batch (B, N), 16 kHz -> same shape, as heard through a G.711 call:
    300-3400 Hz, 8 kHz, mu-law (each row's codec level set by its own peak)."""
    if float(wave.abs().max()) == 0:
        return wave
    n = wave.shape[-1]
    band = fft_filter(wave, lambda f: band_gain(f, 300.0, 3400.0), SAMPLE_RATE)
    low = AF.resample(band, SAMPLE_RATE, 8000)
    scale = low.abs().amax(-1, keepdim=True).clamp_min(1e-20)  # codec input at full scale, level restored after
    low = mu_law_decode(mu_law_encode(low / scale)) * scale
    # Upsampling leaves images of the quantization noise above 4 kHz; the band filter removes them.
    back = AF.resample(low, 8000, SAMPLE_RATE)[..., :n]
    back = torch.nn.functional.pad(back, (0, n - back.shape[-1]))
    return fft_filter(back, lambda f: band_gain(f, 300.0, 3400.0), SAMPLE_RATE)


def wideband(wave: torch.Tensor) -> torch.Tensor:
    """(N,) -> (N,) G.722-like: 50-7000 Hz band only."""
    return fft_filter(wave, lambda f: band_gain(f, 50.0, 7000.0), SAMPLE_RATE)


def eq_gain(freqs: torch.Tensor, peaks) -> torch.Tensor:
    """(F,) Hz -> (F,) amplitude gain of peaking bands [(centre Hz, gain dB, width in octaves)]."""
    octaves = torch.log2(freqs.clamp_min(1.0))
    db = sum(g * torch.exp(-0.5 * ((octaves - math.log2(c)) / w) ** 2) for c, g, w in peaks)
    return torch.pow(10.0, db / 20.0)


class Telephone:
    """Narrow-band (G.711) or, for ``wideband_share`` of draws, wideband (G.722-like) channel."""

    def __init__(self, prob: float, wideband_share: float = 0.3):
        self.prob, self.wideband_share = prob, wideband_share

    def draw(self, rng: random.Random, n: int) -> str | None:
        """-> "wideband", "narrowband", or None (not fired); shared with the device path."""
        if self.prob <= 0 or rng.random() >= self.prob or n == 0:
            return None
        return "wideband" if rng.random() < self.wideband_share else "narrowband"

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        kind = self.draw(rng, wave.numel())
        if kind is None:
            return wave
        return (wideband if kind == "wideband" else narrowband)(wave).to(torch.float32)


class ChannelEQ:
    """A few random peaking bands (log-Gaussian in frequency, one octave or so wide), zero phase."""

    def __init__(self, prob: float, bands=(1, 3), gain_db: float = 10.0):
        self.prob, self.bands, self.gain_db = prob, tuple(map(int, bands)), gain_db

    def draw(self, rng: random.Random, n: int) -> list[tuple[float, float, float]] | None:
        """-> peaks [(centre Hz, gain dB, width in octaves)], or None (not fired)."""
        if self.prob <= 0 or rng.random() >= self.prob or n == 0:
            return None
        # centres log-uniform over 100 Hz..6.4 kHz
        return [(100.0 * 2 ** rng.uniform(0, 6), rng.uniform(-self.gain_db, self.gain_db), rng.uniform(0.3, 1.5)) for _ in range(rng.randint(*self.bands))]

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        peaks = self.draw(rng, wave.numel())
        if peaks is None:
            return wave
        return fft_filter(wave, lambda freqs: eq_gain(freqs, peaks), SAMPLE_RATE).to(torch.float32)


class Gain:
    """Scale by a random gain in dB."""

    def __init__(self, prob: float, gain_db=(-20.0, 10.0)):
        self.prob, self.gain_db = prob, tuple(map(float, gain_db))

    def draw(self, rng: random.Random, n: int) -> float | None:
        """-> amplitude factor, or None (not fired)."""
        if self.prob <= 0 or rng.random() >= self.prob:
            return None
        return 10 ** (rng.uniform(*self.gain_db) / 20)

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        factor = self.draw(rng, wave.numel())
        return wave if factor is None else wave * factor


class Clip:
    """Hard clipping at a random fraction of the utterance's peak."""

    def __init__(self, prob: float, ratio=(0.3, 0.9)):
        self.prob, self.ratio = prob, tuple(map(float, ratio))

    def draw(self, rng: random.Random, n: int) -> float | None:
        """-> threshold as a fraction of the peak, or None (not fired)."""
        if self.prob <= 0 or rng.random() >= self.prob or n == 0:
            return None
        return rng.uniform(*self.ratio)

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        ratio = self.draw(rng, wave.numel())
        if ratio is None:
            return wave
        threshold = ratio * float(wave.abs().max())
        return wave.clamp(-threshold, threshold)

"""Speaking rate and voice: tempo without pitch change, pitch without duration change (phase vocoder)."""

from __future__ import annotations

import math
import random

import torch
import torchaudio.functional as AF

from asr.data.augment.common import SAMPLE_RATE

N_FFT = 512  # 32 ms window
HOP = 128  # 8 ms, 75% overlap: the phase vocoder's artefacts grow with the hop


def stretch(wave: torch.Tensor, rate: float) -> torch.Tensor:
    """(N,) -> (about N / rate,) same pitch; rate > 1 is faster."""
    window = torch.hann_window(N_FFT)
    spec = torch.stft(wave, N_FFT, HOP, window=window, return_complex=True)  # (F, T)
    advance = torch.linspace(0, math.pi * HOP, spec.shape[0])[:, None]  # expected phase advance per hop, (F, 1)
    stretched = AF.phase_vocoder(spec, rate, advance)  # (F, ceil(T / rate))
    return torch.istft(stretched, N_FFT, HOP, window=window, length=int(round(wave.numel() / rate)))


class Tempo:
    """Change speaking rate by a random factor, keeping pitch; the length changes (N / factor)."""

    def __init__(self, prob: float, factor=(0.85, 1.15)):
        self.prob, self.factor = prob, tuple(map(float, factor))

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.prob <= 0 or rng.random() >= self.prob or wave.numel() < N_FFT:
            return wave
        return stretch(wave, rng.uniform(*self.factor))


class Pitch:
    """Shift pitch by random semitones, keeping duration: stretch by 1/ratio, then resample by ratio."""

    def __init__(self, prob: float, semitones=(-3.0, 3.0)):
        self.prob, self.semitones = prob, tuple(map(float, semitones))

    def __call__(self, wave: torch.Tensor, rng: random.Random) -> torch.Tensor:
        if self.prob <= 0 or rng.random() >= self.prob or wave.numel() < N_FFT:
            return wave
        ratio = 2 ** (rng.uniform(*self.semitones) / 12)
        # ratio rounded to steps of 1/40 (0.4 semitone): a small rate pair keeps the resampling filter short
        up = max(1, round(40 * ratio))
        longer = stretch(wave, 40 / up)  # (N * up / 40,)
        shifted = AF.resample(longer, up, 40)  # back to N samples, every frequency times up / 40
        n = wave.numel()
        return torch.nn.functional.pad(shifted[:n], (0, max(0, n - shifted.numel())))

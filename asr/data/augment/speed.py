"""Speed perturbation (Kaldi's): resample so that speech is ``factor`` times faster, pitch
and tempo together; the loader (one utterance) and the device path (a batch) share it."""

from __future__ import annotations

import math

import torch
import torchaudio.functional as AF


def speed_rates(factor: float, sample_rate: int) -> tuple[int, int]:
    """-> (orig, new) rates for ``torchaudio.functional.resample``: faster = fewer samples."""
    return int(round(sample_rate * factor)), sample_rate


def speed_perturb(wave: torch.Tensor, factor: float, sample_rate: int) -> torch.Tensor:
    """(..., N) -> (..., N') with N' = :func:`speed_length` (N); factor 1 returns ``wave``."""
    if factor == 1.0:
        return wave
    return AF.resample(wave, *speed_rates(factor, sample_rate))


def speed_length(n: int, factor: float, sample_rate: int) -> int:
    """Samples that :func:`speed_perturb` makes of ``n``: ceil(n * new / orig), rates over their gcd."""
    if factor == 1.0:
        return n
    orig, new = speed_rates(factor, sample_rate)
    gcd = math.gcd(orig, new)
    return math.ceil(n * (new // gcd) / (orig // gcd))

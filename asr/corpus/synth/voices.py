"""New speakers from existing voices: vocal-tract-length (formant) warping and pitch shifting,
both keeping the duration (exactly: the output has as many samples as the input).

* Pitch: a phase-vocoder time stretch by the factor, then resampling back to the old
  length; harmonics and formants both move by the factor.
* Formants: the spectral envelope of each STFT frame (low-quefrency cepstrum, so it is
  blind to the harmonics) is stretched along the frequency axis; each bin is scaled by
  the ratio of the new envelope to the old, and the original phases are kept, so the
  harmonics (the pitch) stay where they are.

:func:`warp` combines them: pitch x ``pitch`` and formants x ``warp``, independently.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch
import torchaudio.functional as AF

N_FFT = 512  # 32 ms at 16 kHz
HOP = 128
LIFTER_SECONDS = 0.0019  # cepstral cut-off (30 samples at 16 kHz): envelopes of voices up to ~500 Hz pitch
MAX_GAIN = 100.0  # a bin is amplified at most 40 dB (warping down pulls in near-silent high bands)


def _stft(wave: torch.Tensor) -> torch.Tensor:
    """(N,) -> (F, T) complex, F = N_FFT // 2 + 1."""
    return torch.stft(wave, N_FFT, HOP, window=torch.hann_window(N_FFT), return_complex=True)


def _istft(spec: torch.Tensor, length: int) -> torch.Tensor:
    return torch.istft(spec, N_FFT, HOP, window=torch.hann_window(N_FFT), length=length)


def shift_pitch(wave: torch.Tensor, sample_rate: int, factor: float) -> torch.Tensor:
    """(N,) -> (N,): every frequency (pitch and formants) times ``factor`` (about, to 1/64)."""
    if factor == 1.0:
        return wave
    ratio = Fraction(1.0 / factor).limit_denominator(64)  # resampling new/old rate = 1 / pitch factor
    spec = _stft(wave)  # (F, T)
    advance = torch.linspace(0, math.pi * HOP, spec.shape[0])[:, None]  # (F, 1) expected phase advance per hop
    stretched = AF.phase_vocoder(spec, float(ratio), advance)  # (F, T / ratio): duration x factor
    longer = _istft(stretched, round(wave.numel() / float(ratio)))
    shifted = AF.resample(longer, ratio.denominator, ratio.numerator)  # back to ~N samples, frequencies x factor
    return _fit(shifted, wave.numel())


def _fit(wave: torch.Tensor, length: int) -> torch.Tensor:
    """Trim or zero-pad (N',) to (length,)."""
    if wave.numel() >= length:
        return wave[:length]
    return torch.nn.functional.pad(wave, (0, length - wave.numel()))


def _envelope(log_magnitude: torch.Tensor, lifter: int) -> torch.Tensor:
    """(F, T) log magnitudes -> (F, T) smooth log spectral envelope (cepstral liftering)."""
    cepstrum = torch.fft.irfft(log_magnitude, n=N_FFT, dim=0)  # (N_FFT, T), real and even
    keep = torch.zeros(N_FFT, 1)
    keep[:lifter] = 1.0
    keep[N_FFT - lifter + 1 :] = 1.0  # the mirrored half of the even cepstrum
    return torch.fft.rfft(cepstrum * keep, dim=0).real  # (F, T)


def stretch_frequency(envelope: torch.Tensor, factor: float) -> torch.Tensor:
    """(F, T) -> (F, T): features along frequency times ``factor`` (new bin k reads old bin
    k / factor, linearly interpolated; past the top the last bin is repeated)."""
    if factor == 1.0:
        return envelope
    bins = envelope.shape[0]
    source = (torch.arange(bins, dtype=torch.float32) / factor).clamp(max=bins - 1)
    low = source.floor().long()
    high = (low + 1).clamp(max=bins - 1)
    frac = (source - low)[:, None]  # (F, 1)
    return envelope[low] * (1 - frac) + envelope[high] * frac


def shift_formants(wave: torch.Tensor, sample_rate: int, factor: float) -> torch.Tensor:
    """(N,) -> (N,): spectral envelope (formants) times ``factor`` along frequency; pitch kept."""
    if factor == 1.0:
        return wave
    spec = _stft(wave)  # (F, T)
    envelope = _envelope(spec.abs().clamp_min(1e-7).log(), max(2, round(LIFTER_SECONDS * sample_rate)))
    gain = (stretch_frequency(envelope, factor) - envelope).exp().clamp(max=MAX_GAIN)
    return _istft(spec * gain, wave.numel())


def warp(wave: torch.Tensor, sample_rate: int, warp: float = 1.0, pitch: float = 1.0) -> torch.Tensor:
    """(N,) -> (N,): a new speaker from ``wave``: pitch x ``pitch``, formants x ``warp``
    (vocal-tract length / warp), same duration. Factors near 1 (0.8..1.25) sound natural."""
    if not (0.5 <= warp <= 2.0 and 0.5 <= pitch <= 2.0):
        raise ValueError(f"warp {warp} and pitch {pitch} must lie in 0.5..2")
    wave = wave.to(torch.float32)
    if pitch != 1.0:
        wave = shift_pitch(wave, sample_rate, pitch)  # formants moved by the pitch factor too ...
    formants = warp / pitch  # ... so the envelope moves by the rest
    if abs(formants - 1.0) > 1e-3:
        wave = shift_formants(wave, sample_rate, formants)
    return wave

"""Log-mel features in numpy, equal to the torch front end (:class:`asr.model.features.LogMel`,
torchaudio's ``MelSpectrogram``) within 1e-4: a periodic Hann window of ``n_fft`` samples,
no centre padding (frame ``t`` reads samples ``[t * hop, t * hop + n_fft)``), the power
spectrum, a triangular mel filterbank (HTK scale unnormalized, or Slaney's scale with area
normalization), then ``ln(mel + 1e-6)``.

Computed in float64 and returned as float32: the torch path's float32 arithmetic is the
one that rounds.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

FLOOR = 1e-6  # added to the mel power before the log, as in the torch front end
BLOCK = 2048  # frames transformed at once (20 s at a 10 ms hop): memory stays flat on long files


def hz_to_mel(hz: np.ndarray, scale: str) -> np.ndarray:
    hz = np.asarray(hz, dtype=np.float64)
    if scale == "htk":
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    # Slaney: linear below 1 kHz (200/3 Hz per mel), logarithmic above (27 mels per ln 6.4)
    linear, knee, step = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    return np.where(hz < knee, hz / linear, knee / linear + np.log(np.maximum(hz, knee) / knee) / step)


def mel_to_hz(mel: np.ndarray, scale: str) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    if scale == "htk":
        return 700.0 * (10.0 ** (mel / 2595.0) - 1.0)
    linear, knee, step = 200.0 / 3, 1000.0, np.log(6.4) / 27.0
    return np.where(mel < knee / linear, mel * linear, knee * np.exp(step * (mel - knee / linear)))


def mel_filterbank(sample_rate: int, n_fft: int, n_mels: int, scale: str = "htk") -> np.ndarray:
    """(n_fft // 2 + 1, n_mels) triangles from 0 Hz to the Nyquist frequency, evenly spaced in mels."""
    bins = np.linspace(0, sample_rate // 2, n_fft // 2 + 1)  # (K,) the FFT bins' frequencies
    edges = mel_to_hz(np.linspace(hz_to_mel(0.0, scale), hz_to_mel(sample_rate / 2, scale), n_mels + 2), scale)
    widths = np.diff(edges)  # (n_mels + 1,)
    offsets = edges[None, :] - bins[:, None]  # (K, n_mels + 2)
    rising = -offsets[:, :-2] / widths[:-1]  # (K, n_mels): from the lower edge up to the centre
    falling = offsets[:, 2:] / widths[1:]  # (K, n_mels): from the centre down to the upper edge
    bank = np.maximum(0.0, np.minimum(rising, falling))
    if scale == "slaney":
        bank *= 2.0 / (edges[2:] - edges[:-2])  # each triangle's area: 1
    return bank


def hann_float32(n: int) -> np.ndarray:
    """The periodic Hann window as torch computes it, in float32 (as float64): near silence
    the log-mel is so sensitive that the window's last bit moves it by 1e-4 (a window exact
    in float64 puts 1.8e-4 between this front end and torch's on espeak-ng's digital silence)."""
    phase = np.arange(n, dtype=np.float32) * np.float32(2 * np.pi / n)
    return (np.float32(0.5) - np.float32(0.5) * np.cos(phase)).astype(np.float64)


class LogMel:
    """(N,) waveform -> (T, n_mels) float32 log-mel, T = (N - n_fft) // hop + 1 (at least 1:
    audio shorter than one window is zero-padded to one)."""

    def __init__(self, sample_rate: int, n_fft: int, hop_length: int, n_mels: int, mel: str = "htk"):
        if mel not in ("htk", "slaney"):
            raise ValueError(f"mel scale must be htk or slaney, not {mel!r}")
        self.n_fft, self.hop_length = n_fft, hop_length
        self.window = hann_float32(n_fft)
        self.bank = mel_filterbank(sample_rate, n_fft, n_mels, mel)  # (K, n_mels)

    def num_frames(self, num_samples: int) -> int:
        """Valid frames of ``num_samples`` samples (0 for audio shorter than one window)."""
        return max((num_samples - self.n_fft) // self.hop_length + 1, 0)

    def __call__(self, wave: np.ndarray) -> np.ndarray:
        wave = np.asarray(wave, dtype=np.float64)
        if wave.size < self.n_fft:
            wave = np.pad(wave, (0, self.n_fft - wave.size))
        frames = sliding_window_view(wave, self.n_fft)[:: self.hop_length]  # (T, n_fft), a view
        out = np.empty((len(frames), self.bank.shape[1]), np.float32)
        for start in range(0, len(frames), BLOCK):
            power = np.abs(np.fft.rfft(frames[start : start + BLOCK] * self.window, axis=1)) ** 2  # (<=BLOCK, K)
            out[start : start + BLOCK] = np.log(power @ self.bank + FLOOR)  # (<=BLOCK, n_mels)
        return out

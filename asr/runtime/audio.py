"""Audio files to mono float32 at the model's rate, without torch: soundfile reads, numpy
resamples with the same windowed-sinc polyphase filter as the torch path
(``torchaudio.functional.resample``'s defaults: Hann window, 6 zero crossings, roll-off 0.99),
so both paths feed the model the same samples (within float rounding)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import soundfile as sf
from numpy.lib.stride_tricks import sliding_window_view

ZERO_CROSSINGS = 6  # of the sinc on each side
ROLLOFF = 0.99  # cutoff as a fraction of the lower Nyquist frequency
MAX_PHASES = 1_000_000  # (rate / gcd) x (target / gcd) above this: read at a rounded rate


class AudioError(RuntimeError):
    """A file that cannot be used; ``str(err)`` is one line naming it."""


def source_rate(rate: int, target: int) -> int:
    """The rate to resample from: ``rate`` when its filter is small, else the nearest multiple
    of the smallest divisor of ``target`` that is at least ``rate / 1000`` (a speed change
    under 0.13%, as the torch path's :func:`asr.audio.read.resampling_rate` does)."""
    gcd = math.gcd(rate, target)
    if (rate // gcd) * (target // gcd) <= MAX_PHASES:
        return rate
    step = next((d for d in range(1, target + 1) if target % d == 0 and d * 1000 >= rate), target)
    return max(step, round(rate / step) * step)


def resample(wave: np.ndarray, rate: int, target: int) -> np.ndarray:
    """(N,) at ``rate`` -> (ceil(N * target / rate),) float32 at ``target``: output block ``i``
    (``new`` samples) is the input around samples ``[i * orig, (i + 1) * orig)`` times ``new``
    sinc kernels, one per output phase (``orig``, ``new``: the rates over their gcd). In
    float32 with torchaudio's order of operations: within 2e-7 of it (float64 would put 1e-5
    between the two, which a sharp model's log-probs magnify to 1e-2)."""
    if rate == target:
        return wave
    f32 = np.float32
    gcd = math.gcd(rate, target)
    orig, new = rate // gcd, target // gcd
    cutoff = min(orig, new) * ROLLOFF
    width = math.ceil(ZERO_CROSSINGS * orig / cutoff)  # input samples each side of a block
    taps = np.arange(-width, width + orig, dtype=f32) / f32(orig)  # (K,) input positions, in blocks
    t = (np.arange(0, -new, -1, dtype=f32)[:, None] / f32(new) + taps) * f32(cutoff)  # (new, K), zero crossings
    t = np.clip(t, -ZERO_CROSSINGS, ZERO_CROSSINGS).astype(f32)
    window = np.cos(t * f32(math.pi / ZERO_CROSSINGS / 2)) ** 2
    t = t * f32(math.pi)
    with np.errstate(invalid="ignore", divide="ignore"):
        kernels = np.where(t == 0, f32(1), np.sin(t) / t) * (window * f32(cutoff / orig))  # (new, K)
    padded = np.pad(wave.astype(f32), (width, width + orig))
    blocks = sliding_window_view(padded, kernels.shape[1])[::orig]  # (N // orig + 1, K), a view
    out = (blocks @ kernels.T.astype(f32)).reshape(-1)  # (blocks * new,): block by block, phase by phase
    return out[: math.ceil(new * len(wave) / orig)].astype(f32)


def read_audio(path: str | Path, target: int = 16000) -> np.ndarray:
    """A whole file -> (N,) float32 mono at ``target``; :class:`AudioError` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise AudioError(f"{path}: {'is a directory' if path.is_dir() else 'no such file'}")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=True)  # (N, C)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioError(f"{path}: not readable audio ({str(err).split(':')[-1].strip()})") from None
    if samples.size == 0:
        raise AudioError(f"{path}: contains no audio samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    mono = samples.mean(axis=1, dtype=np.float32)  # downmix: (N, C) -> (N,)
    return resample(mono, source_rate(rate, target), target)

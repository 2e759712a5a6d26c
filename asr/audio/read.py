"""Audio input: any format soundfile reads, to mono float32 at the model's sample rate.

Every failure is an :class:`AudioError` whose message is one line naming the file.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF


MIN_RATE, MAX_RATE = 4000, 768000  # sample rates read_audio accepts (Hz)
MAX_FILTER_PHASES = 1_000_000  # (rate / gcd) x (target / gcd) above this is resampled from a rounded rate


class AudioError(RuntimeError):
    """An audio file that cannot be used; ``str(err)`` is one line naming the file."""


def resampling_rate(sample_rate: int, target_rate: int = 16000) -> int:
    """The rate to resample from: ``sample_rate`` itself when the exact filter is small, else
    the nearest multiple of the smallest divisor of ``target_rate`` that is at least
    ``sample_rate / 1000``.

    The polyphase filter has (target / gcd) x (rate / gcd) phases: 44100 Hz -> 16 kHz needs
    160 x 441, but a header claiming 44099 Hz needs 16000 x 44099 (gigabytes, minutes).
    Read as 44100 Hz instead (50 divides 16000) the speed changes by 0.002%; the rule keeps
    the change under 0.13% at any rate, which speech recognition does not notice, and the
    filter small (rate / gcd about 1000 at most) whatever a header claims.
    """
    gcd = math.gcd(sample_rate, target_rate)
    if (sample_rate // gcd) * (target_rate // gcd) <= MAX_FILTER_PHASES:
        return sample_rate
    step = next((d for d in _divisors(target_rate) if d * 1000 >= sample_rate), target_rate)
    return max(step, round(sample_rate / step) * step)


@functools.cache
def _divisors(n: int) -> tuple[int, ...]:
    return tuple(d for d in range(1, n + 1) if n % d == 0)


def to_mono_16k(samples: np.ndarray, sample_rate: int, target_rate: int = 16000) -> torch.Tensor:
    """(N,) or (N, C) samples -> (N',) float32 mono at ``target_rate``."""
    wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if wave.ndim == 2:
        wave = wave.mean(dim=1)  # downmix: (N, C) -> (N,)
    sample_rate = resampling_rate(sample_rate, target_rate)
    if sample_rate != target_rate:
        wave = AF.resample(wave, sample_rate, target_rate)
    return wave


def check_file(path: Path) -> None:
    """Raise :class:`AudioError` for a path that cannot hold audio (missing, folder, empty)."""
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")


def read_audio(path: str | Path, target_rate: int = 16000) -> torch.Tensor:
    """Read a whole file -> (N,) float32 mono waveform in [-1, 1] at ``target_rate``."""
    path = Path(path)
    check_file(path)
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        reason = str(err).split(":")[-1].strip() or "unreadable"
        raise AudioError(f"{path}: not readable audio ({reason})") from None
    except MemoryError:  # a header can claim any length
        raise AudioError(f"{path}: too large to read into memory at once") from None
    if not MIN_RATE <= rate <= MAX_RATE:
        raise AudioError(f"{path}: unsupported sample rate {rate} Hz (expected {MIN_RATE} to {MAX_RATE})")
    if samples.size == 0:
        raise AudioError(f"{path}: contains no audio samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    return to_mono_16k(samples, rate, target_rate)


def write_flac(path: str | Path, wave: torch.Tensor | np.ndarray, sample_rate: int = 16000) -> None:
    """Write (N,) float samples as 16-bit FLAC."""
    data = wave.numpy() if isinstance(wave, torch.Tensor) else wave
    sf.write(str(path), np.clip(data, -1.0, 1.0), sample_rate, subtype="PCM_16", format="FLAC")

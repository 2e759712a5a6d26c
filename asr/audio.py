"""Audio input: any format soundfile reads, to mono float32 at the model's sample rate.

Every failure is an :class:`AudioError` whose message is one line naming the file.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torchaudio.functional as AF


class AudioError(RuntimeError):
    """An audio file that cannot be used; ``str(err)`` is one line naming the file."""


def to_mono_16k(samples: np.ndarray, sample_rate: int, target_rate: int = 16000) -> torch.Tensor:
    """(N,) or (N, C) samples -> (N',) float32 mono at ``target_rate``."""
    wave = torch.from_numpy(np.ascontiguousarray(samples, dtype=np.float32))
    if wave.ndim == 2:
        wave = wave.mean(dim=1)  # downmix: (N, C) -> (N,)
    if sample_rate != target_rate:
        wave = AF.resample(wave, sample_rate, target_rate)
    return wave


def read_audio(path: str | Path, target_rate: int = 16000) -> torch.Tensor:
    """Read a whole file -> (N,) float32 mono waveform in [-1, 1] at ``target_rate``."""
    path = Path(path)
    if not path.exists():
        raise AudioError(f"{path}: no such file")
    if path.is_dir():
        raise AudioError(f"{path}: is a directory, not an audio file")
    if path.stat().st_size == 0:
        raise AudioError(f"{path}: empty file")
    try:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        reason = str(err).split(":")[-1].strip() or "unreadable"
        raise AudioError(f"{path}: not readable audio ({reason})") from None
    if samples.size == 0:
        raise AudioError(f"{path}: contains no audio samples")
    if not np.isfinite(samples).all():
        raise AudioError(f"{path}: contains NaN or infinite samples")
    return to_mono_16k(samples, rate, target_rate)


def write_flac(path: str | Path, wave: torch.Tensor | np.ndarray, sample_rate: int = 16000) -> None:
    """Write (N,) float samples as 16-bit FLAC."""
    data = wave.numpy() if isinstance(wave, torch.Tensor) else wave
    sf.write(str(path), np.clip(data, -1.0, 1.0), sample_rate, subtype="PCM_16", format="FLAC")

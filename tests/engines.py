"""Helpers for the synthesis tests (imported by test modules; pytest puts tests/ on sys.path)."""

from __future__ import annotations

import pytest
import torch

from asr.corpus.synth import ENGINES, Engine


def engine_or_skip(name: str) -> Engine:
    """The registry's engine ``name``, or the test skipped with its one-line reason."""
    engine = ENGINES[name]()
    reason = engine.unavailable()
    if reason is not None:
        pytest.skip(f"{name}: {reason}")
    return engine


def low_centroid(wave: torch.Tensor) -> float:
    """Spectral centroid below 4 kHz (where the formants are), in Hz, of a 16 kHz waveform."""
    power = torch.stft(wave, 512, 128, window=torch.hann_window(512), return_complex=True).abs()[:129] ** 2
    hz = torch.linspace(0, 4000, 129)[:, None]
    return float((power * hz).sum() / power.sum())

"""Turn recordings into test utterances: read at 16 kHz mono, cut long readings at the
quietest point near each aligned boundary, trim the silence around speech.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.audio import to_mono_16k

RATE = 16000
FRAME = 160  # 10 ms analysis frames
SNAP_S = 0.25  # an aligned boundary may move this far to the quietest frame
KEEP_S = 0.15  # silence kept before and after the speech
SILENCE_DB = 35.0  # a frame this far below the loudest frame is silence
MIN_WPS, MAX_WPS = 1.0, 5.0  # plausible words per second of a kept utterance


def load(path: Path, raw_rate: int = 0) -> np.ndarray:
    """-> (N,) float32 at 16 kHz. ``raw_rate``: headerless 16-bit mono PCM at that rate."""
    if raw_rate:
        samples, rate = sf.read(str(path), dtype="float32", format="RAW", samplerate=raw_rate,
                                channels=1, subtype="PCM_16", endian="LITTLE")
    else:
        samples, rate = sf.read(str(path), dtype="float32", always_2d=False)
    if samples.size == 0 or not np.isfinite(samples).all():
        raise ValueError(f"{path}: empty or non-finite audio")
    return to_mono_16k(samples, rate).numpy()


def _frame_db(wave: np.ndarray) -> np.ndarray:
    """(N,) -> (N // FRAME,) frame energies in dB."""
    frames = wave[: len(wave) // FRAME * FRAME].reshape(-1, FRAME)  # (F, FRAME)
    return 10 * np.log10(np.mean(frames**2, axis=1) + 1e-10)


def snap(wave: np.ndarray, seconds: float) -> int:
    """The sample index of the quietest 10 ms frame within ``SNAP_S`` of ``seconds``."""
    db = _frame_db(wave)
    centre = int(seconds * RATE) // FRAME
    reach = int(SNAP_S * RATE) // FRAME
    lo, hi = max(0, centre - reach), min(len(db), centre + reach + 1)
    if lo >= hi:
        return min(len(wave), max(0, int(seconds * RATE)))
    return (lo + int(np.argmin(db[lo:hi]))) * FRAME + FRAME // 2


def trim(wave: np.ndarray) -> np.ndarray:
    """Drop leading and trailing silence, keeping ``KEEP_S`` of it on each side."""
    db = _frame_db(wave)
    if len(db) == 0:
        return wave
    loud = np.flatnonzero(db > db.max() - SILENCE_DB)
    keep = int(KEEP_S * RATE)
    start = max(0, loud[0] * FRAME - keep)
    end = min(len(wave), (loud[-1] + 1) * FRAME + keep)
    return wave[start:end]


def plausible(text: str, seconds: float) -> bool:
    words = len(text.split())
    return seconds > 0 and MIN_WPS <= words / seconds <= MAX_WPS


def syncmap_groups(path: Path, lines_per_group: int = 2, skip_first: bool = True) -> list[tuple[float, float, str]]:
    """An aeneas JSON sync map -> [(start s, end s, text)], ``lines_per_group`` lines each.

    ``skip_first`` drops the first fragment (a reading's title, whose spoken form is unknown).
    """
    fragments = json.loads(path.read_text(encoding="utf-8"))["fragments"]
    if skip_first:
        fragments = fragments[1:]
    groups = []
    for i in range(0, len(fragments), lines_per_group):
        part = fragments[i : i + lines_per_group]
        text = " ".join(" ".join(f["lines"]) for f in part)
        groups.append((float(part[0]["begin"]), float(part[-1]["end"]), text))
    return groups

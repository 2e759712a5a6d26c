"""Pre-decoded audio shards: a manifest's audio as int16 PCM at the front end's rate, read
by memory map instead of decoding and resampling in every epoch.

A shard folder holds ``shard-00000.pcm``, ``shard-00001.pcm``, ... (raw little-endian int16,
mono, utterances back to back, a few hundred MiB each) and ``index.json``::

    {"format": "asr-shards-1", "sample_rate": 16000,
     "shards": [{"file": "shard-00000.pcm", "samples": 123456}, ...],
     "utterances": {"<id>": [shard, offset, samples], ...}}

Every file is written atomically (:func:`asr.audio.atomic.atomic_write`), the index last, so
a folder with an index is complete. Samples are ``round(x * 32768)`` clamped to int16 and
read back as ``k / 32768``: a 16-bit source at the front end's rate comes back bit-exact.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable

import numpy as np
import torch

from asr.audio.atomic import atomic_write, atomic_write_text

FORMAT = "asr-shards-1"
INDEX = "index.json"
SCALE = 32768.0  # int16 full scale; read_audio's float of a 16-bit file is exactly k / 32768
BYTES_PER_SAMPLE = 2


class ShardError(ValueError):
    """A shard folder that cannot be used; the message is one line naming the file."""


def to_pcm16(wave: torch.Tensor) -> np.ndarray:
    """(N,) float in [-1, 1] -> (N,) little-endian int16."""
    scaled = torch.round(wave.double() * SCALE).clamp(-32768, 32767)
    return scaled.numpy().astype("<i2")


def from_pcm16(pcm: np.ndarray) -> torch.Tensor:
    """(N,) int16 -> (N,) float32 ``k / 32768``."""
    return torch.from_numpy(pcm.astype(np.float32)) / SCALE


def write_shards(
    items: Iterable[tuple[str, torch.Tensor]], out: str | Path, sample_rate: int, shard_mib: float = 256.0
) -> dict:
    """(id, wave (N,) at ``sample_rate``) pairs -> shard files and ``index.json`` in ``out``; -> the index."""
    out = Path(out)
    limit = int(shard_mib * 2**20) // BYTES_PER_SAMPLE  # samples per shard
    shards: list[dict] = []
    utterances: dict[str, list[int]] = {}
    pending: list[np.ndarray] = []
    filled = 0

    def flush() -> None:
        nonlocal pending, filled
        name = f"shard-{len(shards):05d}.pcm"
        data = np.concatenate(pending) if pending else np.zeros(0, "<i2")
        atomic_write(out / name, lambda tmp: data.tofile(tmp))
        shards.append({"file": name, "samples": int(data.size)})
        pending, filled = [], 0

    for utt_id, wave in items:
        if utt_id in utterances:
            raise ShardError(f"{out}: utterance id {utt_id!r} given twice")
        if filled and filled + wave.numel() > limit:
            flush()
        pcm = to_pcm16(wave)
        utterances[utt_id] = [len(shards), filled, int(pcm.size)]
        pending.append(pcm)
        filled += pcm.size
    if pending:
        flush()
    index = {"format": FORMAT, "sample_rate": sample_rate, "shards": shards, "utterances": utterances}
    atomic_write_text(out / INDEX, json.dumps(index, separators=(",", ":")))
    return index


class ShardReader:
    """Waveforms by utterance id from one or more shard folders, by memory map.

    Opening checks every shard named by the indexes: present, and exactly as long as its
    index says (a truncated copy is a :class:`ShardError` naming it). Picklable for loader
    workers: each process maps the files itself, on first use.
    """

    def __init__(self, folders: Iterable[str | Path], sample_rate: int):
        self.files: list[Path] = []
        self.where: dict[str, tuple[int, int, int]] = {}  # id -> (file number, offset, samples)
        for folder in map(Path, folders):
            index = _read_index(folder / INDEX, sample_rate)
            base = len(self.files)
            for shard in index["shards"]:
                path = folder / shard["file"]
                _check_size(path, int(shard["samples"]))
                self.files.append(path)
            for utt_id, (number, offset, samples) in index["utterances"].items():
                self.where.setdefault(utt_id, (base + int(number), int(offset), int(samples)))
        self._maps: dict[int, np.memmap] = {}

    def __contains__(self, utt_id: str) -> bool:
        return utt_id in self.where

    def __len__(self) -> int:
        return len(self.where)

    def read(self, utt_id: str) -> torch.Tensor:
        """-> (N,) float32 of ``utt_id``; KeyError when no index holds it."""
        number, offset, samples = self.where[utt_id]
        mapped = self._maps.get(number)
        if mapped is None:
            mapped = self._maps[number] = np.memmap(self.files[number], dtype="<i2", mode="r")
        pcm = mapped[offset : offset + samples]
        if pcm.size != samples:
            raise ShardError(f"{self.files[number]}: shard truncated ({utt_id} ends past its end)")
        return from_pcm16(pcm)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_maps": {}}  # memory maps are not pickled: each worker opens its own


def _read_index(path: Path, sample_rate: int) -> dict:
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ShardError(f"{path}: no shard index (write one with python -m asr.cli.shards)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ShardError(f"{path}: unreadable shard index ({err})") from None
    if not isinstance(index, dict) or index.get("format") != FORMAT:
        raise ShardError(f"{path}: not a shard index of format {FORMAT}")
    if index.get("sample_rate") != sample_rate:
        raise ShardError(f"{path}: shards at {index.get('sample_rate')} Hz, the front end needs {sample_rate} Hz")
    return index


def _check_size(path: Path, samples: int) -> None:
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise ShardError(f"{path}: shard missing (its index names it)") from None
    if size != samples * BYTES_PER_SAMPLE:
        expected = samples * BYTES_PER_SAMPLE
        raise ShardError(f"{path}: shard truncated or damaged ({size} bytes, its index says {expected})")


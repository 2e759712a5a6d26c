"""Hostile audio for the soak: generated files through every reader of the project.

Each case is a function of ``(seed, index)``: well-formed audio (WAV 8 to 32-bit and float,
FLAC, 8 to 48 kHz and uncommon rates, 1 to 8 channels, shorter than one frame to half a
second, silence, noise, tones, beyond full scale) and broken files (NaN and infinite
samples, headers with no samples, empty, random bytes, truncated, bytes overwritten, a real
magic number before garbage, WAV headers claiming absurd rates and channel counts). Readers:

- ``file``: :func:`asr.audio.read.read_audio` (finite mono of the right length, or refused)
- ``stream``: :func:`asr.audio.sources.file_blocks`, every block
- ``loader``: the training loader (:class:`asr.data.batch.UtteranceDataset` + ``collate``)
- ``stdin``: :func:`asr.audio.sources.stream_blocks` on the file's bytes (WAV) or raw PCM
- ``transcribe``: ``transcribe.py``'s ``main(argv)`` on groups of files and a good control
  file: each input gets a transcript line or one ``error:`` line naming it, never both.
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from asr.bench.fuzz_core import LOST, OK, REFUSED, WORDS, Tally

LAYOUTS = [("WAV", s) for s in ("PCM_U8", "PCM_16", "PCM_24", "PCM_32", "FLOAT", "DOUBLE")] + [
    ("FLAC", s) for s in ("PCM_S8", "PCM_16", "PCM_24")
]
RATES = [8000, 11025, 16000, 22050, 44100, 48000]
KINDS = ["audio"] * 4 + ["nonfinite", "no_frames", "empty", "random", "truncated", "overwritten", "magic", "header"]
MAGIC = [b"RIFF\x24\x00\x00\x00WAVEfmt \x10\x00\x00\x00", b"fLaC", b"OggS\x00\x02", b"FORM\x00\x00\x10\x00AIFFCOMM",
         b".snd\x00\x00\x00\x18"]  # fmt: skip
GROUP = 12  # files per transcribe.py run (plus the control file)


@dataclass(frozen=True)
class AudioCase:
    kind: str
    path: Path
    rate: int = 16000
    frames: int = 0
    layout: tuple[str, str] = ("WAV", "PCM_16")
    silent: bool = False

    @property
    def good(self) -> bool:
        return self.kind == "audio"

    @property
    def bad(self) -> bool:
        """Must be refused by every reader."""
        return self.kind in ("nonfinite", "no_frames", "empty")


def make_case(folder: Path, index: int, rng: np.random.Generator) -> AudioCase:
    """Write case ``index`` under ``folder`` -> what it is."""
    import soundfile as sf

    kind = KINDS[rng.integers(len(KINDS))]
    layout = LAYOUTS[rng.integers(len(LAYOUTS))]
    if kind == "nonfinite":  # only float samples hold NaN or infinity
        layout = ("WAV", ("FLOAT", "DOUBLE")[rng.integers(2)])
    path = folder / f"a{index}{'.flac' if layout[0] == 'FLAC' else '.wav'}"
    rate = int(RATES[rng.integers(len(RATES))] if rng.random() < 0.7 else rng.integers(8000, 48001))
    channels = int(rng.integers(1, 9 if layout[0] == "FLAC" else 17)) if rng.random() < 0.3 else 1
    frames = 0 if kind == "no_frames" else int(rng.integers(1, 200) if rng.random() < 0.2 else rng.integers(400, 8000))
    signal = rng.integers(4)  # silence, noise, tone, beyond full scale
    if kind in ("empty", "random", "magic", "header"):
        path.write_bytes(_raw_bytes(kind, rng))
        return AudioCase(kind, path)
    t = np.arange(frames)[:, None] / rate
    x = [np.zeros((frames, channels)), 0.3 * rng.standard_normal((frames, channels)),
         0.5 * np.sin(2 * np.pi * 440 * t * np.arange(1, channels + 1)), 3.0 * rng.standard_normal((frames, channels))
         ][signal]  # fmt: skip
    if kind == "nonfinite":
        x[rng.integers(frames), rng.integers(channels)] = (np.nan, np.inf, -np.inf)[rng.integers(3)]
    sf.write(path, x, rate, subtype=layout[1], format=layout[0])
    if kind in ("truncated", "overwritten"):
        data = bytearray(path.read_bytes())
        if kind == "truncated":
            data = data[: max(1, int(len(data) * rng.uniform(0.05, 0.95)))]
        else:
            for _ in range(rng.integers(1, 20)):
                data[rng.integers(len(data))] = rng.integers(256)
        path.write_bytes(bytes(data))
    return AudioCase(kind, path, rate, frames, layout, silent=signal == 0)


def _raw_bytes(kind: str, rng: np.random.Generator) -> bytes:
    if kind == "empty":
        return b""
    garbage = rng.bytes(int(rng.integers(1, 3000)))
    if kind == "random":
        return garbage
    if kind == "magic":
        return MAGIC[rng.integers(len(MAGIC))] + garbage
    # a well-formed WAV header claiming any rate (1 Hz to 4 GHz) and up to 65535 channels
    rate = int(rng.integers(1, 2**32 - 1)) if rng.random() < 0.5 else int(rng.integers(1, 200000))
    channels, bits = int(rng.integers(1, 65536)), int((8, 16, 24, 32)[rng.integers(4)])
    align = max(1, channels * bits // 8) & 0xFFFF
    fmt = struct.pack("<HHIIHH", 1, channels, rate, (rate * align) & 0xFFFFFFFF, align, bits)
    data = garbage[: len(garbage) - len(garbage) % align] if align <= len(garbage) else garbage
    body = b"WAVEfmt " + struct.pack("<I", 16) + fmt + b"data" + struct.pack("<I", len(data)) + data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _clear(err: Exception, name: str) -> bool:
    """The project's own error: one line naming the input."""
    text = str(err)
    return text.startswith(f"{name}: ") and "\n" not in text


def check_file(case: AudioCase) -> str:
    import torch

    from asr.audio.read import AudioError, read_audio

    try:
        wave = read_audio(case.path)
    except AudioError as err:
        if not _clear(err, str(case.path)):
            raise
        return LOST if case.good else REFUSED
    if case.bad or wave.ndim != 1 or wave.dtype != torch.float32 or not torch.isfinite(wave).all():
        return LOST
    if case.good:
        expected = case.frames * 16000 / case.rate
        if abs(wave.numel() - expected) > 1 + 0.01 * expected or (case.silent and wave.any()):
            return LOST
    return OK


def check_stream(case: AudioCase) -> str:
    from asr.audio.read import AudioError
    from asr.audio.sources import file_blocks

    try:
        samples = sum(block.numel() for block in file_blocks(case.path))
    except AudioError as err:
        if not _clear(err, str(case.path)):
            raise
        return LOST if case.good else REFUSED
    if case.bad:
        return LOST
    expected = case.frames * 16000 / case.rate
    return LOST if case.good and abs(samples - expected) > 2 + 0.01 * expected else OK


def check_loader(case: AudioCase, tokenizer) -> str:
    from asr.data.batch import Unusable, UtteranceDataset, collate
    from asr.data.manifest import Entry

    dataset = UtteranceDataset([Entry(case.path.stem, str(case.path), 0.5, "RED CAT")], tokenizer)
    item = dataset[0]
    batch = collate([item])
    if isinstance(item, Unusable):
        if not batch.skipped or batch.ids or not _clear(Exception(item.reason), str(case.path)):
            raise AssertionError(f"unusable item not reported as such: {item}")
        return LOST if case.good else REFUSED
    return LOST if case.bad or batch.ids != (case.path.stem,) else OK


def check_stdin(case: AudioCase) -> str:
    """The file's bytes as a WAV stream on standard input (FLAC and 64-bit float are not
    streamable: those may be refused, and are then counted as refused)."""
    from asr.audio.read import AudioError
    from asr.audio.sources import stream_blocks

    streamable = case.layout[0] == "WAV" and case.layout[1] != "DOUBLE"
    try:
        samples = sum(block.numel() for block in stream_blocks(io.BytesIO(case.path.read_bytes()), "-"))
    except AudioError as err:
        if not _clear(err, "-"):
            raise
        return LOST if case.good and streamable else REFUSED
    if case.kind in ("nonfinite", "empty"):  # a WAV stream with no samples is silence, not an error
        return LOST
    expected = case.frames * 16000 / case.rate
    return LOST if case.good and abs(samples - expected) > 2 + 0.01 * expected else OK


def check_raw_stdin(data: bytes, rate: int, good: bool) -> str:
    """Raw 16-bit PCM on standard input (``--raw-rate``): any bytes are read or refused."""
    from asr.audio.read import AudioError
    from asr.audio.sources import PcmFormat, stream_blocks

    try:
        samples = sum(block.numel() for block in stream_blocks(io.BytesIO(data), "-", PcmFormat(rate)))
    except AudioError as err:
        if not _clear(err, "-"):
            raise
        return LOST if good else REFUSED
    expected = len(data) // 2 * 16000 / rate
    return LOST if good and abs(samples - expected) > 2 + 0.01 * expected else OK


def soak_audio(
    folder: Path, count: int, rng: np.random.Generator, tally: Tally, transcribe: Callable[[list[AudioCase]], None]
) -> None:
    """``count`` generated files through every reader, and in groups of :data:`GROUP` through
    ``transcribe`` (the command line: :func:`asr.bench.fuzz_cli.run_transcribe`)."""
    from asr.text.tokenizer import Tokenizer

    tokenizer = Tokenizer.train([" ".join(WORDS)], 64, "char")
    folder.mkdir(parents=True, exist_ok=True)
    group: list[AudioCase] = []
    for index in range(count):
        case = make_case(folder, index, rng)
        what = f"{case.kind} {case.layout} {case.rate} Hz {case.frames} frames ({case.path.name})"
        tally.run(case.kind, "file", lambda: check_file(case), what)
        tally.run(case.kind, "stream", lambda: check_stream(case), what)
        tally.run(case.kind, "loader", lambda: check_loader(case, tokenizer), what)
        tally.run(case.kind, "stdin", lambda: check_stdin(case), what)
        group.append(case)
        if len(group) == GROUP or index == count - 1:
            transcribe(group)
            for done in group:
                done.path.unlink(missing_ok=True)
            group = []


def soak_raw_stdin(count: int, rng: np.random.Generator, tally: Tally) -> None:
    """Raw PCM streams: whole 16-bit samples (good) or any bytes, at any rate from 4 kHz."""
    for _ in range(count):
        good = bool(rng.random() < 0.5)
        rate = int(RATES[rng.integers(len(RATES))] if rng.random() < 0.7 else rng.integers(4000, 96001))
        n = int(rng.integers(0, 8000))
        data = (0.3 * rng.standard_normal(n) * 32767).astype("<i2").tobytes() if good else rng.bytes(n)
        good = good and n > 0
        tally.run("raw pcm", "stdin", lambda: check_raw_stdin(data, rate, good), f"{n} bytes at {rate} Hz")


def write_control(path: Path) -> Path:
    """A good half second of noise, transcribed in every ``transcribe.py`` run."""
    import soundfile as sf

    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(8000), 16000)
    return path


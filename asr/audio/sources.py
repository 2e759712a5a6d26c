"""Audio sources that yield blocks, never a whole file: mono float32 at the model's rate.

Every failure is an :class:`asr.audio.AudioError` naming the input. A failure part-way
through (a truncated file, garbage in a stream) is raised *after* the blocks read before
it were yielded, so a consumer keeps what was already transcribed.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterator

import numpy as np
import soundfile as sf
import torch

from asr.audio.read import MAX_RATE, MIN_RATE, AudioError, check_file, resampling_rate
from asr.audio.resample import StreamingResampler

FILE_BLOCK_SECONDS = 0.5  # file reads: few calls, and little lost when a file breaks off mid-block
STREAM_BLOCK_SECONDS = 0.1  # live input: small blocks, low latency
UNKNOWN_SIZE_MIN = 0x7FFFF000  # WAV writers on pipes (arecord, sox, ffmpeg) put 0 or a huge size in the header


def _known(data_size: int) -> bool:
    """Whether a WAV header's data size is a real length, not a streaming placeholder."""
    return 0 < data_size < UNKNOWN_SIZE_MIN


def _mono(samples: np.ndarray) -> torch.Tensor:
    """(N, C) float32 -> (N,) float32 mean over channels."""
    return torch.from_numpy(np.ascontiguousarray(samples.mean(axis=1), dtype=np.float32))


def _reason(err: Exception) -> str:
    return str(err).split(":")[-1].strip().rstrip(".") or "unreadable"


def audio_info(path: str | Path) -> sf._SoundFileInfo:
    """Header of an audio file (frames, rate, channels) or :class:`AudioError`."""
    path = Path(path)
    check_file(path)
    try:
        info = sf.info(str(path))
    except (sf.LibsndfileError, RuntimeError, ValueError) as err:
        raise AudioError(f"{path}: not readable audio ({_reason(err)})") from None
    if info.frames == 0:
        raise AudioError(f"{path}: contains no audio samples")
    if not MIN_RATE <= info.samplerate <= MAX_RATE:
        raise AudioError(f"{path}: unsupported sample rate {info.samplerate} Hz (expected {MIN_RATE} to {MAX_RATE})")
    return info


def _wav_declared_bytes(path: Path) -> tuple[int, int] | None:
    """-> (declared data bytes, bytes present) of a RIFF/WAVE file's data chunk, or None.

    libsndfile silently shortens a WAV whose data chunk is cut off; the header still says
    how long it should be.
    """
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        while True:
            chunk = f.read(8)
            if len(chunk) < 8:
                return None
            chunk_id, chunk_size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
            if chunk_id == b"data":
                return chunk_size, size - f.tell()
            f.seek(chunk_size + (chunk_size & 1), 1)


def file_blocks(
    path: str | Path, target_rate: int = 16000, block_seconds: float = FILE_BLOCK_SECONDS
) -> Iterator[torch.Tensor]:
    """Read ``path`` block by block -> (N_i,) float32 mono blocks at ``target_rate``."""
    path = Path(path)
    info = audio_info(path)
    resampler = StreamingResampler(resampling_rate(info.samplerate, target_rate), target_rate)
    read = 0
    error = None
    try:
        with sf.SoundFile(str(path)) as f:
            blocksize = max(1, int(block_seconds * info.samplerate))
            for samples in f.blocks(blocksize=blocksize, dtype="float32", always_2d=True):
                if not np.isfinite(samples).all():
                    error = AudioError(f"{path}: contains NaN or infinite samples (at {read / info.samplerate:.2f} s)")
                    break
                read += len(samples)
                out = resampler.process(_mono(samples))
                if out.numel():
                    yield out
    except (sf.LibsndfileError, RuntimeError) as err:
        error = AudioError(f"{path}: unreadable after {read / info.samplerate:.2f} s ({_reason(err)}; truncated?)")
    if error is None and info.format == "WAV":
        declared = _wav_declared_bytes(path)
        if declared is not None and _known(declared[0]) and declared[0] > declared[1]:
            error = AudioError(
                f"{path}: truncated: the header announces {declared[0]} bytes of audio, the file holds {declared[1]}"
            )
    if error is None and read < info.frames:
        error = AudioError(f"{path}: truncated: {read} of {info.frames} samples readable")
    tail = resampler.flush()
    if tail.numel():
        yield tail
    if error is not None:
        raise error


class _Reader:
    """Exact-size reads from a byte stream, returning early only at end of stream."""

    def __init__(self, stream: BinaryIO):
        self.stream = stream
        self.read1 = getattr(stream, "read1", stream.read)

    def exact(self, n: int) -> bytes:
        parts, got = [], 0
        while got < n:
            part = self.stream.read(n - got)
            if not part:
                break
            parts.append(part)
            got += len(part)
        return b"".join(parts)

    def skip(self, n: int) -> int:
        """Discard ``n`` bytes in bounded pieces -> how many there were."""
        skipped = 0
        while skipped < n:
            part = self.stream.read(min(n - skipped, 1 << 16))
            if not part:
                break
            skipped += len(part)
        return skipped

    def some(self, n: int) -> bytes:
        """Up to ``n`` bytes, as soon as any are available (live input)."""
        return self.read1(n)


@dataclass(frozen=True)
class PcmFormat:
    """Layout of interleaved PCM samples in a byte stream."""

    sample_rate: int
    channels: int = 1
    sample_bytes: int = 2  # 1 (unsigned), 2, 3 or 4 (signed integers) or 4 (float)
    is_float: bool = False

    @property
    def frame_bytes(self) -> int:
        return self.channels * self.sample_bytes

    def decode(self, data: bytes) -> np.ndarray:
        """Whole frames of bytes -> (N, C) float32 in [-1, 1]."""
        if self.is_float:
            samples = np.frombuffer(data, dtype="<f4")
        elif self.sample_bytes == 1:
            samples = (np.frombuffer(data, dtype=np.uint8).astype(np.float32) - 128) / 128
        elif self.sample_bytes == 3:  # 24-bit: place the three bytes in the top of an int32
            raw = np.frombuffer(data, dtype=np.uint8).reshape(-1, 3)
            padded = np.zeros((len(raw), 4), dtype=np.uint8)
            padded[:, 1:] = raw
            samples = padded.view("<i4")[:, 0] / 2.0**31
        else:
            kind = {2: "<i2", 4: "<i4"}[self.sample_bytes]
            samples = np.frombuffer(data, dtype=kind) / float(2 ** (8 * self.sample_bytes - 1))
        return samples.astype(np.float32, copy=False).reshape(-1, self.channels)


def _chunk_id_ok(chunk_id: bytes) -> bool:
    return len(chunk_id) == 4 and all(32 <= b < 127 for b in chunk_id)


def read_wav_header(reader: _Reader, name: str) -> tuple[PcmFormat, int | None]:
    """Parse a RIFF/WAVE header up to the data chunk -> (format, data bytes or None if unknown)."""
    head = reader.exact(12)
    if len(head) < 12 or head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        shown = head[:12] if head else b"(nothing)"
        raise AudioError(f"{name}: not a WAV stream (starts with {shown!r}); for raw 16-bit PCM give its rate")
    fmt = None
    while True:
        chunk = reader.exact(8)
        if len(chunk) < 8:
            raise AudioError(f"{name}: WAV stream ends before its audio data")
        chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if not _chunk_id_ok(chunk_id):
            raise AudioError(f"{name}: malformed WAV header (chunk id {chunk_id!r})")
        if chunk_id == b"data":
            if fmt is None:
                raise AudioError(f"{name}: malformed WAV header (audio data before the 'fmt ' chunk)")
            return fmt, size if _known(size) else None
        body = reader.exact(size + (size & 1))
        if chunk_id == b"fmt ":
            fmt = _parse_fmt(body[:size], name)


def _parse_fmt(body: bytes, name: str) -> PcmFormat:
    if len(body) < 16:
        raise AudioError(f"{name}: malformed WAV header (short 'fmt ' chunk)")
    tag, channels, rate, _, _, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == 0xFFFE and len(body) >= 26:  # WAVE_FORMAT_EXTENSIBLE: the real tag opens the sub-format GUID
        tag = struct.unpack("<H", body[24:26])[0]
    is_float = tag == 3
    if tag not in (1, 3) or channels < 1 or not MIN_RATE <= rate <= MAX_RATE or bits not in ((32,) if is_float else (8, 16, 24, 32)):
        raise AudioError(f"{name}: unsupported WAV format (tag {tag}, {bits} bits, {channels} channels, {rate} Hz)")
    return PcmFormat(rate, channels, bits // 8, is_float)


def stream_blocks(
    stream: BinaryIO,
    name: str = "-",
    raw_format: PcmFormat | None = None,
    target_rate: int = 16000,
    block_seconds: float = STREAM_BLOCK_SECONDS,
) -> Iterator[torch.Tensor]:
    """Blocks of a live byte stream (standard input) -> (N_i,) float32 mono at ``target_rate``.

    The stream is a WAV file (header parsed here, no seeking) or, with ``raw_format``,
    headerless PCM. Blocks are yielded as soon as bytes arrive. A WAV stream that ends
    before the length its header announces, bytes after the audio data that are not a
    WAV chunk, or a stream that ends mid-sample raise :class:`AudioError` after the
    audio before them.
    """
    reader = _Reader(stream)
    if raw_format is None:
        fmt, remaining = read_wav_header(reader, name)
    else:
        fmt, remaining = raw_format, None
    declared = remaining
    resampler = StreamingResampler(resampling_rate(fmt.sample_rate, target_rate), target_rate)
    block_bytes = max(1, int(block_seconds * fmt.sample_rate)) * fmt.frame_bytes
    pending = b""
    frames = 0
    error = None
    while remaining is None or remaining > 0:
        data = reader.some(block_bytes if remaining is None else min(block_bytes, remaining))
        if not data:
            break
        if remaining is not None:
            remaining -= len(data)
        pending += data
        whole = len(pending) - len(pending) % fmt.frame_bytes
        if whole:
            samples = fmt.decode(pending[:whole])
            pending = pending[whole:]
            if not np.isfinite(samples).all():
                error = AudioError(f"{name}: NaN or infinite samples at {frames / fmt.sample_rate:.2f} s")
                break
            frames += len(samples)
            out = resampler.process(_mono(samples))
            if out.numel():
                yield out
    if error is None:
        error = _stream_end_error(reader, name, fmt, frames, declared, remaining, len(pending))
    tail = resampler.flush()
    if tail.numel():
        yield tail
    if error is not None:
        raise error


def _stream_end_error(reader, name, fmt, frames, declared, remaining, stray) -> AudioError | None:
    seconds = frames / fmt.sample_rate
    if declared is not None and remaining > 0:
        expected = declared / fmt.frame_bytes / fmt.sample_rate
        return AudioError(f"{name}: truncated: stream ended after {seconds:.2f} s of the {expected:.2f} s announced")
    if stray:
        return AudioError(f"{name}: stream ended mid-sample ({stray} stray bytes after {seconds:.2f} s)")
    if declared is not None:  # after the data chunk only further well-formed chunks may follow
        if declared & 1:
            reader.exact(1)  # pad byte
        while True:
            head = reader.exact(8)
            if not head:
                return None
            if len(head) < 8 or not _chunk_id_ok(head[:4]):
                return AudioError(f"{name}: unexpected bytes after {seconds:.2f} s of audio (not a WAV chunk)")
            size = struct.unpack("<I", head[4:])[0]
            if reader.skip(size + (size & 1)) < size:
                return AudioError(f"{name}: truncated WAV chunk {head[:4]!r} after the audio")
    return None

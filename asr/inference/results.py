"""What a transcription gives back: a :class:`Transcript` (text, timed words, the segments
long audio was cut into, and what its pictures need), or per file a :class:`FileResult`."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from asr.decoding.alignment import Word
from asr.inference.stream import Segment, StreamEvent
from asr.inference.trace import Trace


@dataclass(frozen=True)
class Transcript:
    text: str
    duration: float  # seconds of audio
    words: tuple[Word, ...] = ()  # timed words, in order
    segments: tuple[Segment, ...] = ()  # the pieces long audio was cut into
    # what the pictures need (first minute; Recognizer.transcribe only): asr.inference.trace
    trace: Trace | None = field(default=None, repr=False, compare=False)

    def show(self, **options):
        """Waveform, words, log-mel and CTC posteriors in a window or notebook (needs matplotlib)."""
        from asr.plot.transcript import show_transcript

        return show_transcript(self, **options)

    def save(self, path: str | Path, **options) -> Path:
        """The same figure as a PNG file."""
        from asr.plot.transcript import plot_transcript

        return plot_transcript(self, path, **options)


@dataclass(frozen=True)
class FileResult:
    path: Path
    transcript: Transcript | None  # None when no audio could be read
    error: str | None = None  # one line naming the file; ``transcript`` then holds the audio before the fault


def join_segments(segments: Iterable[Segment], duration: float | None = None) -> Transcript:
    """Finished segments -> one :class:`Transcript`; ``duration`` defaults to the last segment's end."""
    segments = tuple(segments)
    text = " ".join(s.text for s in segments if s.text)
    words = tuple(w for s in segments for w in s.words)
    if duration is None:
        duration = segments[-1].end if segments else 0.0
    return Transcript(text, duration, words, segments)


def collect(events: Iterable[StreamEvent], duration: float | None = None) -> Transcript:
    """The final events of a stream -> one :class:`Transcript` (partial events are skipped)."""
    return join_segments((e.segment for e in events if e.final), duration)

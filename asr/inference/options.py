"""Options of one transcription: attention context, decoding and long-audio segmentation."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TranscribeOptions:
    """How a model turns audio into text. The defaults are full context and greedy decoding.

    Long audio is cut into *segments*, each encoded on its own (positions restart at 0),
    so memory stays bounded and positions stay within what training saw. A segment ends
    at the first pause after ``min_segment_s`` or, failing one, at ``max_segment_s``;
    audio shorter than ``min_segment_s`` is always one segment.
    """

    chunk_ms: int = 0  # attention chunk in ms, a multiple of the 40 ms frame; 0 = full context in a segment
    left_chunks: int = 8  # chunks of left context a chunk sees (-1 = the whole segment so far)
    beam_width: int = 1  # 1 = greedy; more = CTC prefix beam search with this many prefixes
    min_segment_s: float = 10.0  # a pause ends a segment only once it is this long
    max_segment_s: float = 20.0  # a segment never grows past this (demo training utterances are <= 20 s)
    pause_ms: int = 400  # this much quiet audio is a pause
    silence_db: float = 35.0  # quiet = this many dB below the loudest frame heard so far
    snap_words: bool = True  # move word edges onto the pauses around them (asr.decoding.alignment.snap_to_pauses)

    def __post_init__(self):
        if self.chunk_ms < 0:
            raise ValueError(f"chunk_ms must be 0 (full context) or positive, not {self.chunk_ms}")
        if self.beam_width < 1:
            raise ValueError(f"beam_width must be at least 1, not {self.beam_width}")
        if not 0 < self.min_segment_s <= self.max_segment_s:
            raise ValueError("need 0 < min_segment_s <= max_segment_s")

    def chunk_frames(self, frame_shift: float) -> int:
        """Encoder frames per chunk (0 = full context) for frames of ``frame_shift`` seconds."""
        frames = self.chunk_ms / (1000 * frame_shift)
        if abs(frames - round(frames)) > 1e-6:
            raise ValueError(f"chunk_ms={self.chunk_ms} is not a multiple of the {1000 * frame_shift:g} ms frame")
        return round(frames)

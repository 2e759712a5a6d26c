"""Options of one transcription: attention context, decoding and long-audio segmentation."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path

from asr.decoding.options import DecodingOptions

DECODING_FILE = "decoding.json"  # tuned beam-search defaults beside a model (asr.cli.tune_decoding)


@dataclass(frozen=True)
class TranscribeOptions:
    """How a model turns audio into text. The defaults are full context and greedy decoding.

    Long audio is cut into *segments*, each encoded on its own (positions restart at 0),
    so memory stays bounded and positions stay within what training saw. When streaming
    (``chunk_ms`` > 0, standard input, the server, ``Recognizer.transcribe``) a segment ends
    at the first pause after ``min_segment_s`` or, failing one, at ``max_segment_s``;
    audio shorter than ``min_segment_s`` is always one segment. Full-context files longer
    than ``max_segment_s`` go through overlapping windows instead (:mod:`asr.inference.windows`).
    """

    chunk_ms: int = 0  # attention chunk in ms, a multiple of the model's frame (40 or 80 ms); 0 = full context in a segment
    left_chunks: int = 8  # chunks of left context a chunk sees (-1 = the whole segment so far)
    beam_width: int = 1  # 1 = greedy (unless decoding has an LM or hotwords); more = CTC beam search
    decoding: DecodingOptions | None = None  # LM, lexicon, hotwords of the beam search; None = the model's defaults
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

    @property
    def uses_beam(self) -> bool:
        """The beam search (:mod:`asr.decoding.ctc_beam`) decodes, not greedy."""
        fused = self.decoding is not None and (self.decoding.lm or self.decoding.hotwords)
        return self.beam_width > 1 or bool(fused)

    def chunk_frames(self, frame_shift: float) -> int:
        """Encoder frames per chunk (0 = full context) for frames of ``frame_shift`` seconds."""
        frames = self.chunk_ms / (1000 * frame_shift)
        if abs(frames - round(frames)) > 1e-6:
            raise ValueError(f"chunk_ms={self.chunk_ms} is not a multiple of the {1000 * frame_shift:g} ms frame")
        return round(frames)


def decoding_defaults(model_path: str | Path) -> DecodingOptions | None:
    """The :class:`DecodingOptions` in ``decoding.json`` beside ``model_path`` (a model file, or
    the folder of an exported model), LM and lexicon paths relative to that file; None if absent."""
    model_path = Path(model_path)
    path = (model_path if model_path.is_dir() else model_path.parent) / DECODING_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        values.pop("measured", None)  # what tuning found, for the reader
        unknown = set(values) - {f.name for f in fields(DecodingOptions)}
        if unknown:
            raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
        for key in ("lm", "lexicon"):
            if values.get(key):
                values[key] = str(path.parent / values[key])
        values["hotwords"] = tuple(values.get("hotwords", ()))
        return DecodingOptions(**values)
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a decoding config: {err}") from None

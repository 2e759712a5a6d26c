"""Options of one transcription: attention context, decoding and long-audio segmentation."""

from __future__ import annotations

import json
from dataclasses import dataclass, fields, replace
from pathlib import Path

from asr.decoding.options import DecodingOptions

DECODING_FILE = "decoding.json"  # tuned beam-search defaults beside a model (asr.cli.tune_decoding)


DEFAULT_BEAM = 16  # beam width when the model's decoding.json names none and an LM or hotwords are fused


@dataclass(frozen=True)
class TranscribeOptions:
    """How a model turns audio into text. The defaults are full context and the model's own
    decoding: the beam search with the LM, weights and width of its ``decoding.json``
    (:func:`decoding_defaults`, written by :mod:`asr.cli.tune_decoding`), greedy for a model
    without one. ``greedy=True`` asks for greedy decoding whatever the model has.

    Long audio is cut into *segments*, each encoded on its own (positions restart at 0),
    so memory stays bounded and positions stay within what training saw. When streaming
    (``chunk_ms`` > 0, standard input, the server, ``Recognizer.transcribe``) a segment ends
    at the first pause after ``min_segment_s`` or, failing one, at ``max_segment_s``;
    audio shorter than ``min_segment_s`` is always one segment. Full-context files longer
    than ``max_segment_s`` go through overlapping windows instead (:mod:`asr.inference.windows`).

    With ``chunk_ms`` > 0 and ``rescore`` (the default) each chunk gives a partial result as
    soon as it is encoded, and each finished segment is encoded once more with full context
    and decoded afresh for its final result (two passes): live finals as good as offline.
    """

    chunk_ms: int = 0  # attention chunk in ms, a multiple of the model's frame; 0 = full context in a segment
    left_chunks: int = 8  # chunks of left context a chunk sees (-1 = the whole segment so far)
    beam_width: int | None = None  # None = the model's default (decoding.json); 1 = greedy unless an LM is fused
    decoding: DecodingOptions | None = None  # LM, lexicon, hotwords of the beam search; None = the model's defaults
    greedy: bool = False  # greedy decoding, no LM, whatever the model's defaults say
    rescore: bool = True  # chunked streaming: re-encode each finished segment with full context for its final result
    # chunked streaming's partial results: "chunk" = each chunk through the encoder's cache (cheap,
    # as the model reads chunks); "segment" = the open segment re-encoded with full context at
    # each chunk (steadier: only the last words lack right context; compute grows with the segment)
    partials: str = "chunk"
    # chunked streaming: a segment also ends once its posteriors end in this much blank (no
    # token) after some words, for audio whose background never falls quiet; 0 = off
    blank_end_ms: int = 0
    min_segment_s: float = 10.0  # a pause ends a segment only once it is this long
    max_segment_s: float = 20.0  # a segment never grows past this (demo training utterances are <= 20 s)
    pause_ms: int = 400  # this much quiet audio is a pause
    silence_db: float = 35.0  # quiet = this many dB below the loudest frame heard so far
    snap_words: bool = True  # move word edges onto the pauses around them (asr.decoding.alignment.snap_to_pauses)

    def __post_init__(self):
        if self.chunk_ms < 0:
            raise ValueError(f"chunk_ms must be 0 (full context) or positive, not {self.chunk_ms}")
        if self.beam_width is not None and self.beam_width < 1:
            raise ValueError(f"beam_width must be at least 1, not {self.beam_width}")
        if not 0 < self.min_segment_s <= self.max_segment_s:
            raise ValueError("need 0 < min_segment_s <= max_segment_s")
        if self.partials not in ("chunk", "segment"):
            raise ValueError(f"partials must be 'chunk' or 'segment', not {self.partials!r}")
        if self.greedy and (self.decoding is not None or (self.beam_width or 1) > 1):
            raise ValueError("greedy decoding takes no beam width above 1 and no LM or hotwords")

    def chunk_frames(self, frame_shift: float) -> int:
        """Encoder frames per chunk (0 = full context) for frames of ``frame_shift`` seconds."""
        frames = self.chunk_ms / (1000 * frame_shift)
        if abs(frames - round(frames)) > 1e-6:
            raise ValueError(f"chunk_ms={self.chunk_ms} is not a multiple of the {1000 * frame_shift:g} ms frame")
        return round(frames)


LIVE = TranscribeOptions(chunk_ms=640, min_segment_s=1.0, pause_ms=250, partials="segment", blank_end_ms=800)
"""Live input (standard input, the server): 640 ms chunks with a partial result each (the open
segment so far, full context), and a final result once 250 ms of quiet follow a segment of
at least 1 s (within 0.5 s of the end of speech: ``python -m asr.bench.endpoints``) or, where
the background never falls quiet, once the model has heard 800 ms without a word."""


@dataclass(frozen=True)
class ModelDecoding:
    """A model's tuned decoding (its ``decoding.json``): beam width and what the search fuses."""

    beam_width: int = DEFAULT_BEAM
    decoding: DecodingOptions | None = None


def resolve_decoding(defaults: ModelDecoding | None, options: TranscribeOptions) -> tuple[int, DecodingOptions | None]:
    """The one place a decoding is chosen: the model's defaults and the caller's options ->
    (beam width, what the beam search fuses with weights resolved, or None for greedy).

    A caller's :class:`DecodingOptions` replaces the model's, except that an ``lm`` left at
    None takes the model's LM with its lexicon and tuned weights (so hotwords add to the LM;
    ``lm=""`` means no LM), and unset weights take the model's. The beam width is the
    caller's, else the model's when anything is fused, else 1 (greedy).
    """
    if options.greedy:
        return 1, None
    model = defaults.decoding if defaults is not None else None
    given = options.decoding
    if given is None:
        decoding = model
    else:
        base = model or DecodingOptions()
        inherit = given.lm is None and bool(base.lm)
        decoding = replace(
            given,
            lm=base.lm if inherit else (given.lm or None),
            lexicon=given.lexicon if given.lexicon is not None else (base.lexicon if inherit else None),
            lm_weight=given.lm_weight if given.lm_weight is not None else base.lm_weight,
            word_score=given.word_score if given.word_score is not None else base.word_score,
        )
    if decoding is not None:
        decoding = decoding.with_defaults()
    fused = decoding is not None and bool(decoding.lm or decoding.hotwords)
    default_beam = defaults.beam_width if defaults is not None else DEFAULT_BEAM
    beam = options.beam_width if options.beam_width is not None else (default_beam if fused else 1)
    if beam == 1 and not fused:
        return 1, None
    return beam, decoding or DecodingOptions().with_defaults()


def decoding_defaults(model_path: str | Path) -> ModelDecoding | None:
    """The :class:`ModelDecoding` in ``decoding.json`` beside ``model_path`` (a model file, or
    the folder of an exported model), LM and lexicon paths relative to that file; None if absent.
    A named LM or lexicon that is not there is one error naming both files."""
    model_path = Path(model_path)
    path = (model_path if model_path.is_dir() else model_path.parent) / DECODING_FILE
    if not path.is_file():
        return None
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
        values.pop("measured", None)  # what tuning found, for the reader
        beam = int(values.pop("beam_width", DEFAULT_BEAM))
        unknown = set(values) - {f.name for f in fields(DecodingOptions)}
        if unknown:
            raise ValueError(f"unknown key {sorted(unknown)[0]!r}")
        for key in ("lm", "lexicon"):
            if values.get(key):
                values[key] = str(path.parent / values[key])
                if not Path(values[key]).is_file():
                    raise ValueError(f"its {key} {values[key]} is missing (copy the model's whole folder)")
        values["hotwords"] = tuple(values.get("hotwords", ()))
        return ModelDecoding(beam, DecodingOptions(**values))
    except (ValueError, TypeError, AttributeError) as err:
        raise ValueError(f"{path}: not a usable decoding config: {err}") from None

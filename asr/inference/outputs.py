"""Writing results: transcripts as text, JSON, SRT and WebVTT, and the detailed WER report
(error counts, the most frequent errors and a per-utterance alignment file)."""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from typing import Mapping, Sequence

import jiwer

from asr.decoding.alignment import Word
from asr.text.normalize import normalize_text

FORMATS = ("text", "json", "srt", "vtt")
SUFFIXES = {"text": ".txt", "json": ".json", "srt": ".srt", "vtt": ".vtt"}


# transcripts ----------------------------------------------------------------------------


def text_line(utt_id: str, text: str) -> str:
    return f"{utt_id}\t{text}"


def transcript_dict(utt_id: str, transcript) -> dict:
    """A :class:`asr.inference.Transcript` as plain JSON data."""
    return {
        "id": utt_id,
        "text": transcript.text,
        "duration": round(transcript.duration, 3),
        "words": [word_dict(w) for w in transcript.words],
        "segments": [{"start": s.start, "end": s.end, "text": s.text} for s in transcript.segments],
    }


def word_dict(word: Word) -> dict:
    return {"word": word.text, "start": word.start, "end": word.end, "confidence": word.confidence}


def to_json(utt_id: str, transcript) -> str:
    return json.dumps(transcript_dict(utt_id, transcript), ensure_ascii=False)


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    text: str


def subtitle_cues(
    words: Sequence[Word], max_chars: int = 42, max_seconds: float = 5.0, max_gap: float = 1.0
) -> list[Cue]:
    """Group timed words into subtitle cues: a new cue when the line would pass
    ``max_chars`` characters or ``max_seconds``, or after a pause longer than ``max_gap``."""
    cues: list[Cue] = []
    line: list[Word] = []
    for word in words:
        if line:
            text = " ".join(w.text for w in line + [word])
            if len(text) > max_chars or word.end - line[0].start > max_seconds or word.start - line[-1].end > max_gap:
                cues.append(Cue(line[0].start, line[-1].end, " ".join(w.text for w in line)))
                line = []
        line.append(word)
    if line:
        cues.append(Cue(line[0].start, line[-1].end, " ".join(w.text for w in line)))
    return cues


def timestamp(seconds: float, separator: str = ",") -> str:
    """1.5 -> '00:00:01,500' (SRT); separator '.' gives WebVTT's form."""
    ms = max(round(seconds * 1000), 0)
    hours, ms = divmod(ms, 3_600_000)
    minutes, ms = divmod(ms, 60_000)
    secs, ms = divmod(ms, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{separator}{ms:03d}"


def to_srt(words: Sequence[Word]) -> str:
    blocks = [
        f"{n}\n{timestamp(c.start)} --> {timestamp(c.end)}\n{c.text}\n" for n, c in enumerate(subtitle_cues(words), 1)
    ]
    return "\n".join(blocks)


def to_vtt(words: Sequence[Word]) -> str:
    blocks = [f"{timestamp(c.start, '.')} --> {timestamp(c.end, '.')}\n{c.text}\n" for c in subtitle_cues(words)]
    return "WEBVTT\n\n" + "\n".join(blocks)


def render(fmt: str, utt_id: str, transcript) -> str:
    """One transcript in one of :data:`FORMATS`, ending in a newline."""
    if fmt == "text":
        return text_line(utt_id, transcript.text) + "\n"
    if fmt == "json":
        return to_json(utt_id, transcript) + "\n"
    if fmt == "srt":
        return to_srt(transcript.words)
    if fmt == "vtt":
        return to_vtt(transcript.words)
    raise ValueError(f"unknown format {fmt!r}; choose one of {', '.join(FORMATS)}")


# WER report -----------------------------------------------------------------------------


@dataclass(frozen=True)
class UtteranceAlignment:
    utt_id: str
    ref: tuple[str, ...]  # reference words, '*' padding where the hypothesis inserted
    hyp: tuple[str, ...]  # hypothesis words, '*' padding where the reference word was deleted
    ops: tuple[str, ...]  # per position: '' correct, 'S', 'D' or 'I'


@dataclass(frozen=True)
class ErrorReport:
    substitutions: tuple[tuple[str, str, int], ...]  # (reference word, hypothesis word, count), most frequent first
    deletions: tuple[tuple[str, int], ...]
    insertions: tuple[tuple[str, int], ...]
    utterances: tuple[UtteranceAlignment, ...]

    def as_dict(self, top: int = 20) -> dict:
        return {
            "top_substitutions": [{"ref": r, "hyp": h, "count": n} for r, h, n in self.substitutions[:top]],
            "top_deletions": [{"word": w, "count": n} for w, n in self.deletions[:top]],
            "top_insertions": [{"word": w, "count": n} for w, n in self.insertions[:top]],
        }

    def summary(self, top: int = 5) -> list[str]:
        """A few lines naming the most frequent errors."""
        lines = []
        if self.substitutions:
            lines.append("top substitutions: " + ", ".join(f"{r}->{h} ({n})" for r, h, n in self.substitutions[:top]))
        if self.deletions:
            lines.append("top deletions: " + ", ".join(f"{w} ({n})" for w, n in self.deletions[:top]))
        if self.insertions:
            lines.append("top insertions: " + ", ".join(f"{w} ({n})" for w, n in self.insertions[:top]))
        return lines


def error_report(references: Mapping[str, str], hypotheses: Mapping[str, str]) -> ErrorReport:
    """Word-level alignment of each hypothesis that has a reference (both normalized with
    :func:`asr.text.normalize_text`), and the errors counted over all of them."""
    subs: Counter = Counter()
    dels: Counter = Counter()
    ins: Counter = Counter()
    utterances = []
    for utt_id, hyp_text in hypotheses.items():
        if utt_id not in references:
            continue
        ref = normalize_text(references[utt_id]).split()
        hyp = normalize_text(hyp_text).split()
        aligned = _align(ref, hyp)
        for r, h, op in zip(*aligned):
            if op == "S":
                subs[(r, h)] += 1
            elif op == "D":
                dels[r] += 1
            elif op == "I":
                ins[h] += 1
        utterances.append(UtteranceAlignment(utt_id, *aligned))
    return ErrorReport(
        tuple((r, h, n) for (r, h), n in subs.most_common()),
        tuple(dels.most_common()),
        tuple(ins.most_common()),
        tuple(utterances),
    )


def _align(ref: list[str], hyp: list[str]) -> tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """Minimum edit alignment (jiwer's) -> padded reference, padded hypothesis, operations."""
    if not ref:
        return tuple("*" * len(w) for w in hyp), tuple(hyp), ("I",) * len(hyp)
    if not hyp:
        return tuple(ref), tuple("*" * len(w) for w in ref), ("D",) * len(ref)
    out = jiwer.process_words(" ".join(ref), " ".join(hyp))
    r_out, h_out, ops = [], [], []
    for chunk in out.alignments[0]:
        for k in range(max(chunk.ref_end_idx - chunk.ref_start_idx, chunk.hyp_end_idx - chunk.hyp_start_idx)):
            if chunk.type == "equal" or chunk.type == "substitute":
                r, h = ref[chunk.ref_start_idx + k], hyp[chunk.hyp_start_idx + k]
                r_out.append(r), h_out.append(h), ops.append("" if chunk.type == "equal" else "S")
            elif chunk.type == "delete":
                r = ref[chunk.ref_start_idx + k]
                r_out.append(r), h_out.append("*" * len(r)), ops.append("D")
            else:
                h = hyp[chunk.hyp_start_idx + k]
                r_out.append("*" * len(h)), h_out.append(h), ops.append("I")
    return tuple(r_out), tuple(h_out), tuple(ops)


def alignment_text(report: ErrorReport) -> str:
    """Per-utterance alignment, three aligned lines each (REF, HYP, and the error marks)."""
    blocks = []
    for utt in report.utterances:
        counts = {op: utt.ops.count(op) for op in "SDI"}
        widths = [max(len(r), len(h), 1) for r, h in zip(utt.ref, utt.hyp)]
        ref = " ".join(r.ljust(w) for r, w in zip(utt.ref, widths))
        hyp = " ".join(h.ljust(w) for h, w in zip(utt.hyp, widths))
        ops = " ".join(op.ljust(w) for op, w in zip(utt.ops, widths))
        head = f"{utt.utt_id} (S={counts['S']} D={counts['D']} I={counts['I']} N={sum(1 for o in utt.ops if o != 'I')})"
        marks = ("     " + ops).rstrip()
        blocks.append(f"{head}\nREF: {ref.rstrip()}\nHYP: {hyp.rstrip()}\n{marks}\n")
    return "\n".join(blocks)

"""Word timings from CTC: align decoded tokens to frames, group tokens into words.

The decoded tokens are aligned to the log-probs they came from with Viterbi forced
alignment (``torchaudio.functional.forced_align``): each token gets the span of frames
where the best path emits it. A word starts where its first token's span starts and ends
where its last token's span ends; frame ``t`` starts at ``t * frame_shift`` seconds
(frame_shift = subsampling factor x feature hop, e.g. 4 x 10 ms). A word's confidence is the
mean over its tokens of the token's highest posterior within its span.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torchaudio.functional as AF

from asr.text.tokenizer import BLANK
from asr.text.tokenizer import Tokenizer

WORD_START = "\u2581"  # sentencepiece marks the first piece of each word with this


@dataclass(frozen=True)
class TokenSpan:
    token: int  # CTC id (never the blank)
    start: int  # first frame emitting it
    end: int  # one past its last frame
    score: float  # highest posterior probability within the span


@dataclass(frozen=True)
class Word:
    text: str
    start: float  # seconds from the start of the audio
    end: float
    confidence: float  # 0..1


def align_tokens(log_probs: torch.Tensor, tokens: list[int]) -> list[TokenSpan]:
    """(T', V) log-probs of one utterance, its token ids -> one span per token.

    Raises ``ValueError`` when the tokens cannot fit in ``T'`` frames (each token needs
    a frame, repeated neighbours a blank between them).
    """
    if not tokens:
        return []
    repeats = sum(a == b for a, b in zip(tokens, tokens[1:]))
    if len(tokens) + repeats > log_probs.shape[0]:
        raise ValueError(f"{len(tokens)} tokens cannot be aligned to {log_probs.shape[0]} frames")
    emissions = log_probs.detach().float().cpu()[None]  # (1, T', V)
    targets = torch.tensor([tokens], dtype=torch.int32)  # (1, U)
    path, _ = AF.forced_align(emissions, targets, blank=BLANK)  # (1, T') token id per frame
    path = path[0].tolist()
    probs = emissions[0].exp()
    spans, t, T = [], 0, len(path)
    for token in tokens:
        while path[t] != token:  # skip blanks up to this token's run
            t += 1
        start = t
        while t < T and path[t] == token:
            t += 1
        score = float(probs[start:t, token].max())
        spans.append(TokenSpan(token, start, t, score))
    return spans


def group_words(tokenizer: Tokenizer, spans: list[TokenSpan], frame_shift: float, offset: float = 0.0) -> list[Word]:
    """Token spans -> words (a piece starting with ``▁`` opens a new word).

    ``offset`` is the time of frame 0 in seconds (the segment's start in the audio).
    """
    groups: list[list[TokenSpan]] = []
    for span in spans:
        if not groups or tokenizer.piece(span.token).startswith(WORD_START):
            groups.append([])
        groups[-1].append(span)
    words = []
    for group in groups:
        text = tokenizer.decode([s.token for s in group]).strip()
        if not text:
            continue
        start = offset + group[0].start * frame_shift
        end = offset + group[-1].end * frame_shift
        confidence = sum(s.score for s in group) / len(group)
        words.append(Word(text, round(start, 3), round(end, 3), round(confidence, 4)))
    return words


def snap_to_pauses(
    words: list[Word], energy_db: torch.Tensor, hop: float, window: float, offset: float = 0.0, silence_db: float = 35.0
) -> list[Word]:
    """Move word edges onto the pauses around them, at the feature hop's resolution.

    CTC emits a word's tokens in spikes that can sit anywhere inside the word, so edges
    from the alignment alone come out late at the start and early at the end. Between two
    aligned words (and before the first, after the last) the longest run of quiet feature
    frames, if any, is the pause that separates them: the earlier word ends at the last
    loud frame before it, the later word starts at the first loud frame after it. Without
    a pause the aligned edges stay.

    ``energy_db`` (N,) is the loudness of each feature frame (``hop`` apart, ``window``
    long, frame 0 at ``offset`` seconds); quiet = ``silence_db`` below the loudest frame.
    """
    if not words or energy_db.numel() == 0:
        return words
    quiet = (energy_db < energy_db.max() - silence_db).tolist()
    n = len(quiet)

    def frame(seconds: float) -> int:
        return min(max(round((seconds - offset) / hop), 0), n)

    def centre(f: int) -> float:
        return offset + f * hop + window / 2

    starts = [w.start for w in words]
    ends = [w.end for w in words]
    edges = [0.0] + [w.end for w in words]  # region i lies between edges[i] and starts[i] (or the end)
    for i in range(len(words) + 1):
        lo = frame(edges[i])
        hi = frame(starts[i]) if i < len(words) else n
        run = _longest_run(quiet, lo, hi)
        if run is None:
            continue
        qa, qb = run
        if i > 0 and qa > 0:
            ends[i - 1] = max(centre(qa - 1), starts[i - 1])
        if i < len(words) and qb < n:
            starts[i] = min(centre(qb), ends[i])
    return [Word(w.text, round(s, 3), round(e, 3), w.confidence) for w, s, e in zip(words, starts, ends)]


def _longest_run(flags: list[bool], lo: int, hi: int) -> tuple[int, int] | None:
    """Longest run of True in ``flags[lo:hi]`` -> (start, end) or None."""
    best, start = None, None
    for i in range(lo, hi + 1):
        if i < hi and flags[i]:
            start = i if start is None else start
        elif start is not None:
            if best is None or i - start > best[1] - best[0]:
                best = (start, i)
            start = None
    return best

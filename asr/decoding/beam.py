"""CTC prefix beam search: keep the ``beam_width`` most probable label prefixes, each
with the probability of all alignments that end in a blank and of those that end in
its last label, so alignments that collapse to the same text add up.

The search is frame-synchronous and keeps its state between calls of :meth:`step`,
so it runs the same on a whole utterance or chunk by chunk while streaming.
"""

from __future__ import annotations

import math

import torch

from asr.model.ctc_model import BLANK

NEG_INF = float("-inf")


def _logaddexp(a: float, b: float) -> float:
    if a == NEG_INF:
        return b
    if b == NEG_INF:
        return a
    hi, lo = (a, b) if a > b else (b, a)
    return hi + math.log1p(math.exp(lo - hi))


class PrefixBeamSearch:
    """Frame-by-frame search; (C, V) log-probs per :meth:`step`, then :meth:`best`.

    ``expand`` labels per frame are tried (the most probable ones, the blank always among
    them): beam search keeps its cost at ``beam_width x expand`` per frame.
    """

    def __init__(self, beam_width: int, expand: int | None = None, blank: int = BLANK):
        if beam_width < 1:
            raise ValueError("beam_width must be at least 1")
        self.beam_width = beam_width
        self.expand = expand or max(beam_width, 2)
        self.blank = blank
        # prefix -> (log P(alignments ending in blank), log P(ending in the prefix's last label))
        self.beams: dict[tuple[int, ...], tuple[float, float]] = {(): (0.0, NEG_INF)}

    def step(self, log_probs: torch.Tensor) -> None:
        """Advance over (C, V) frames of log-probabilities."""
        k = min(self.expand, log_probs.shape[-1])
        top_scores, top_ids = log_probs.float().topk(k, dim=-1)  # (C, k)
        blank_scores = log_probs[:, self.blank].float().tolist()
        for ids, scores, p_blank in zip(top_ids.tolist(), top_scores.tolist(), blank_scores):
            self._frame([(i, s) for i, s in zip(ids, scores) if i != self.blank], p_blank)

    def _frame(self, labels: list[tuple[int, float]], p_blank: float) -> None:
        nxt: dict[tuple[int, ...], list[float]] = {}

        def add(prefix, index, value):
            if value == NEG_INF:  # e.g. a repeated label with no blank before it: impossible
                return
            entry = nxt.setdefault(prefix, [NEG_INF, NEG_INF])
            entry[index] = _logaddexp(entry[index], value)

        for prefix, (pb, pnb) in self.beams.items():
            total = _logaddexp(pb, pnb)
            add(prefix, 0, total + p_blank)  # a blank keeps the prefix
            last = prefix[-1] if prefix else None
            for label, p in labels:
                if label == last:
                    add(prefix, 1, pnb + p)  # repeat without a blank: collapses into the same label
                    add(prefix + (label,), 1, pb + p)  # after a blank: a new label
                else:
                    add(prefix + (label,), 1, total + p)
        ranked = sorted(nxt.items(), key=lambda item: _logaddexp(*item[1]), reverse=True)
        self.beams = {prefix: (pb, pnb) for prefix, (pb, pnb) in ranked[: self.beam_width]}

    def hypotheses(self) -> list[tuple[list[int], float]]:
        """-> (label ids, log-probability) per prefix kept, best first."""
        ranked = sorted(self.beams.items(), key=lambda item: _logaddexp(*item[1]), reverse=True)
        return [(list(prefix), _logaddexp(pb, pnb)) for prefix, (pb, pnb) in ranked]

    def best(self) -> list[int]:
        return self.hypotheses()[0][0]


def prefix_beam_search(log_probs: torch.Tensor, lengths: torch.Tensor, beam_width: int = 8) -> list[list[int]]:
    """(B, T', V) log-probs, (B,) lengths -> best label id list per utterance (no blanks);
    same contract as :func:`asr.decoding.greedy_decode`."""
    out = []
    for b in range(log_probs.shape[0]):
        search = PrefixBeamSearch(beam_width)
        search.step(log_probs[b, : int(lengths[b])].cpu())
        out.append(search.best())
    return out

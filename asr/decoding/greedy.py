"""Greedy CTC decoding: best token per frame, merge repeats, drop blanks."""

from __future__ import annotations

import torch

from asr.text.tokenizer import BLANK


def greedy_decode(log_probs: torch.Tensor, lengths: torch.Tensor) -> list[list[int]]:
    """(B, T', V) log-probs, (B,) lengths -> token id lists (no blanks)."""
    best = log_probs.argmax(dim=-1)  # (B, T')
    keep = torch.ones_like(best, dtype=torch.bool)
    keep[:, 1:] = best[:, 1:] != best[:, :-1]  # first frame of each run
    keep &= best != BLANK
    out = []
    for b in range(best.shape[0]):
        n = int(lengths[b])
        out.append(best[b, :n][keep[b, :n]].tolist())
    return out

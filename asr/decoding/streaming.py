"""CTC decoders that consume log-probs chunk by chunk: greedy, and the beam search of
:mod:`asr.decoding.ctc_beam` (with LM, lexicon and hotwords) behind the same protocol."""

from __future__ import annotations

from typing import Protocol

import torch

from asr.text.tokenizer import BLANK


class StreamDecoder(Protocol):
    def step(self, log_probs: torch.Tensor) -> None:
        """Consume (C, V) log-probs of the next frames."""

    def best(self) -> list[int]:
        """Label ids of the best hypothesis so far (no blanks): a partial result."""

    def finish(self) -> list[int]:
        """Label ids of the final hypothesis (the LM's end of sentence scored); call once, last."""


class GreedyStream:
    """Best label per frame, repeats merged across chunk boundaries, blanks dropped."""

    def __init__(self):
        self.tokens: list[int] = []
        self.last = BLANK  # label of the previous frame

    def step(self, log_probs: torch.Tensor) -> None:
        for label in log_probs.argmax(dim=-1).tolist():
            if label != self.last and label != BLANK:
                self.tokens.append(label)
            self.last = label

    def best(self) -> list[int]:
        return list(self.tokens)

    def finish(self) -> list[int]:
        return list(self.tokens)

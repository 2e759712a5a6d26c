"""CTC decoders that consume log-probs chunk by chunk: greedy and prefix beam search."""

from __future__ import annotations

from typing import Protocol

import torch

from asr.decoding.beam import PrefixBeamSearch
from asr.model.ctc_model import BLANK


class StreamDecoder(Protocol):
    def step(self, log_probs: torch.Tensor) -> None:
        """Consume (C, V) log-probs of the next frames."""

    def best(self) -> list[int]:
        """Label ids of the best hypothesis so far (no blanks)."""


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


def make_decoder(beam_width: int) -> StreamDecoder:
    return GreedyStream() if beam_width <= 1 else PrefixBeamSearch(beam_width)

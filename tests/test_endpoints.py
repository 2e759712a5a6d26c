"""Live endpoints: a final result follows the end of speech within half a second, found on
loudness as the blocks arrive (not at the next chunk boundary), and the benchmark that
measures it reads its clock and its partial-word changes right."""

from __future__ import annotations

import pytest
import torch

from asr.bench.endpoints import changed_share, measure, speech_end
from asr.inference.options import LIVE
from asr.inference.recognizer import Recognizer
from models import tiny_untrained_model

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def recognizer() -> Recognizer:
    recipe, tokenizer, model = tiny_untrained_model()
    return Recognizer(recipe, tokenizer, model.eval())


def talk(parts: list[tuple[float, bool]], rate: int = 16000) -> tuple[torch.Tensor, list[float]]:
    """(seconds, loud) pieces -> waveform (quiet = faint noise), ends of the loud pieces."""
    g = torch.Generator().manual_seed(2)
    pieces, ends, at = [], [], 0.0
    for seconds, loud in parts:
        pieces.append(torch.randn(int(seconds * rate), generator=g) * (0.3 if loud else 1e-5))
        at += seconds
        if loud:
            ends.append(at)
    return torch.cat(pieces), ends


def test_a_final_follows_each_utterance_within_half_a_second(recognizer):
    # utterances that end mid-chunk (640 ms chunks): 1.3 s, 2.05 s, 1.7 s with 1 s gaps
    wave, ends = talk([(1.3, True), (1.0, False), (2.05, True), (1.0, False), (1.7, True), (1.0, False)])
    finals, partials, _ = measure(recognizer, wave, LIVE)
    assert len(finals) == 3, [f[2] for f in finals]
    for end, (at, _, segment) in zip(ends, finals):
        assert end < segment.end and segment.start <= end - 1.0  # the segment holds its utterance
        assert 0.25 <= at - end < 0.45  # 250 ms of quiet, the front end, the next 100 ms block: no chunk end
    assert all(partials[:2])  # partial results came while each utterance was spoken


def test_a_pause_shorter_than_the_endpoint_keeps_one_segment(recognizer):
    wave, _ = talk([(1.5, True), (0.2, False), (1.5, True), (1.0, False)])
    finals, _, _ = measure(recognizer, wave, LIVE)
    assert len(finals) == 1 and finals[0][2].start == 0.0


def test_speech_end_is_the_last_loud_frame():
    wave, ends = talk([(0.5, False), (1.23, True), (0.8, False)])
    assert speech_end(wave, 16000, 35.0) == pytest.approx(ends[0], abs=0.011)


def test_changed_share_counts_words_the_final_replaced():
    partials = [["THE"], ["THE", "CAT"], ["THE", "CAP", "SAT"]]
    assert changed_share(partials, ["THE", "CAT", "SAT"]) == (6, 1)
    assert changed_share([["A", "B"]], ["A"]) == (2, 1)  # a word the final dropped is changed


class WordsThenBlank:
    """The tiny model, but its full-context posteriors say words for the first ``words_s``
    seconds and blank after: the model has heard the speaker stop, the loudness has not."""

    def __init__(self, acoustic, words_s: float):
        self.inner, self.words_s = acoustic, words_s

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def segment_log_probs(self, frames: torch.Tensor) -> torch.Tensor:
        log_probs = torch.full((frames.shape[1], 40), -10.0)  # (T', V)
        speaking = round(self.words_s / self.inner.frame_shift)
        log_probs[:speaking, 5] = 0.0  # one token, repeated: one word
        log_probs[speaking:, 0] = 0.0  # blank
        return log_probs.log_softmax(dim=-1)


def test_blank_posteriors_end_a_segment_that_never_falls_quiet(recognizer):
    from dataclasses import replace

    recognizer.acoustic = WordsThenBlank(recognizer.acoustic, words_s=1.2)
    try:
        wave = torch.randn(5 * 16000, generator=torch.Generator().manual_seed(4)) * 0.3  # loud to the end
        finals, _, _ = measure(recognizer, wave, LIVE)
        # 640 ms chunks: at 2.56 s the posteriors end in 1.36 s of blank (>= 800 ms) after a word
        assert finals[0][2].start == 0.0 and finals[0][2].end == 2.56 and finals[0][2].text
        finals, _, _ = measure(recognizer, wave, replace(LIVE, blank_end_ms=0))
        assert len(finals) == 1 and finals[0][2].end == pytest.approx(5.0, abs=0.1)  # loudness alone: no end
    finally:
        recognizer.acoustic = recognizer.acoustic.inner

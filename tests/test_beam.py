"""The kept CTC beam search (flashlight-text) without LM: the same as greedy at beam 1, CTC's
collapsing rules, and the same whether it sees an utterance at once or chunk by chunk."""

from __future__ import annotations

import pytest
import torch

pytest.importorskip("flashlight.lib.text.decoder", reason="the beam search needs flashlight-text (requirements-lm.txt)")

from asr.decoding import greedy_decode  # noqa: E402
from asr.decoding.ctc_beam import CTCBeamDecoder  # noqa: E402
from asr.text.tokenizer import Tokenizer  # noqa: E402


@pytest.fixture(scope="module")
def tokenizer() -> Tokenizer:
    return Tokenizer.train(["THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG"], 40, "char")


def random_log_probs(seed: int, frames: int, vocab: int, sharpness: float = 3.0) -> torch.Tensor:
    """(T, V) peaky random log-probs, blank (0) favoured a little, as a CTC model emits."""
    logits = torch.randn(frames, vocab, generator=torch.Generator().manual_seed(seed)) * sharpness
    logits[:, 0] += 1.0
    return logits.log_softmax(-1)


@pytest.mark.parametrize("seed", range(5))
def test_beam_one_is_greedy(tokenizer, seed):
    log_probs = random_log_probs(seed, 80, tokenizer.vocab_size)
    greedy = greedy_decode(log_probs[None], torch.tensor([80]))[0]
    assert greedy, "the random posteriors must spell something for the test to mean anything"
    assert CTCBeamDecoder(tokenizer, 1).decode(log_probs) == greedy


def test_wide_beam_without_lm_keeps_a_clear_best_path(tokenizer):
    # one sharp path: every beam width finds it
    log_probs = random_log_probs(7, 60, tokenizer.vocab_size, sharpness=8.0)
    greedy = greedy_decode(log_probs[None], torch.tensor([60]))[0]
    for width in (2, 8, 32):
        assert CTCBeamDecoder(tokenizer, width).decode(log_probs) == greedy


def test_repeated_labels_need_a_blank_between(tokenizer):
    a = tokenizer.encode("O")[-1]
    frames = torch.full((4, tokenizer.vocab_size), 1e-4)
    for t, label in enumerate([a, a, 0, a]):  # a a blank a -> "a a"; the first two frames alone -> "a"
        frames[t, label] = 1.0
    log_probs = frames.log_softmax(-1)
    decoder = CTCBeamDecoder(tokenizer, 4)
    assert decoder.decode(log_probs) == [a, a]
    assert decoder.decode(log_probs[:2]) == [a]


@pytest.mark.parametrize("chunk", [1, 7, 16])
def test_chunked_search_equals_whole(tokenizer, chunk):
    log_probs = random_log_probs(9, 64, tokenizer.vocab_size, sharpness=1.5)  # flat: many live hypotheses
    decoder = CTCBeamDecoder(tokenizer, 8)
    whole = decoder.decode(log_probs)
    stream = decoder.stream()
    partials = []
    for start in range(0, 64, chunk):
        stream.step(log_probs[start : start + chunk])
        partials.append(stream.best())
    assert stream.finish() == whole
    assert partials[-1] == whole  # no LM: the end of sentence changes nothing


def test_bad_shapes_and_widths_are_refused(tokenizer):
    with pytest.raises(ValueError, match="beam_width"):
        CTCBeamDecoder(tokenizer, 0)
    with pytest.raises(ValueError, match=r"expected \(C, "):
        CTCBeamDecoder(tokenizer, 4).stream().step(torch.zeros(5, tokenizer.vocab_size + 1))

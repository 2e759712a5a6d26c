"""CTC prefix beam search: exact on tiny problems, better than greedy where alignments
add up, and the same whether it sees an utterance at once or chunk by chunk."""

from __future__ import annotations

import itertools
import math

import pytest
import torch

from asr.decoding import greedy_decode
from asr.decoding.beam import PrefixBeamSearch, prefix_beam_search


def collapse(path: tuple[int, ...]) -> tuple[int, ...]:
    out = []
    for i, label in enumerate(path):
        if label != 0 and (i == 0 or label != path[i - 1]):
            out.append(label)
    return tuple(out)


def exact_label_probs(log_probs: torch.Tensor) -> dict[tuple[int, ...], float]:
    """Sum over every alignment: label sequence -> log-probability (brute force)."""
    T, V = log_probs.shape
    totals: dict[tuple[int, ...], float] = {}
    for path in itertools.product(range(V), repeat=T):
        score = float(sum(log_probs[t, label] for t, label in enumerate(path)))
        key = collapse(path)
        totals[key] = float(torch.logaddexp(torch.tensor(totals.get(key, -math.inf)), torch.tensor(score)))
    return totals


@pytest.mark.parametrize("seed", range(4))
def test_wide_beam_is_exact(seed):
    log_probs = torch.randn(6, 3, generator=torch.Generator().manual_seed(seed)).mul(2).log_softmax(-1)  # (T, V)
    exact = exact_label_probs(log_probs)
    search = PrefixBeamSearch(beam_width=1000, expand=3)
    search.step(log_probs)
    found = dict((tuple(labels), score) for labels, score in search.hypotheses())
    best = max(exact, key=exact.get)
    assert tuple(search.best()) == best
    for labels, score in found.items():  # nothing pruned: every prefix probability is exact
        assert score == pytest.approx(exact[labels], abs=1e-5)


def test_beam_beats_greedy_when_alignments_add_up():
    # Each frame prefers the blank (0.4), but "1" spread over the frames is likelier overall.
    probs = torch.tensor([[0.4, 0.35, 0.25], [0.4, 0.35, 0.25], [0.4, 0.35, 0.25]])
    log_probs = probs.log()[None]  # (1, T, V)
    assert greedy_decode(log_probs, torch.tensor([3])) == [[]]
    assert prefix_beam_search(log_probs, torch.tensor([3]), beam_width=4) == [[1]]
    exact = exact_label_probs(log_probs[0])
    assert max(exact, key=exact.get) == (1,)


def test_repeated_labels_need_a_blank_between():
    # frames: a a blank a -> "a a" ; a a a -> "a"
    eye = torch.full((4, 3), 1e-4)
    for t, label in enumerate([1, 1, 0, 1]):
        eye[t, label] = 1.0
    assert prefix_beam_search(eye.log()[None], torch.tensor([4]), 4) == [[1, 1]]
    assert prefix_beam_search(eye.log()[None], torch.tensor([2]), 4) == [[1]]


def test_chunked_search_equals_whole():
    log_probs = torch.randn(40, 6, generator=torch.Generator().manual_seed(9)).mul(3).log_softmax(-1)
    whole = PrefixBeamSearch(5)
    whole.step(log_probs)
    chunked = PrefixBeamSearch(5)
    for start in range(0, 40, 7):
        chunked.step(log_probs[start : start + 7])
    assert whole.hypotheses() == chunked.hypotheses()


def test_batch_respects_lengths():
    log_probs = torch.randn(2, 30, 5, generator=torch.Generator().manual_seed(2)).mul(3).log_softmax(-1)
    lengths = torch.tensor([30, 12])
    out = prefix_beam_search(log_probs, lengths, 4)
    alone = prefix_beam_search(log_probs[1:, :12], torch.tensor([12]), 4)
    assert out[1] == alone[0]
    assert out[0] == prefix_beam_search(log_probs[:1], torch.tensor([30]), 4)[0]

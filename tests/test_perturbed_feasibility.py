"""Utterances that speed or tempo perturbation can make too short for their transcript under
CTC are left out of training: their loss would be infinite, and ``zero_infinity`` would turn
it into a silent zero instead of a report line."""

from __future__ import annotations

import pytest
import soundfile as sf
import torch
from torch.nn import functional as F

from asr.config import recipe_from_dict
from asr.data.augment.speed import speed_perturb
from asr.data.datamodule import filter_entries
from asr.data.manifest import Entry
from asr.model import CTCModel
from asr.text.tokenizer import Tokenizer
from test_augment import speak

TEXT = "SEVEN SHIPS"
SR = 16000


def recipe(**sections):
    """8x subsampling (80 ms frames): espeak-ng's "seven ships" fills its 12 character tokens
    with one frame to spare as spoken, and is a frame short 1.15 times faster."""
    model = {"subsampling": "dw8", "d_model": 32, "n_heads": 2, "n_layers": 1, "ff_dim": 64, "subsampling_channels": 8}
    return recipe_from_dict({"tokenizer": {"kind": "char"}, "model": model, **sections})


@pytest.fixture(scope="module")
def spoken(tmp_path_factory) -> tuple[Entry, torch.Tensor, Tokenizer]:
    folder = tmp_path_factory.mktemp("short")
    wave = speak(folder, TEXT)  # (N,)
    path = folder / "short.wav"
    sf.write(path, wave.numpy(), SR)
    tokenizer = Tokenizer.train([TEXT, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"], 40, "char")
    return Entry("short", str(path), wave.numel() / SR, TEXT), wave, tokenizer


def test_the_utterance_fits_as_spoken_and_not_sped_up(spoken):
    """What the filter must foresee: CTC of the sped-up utterance is infinite."""
    _, wave, tokenizer = spoken
    torch.manual_seed(0)
    r = recipe()
    model = CTCModel(r.model, r.features, r.specaug, tokenizer.vocab_size).eval()
    tokens = torch.tensor([tokenizer.encode(TEXT)])  # (1, U)
    losses = []
    for factor in (1.0, 1.15):
        faster = speed_perturb(wave, factor, SR)[None]  # (1, N')
        with torch.no_grad():
            log_probs, lengths = model(faster, torch.tensor([faster.shape[1]]))  # (1, T', V), (1,)
        losses.append(F.ctc_loss(log_probs.transpose(0, 1), tokens, lengths, torch.tensor([tokens.shape[1]])))
    assert torch.isfinite(losses[0]) and torch.isinf(losses[1])


@pytest.mark.parametrize(
    "sections",
    [
        {"data": {"speed_perturb": [0.9, 1.0, 1.15]}},
        {"augment": {"tempo_prob": 0.5, "tempo": [0.85, 1.15]}},
        {"data": {"speed_perturb": [1.05]}, "augment": {"tempo_prob": 1.0, "tempo": [1.1, 1.1]}},
    ],
)
def test_left_out_where_training_may_speed_it_up(spoken, sections):
    entry, _, tokenizer = spoken
    assert filter_entries([entry], recipe(), tokenizer) == ([entry], [])
    kept, report = filter_entries([entry], recipe(**sections), tokenizer)
    assert kept == [] and len(report) == 1
    assert report[0].startswith("skipped 1 utterances (too short for its transcript under CTC once sped up 1.1")


def test_kept_where_perturbation_only_slows_it_down(spoken):
    entry, _, tokenizer = spoken
    slower = recipe(data={"speed_perturb": [0.9, 1.0]}, augment={"tempo_prob": 1.0, "tempo": [0.85, 1.0]})
    assert filter_entries([entry], slower, tokenizer) == ([entry], [])

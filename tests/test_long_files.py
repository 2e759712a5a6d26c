"""Long files through overlapping full-context windows (asr/inference/windows.py): the
windows cover the audio exactly, the joined words are those of one pass over the whole file
but for the word at each cut, word times run forward inside the file, a file cut off
part-way keeps its words, and short files beside long ones are unchanged.

The equivalence test needs a model whose output at a frame depends on nothing but the
audio around it: a tiny untrained model with rotary positions and its attention outputs
zeroed. Then a window's log-probs equal those of the whole file at the same frames (the
windows start on output-frame boundaries), so any word lost, doubled or shifted at an
overlap is the joining's fault."""

from __future__ import annotations

import difflib
import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.audio.read import read_audio, to_mono_16k
from asr.config import ModelConfig, RecipeConfig
from asr.inference.recognizer import Recognizer
from asr.inference.stream import TranscribeOptions
from asr.inference.windows import WindowPlan, plan_windows, windows
from asr.model import CTCModel
from asr.text.tokenizer import Tokenizer
from corpora import WORDS
from models import tiny_untrained_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread
RATE = 16000
FRAME = 640  # samples per output frame (4 x 10 ms)


def local_recognizer(audio: torch.Tensor) -> Recognizer:
    """Untrained, head scaled up (varied text), attention outputs zero: frame-local. The
    word-start piece gets a bias that makes it win a fifth of the frames of ``audio``, so
    words are short (a fraction of a second) as in speech."""
    torch.manual_seed(0)
    tokenizer = Tokenizer.train(["THE QUICK BROWN FOX JUMPS OVER THE LAZY DOG"], 40, "char")
    recipe = RecipeConfig(
        model=ModelConfig(
            d_model=32, n_heads=2, n_layers=2, ff_dim=64, subsampling_channels=8, dropout=0.0, pos_enc="rope"
        )
    )
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size).eval()
    recognizer = Recognizer(recipe, tokenizer, model)
    space = next(i for i in range(tokenizer.vocab_size) if tokenizer.piece(i) == "▁")
    with torch.no_grad():
        model.head.weight.mul_(20)
        for layer in model.encoder.layers:
            layer.attn.proj.weight.zero_()
            layer.attn.proj.bias.zero_()
        (log_probs,) = recognizer.log_probs([audio])  # (T', V)
        others = log_probs.clone()
        others[:, space] = -torch.inf
        behind = others.max(dim=1).values - log_probs[:, space]  # how far the word start is from winning
        model.head.bias[space] += torch.quantile(behind, 0.2) + 1e-3
    return recognizer


@pytest.fixture(scope="module")
def long_file(tmp_path_factory) -> Path:
    """About 50 s: espeak-ng sentences of the test corpora's words, 0.4-1.2 s pauses between."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'bash scripts/setup.sh'")
    rng = random.Random(4)
    pieces, total = [], 0
    while total < 50 * RATE:
        text = " ".join(rng.choice(WORDS).lower() for _ in range(rng.randint(4, 9)))
        with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "170", "-w", tmp.name, text], check=True)
            samples, rate = sf.read(tmp.name, dtype="float32")
        pieces += [to_mono_16k(samples, rate).numpy(), np.zeros(int(RATE * rng.uniform(0.4, 1.2)), np.float32)]
        total += len(pieces[-2]) + len(pieces[-1])
    path = tmp_path_factory.mktemp("long") / "long.flac"
    sf.write(path, np.concatenate(pieces), RATE, subtype="PCM_16")
    return path


@pytest.fixture(scope="module")
def local(long_file) -> Recognizer:
    return local_recognizer(read_audio(long_file))


def timed(words) -> list[tuple[str, float, float]]:
    return [(w.text, w.start, w.end) for w in words]


@pytest.mark.parametrize("total", [20 * RATE + 1, 26 * RATE + 77, 50 * RATE, 3600 * RATE + 123])
def test_plan_keeps_windows_within_the_maximum_and_on_frame_boundaries(total):
    plan = plan_windows(total, 20 * RATE, 4 * RATE, FRAME)
    assert plan.length <= 20 * RATE and plan.overlap == 4 * RATE
    assert plan.hop % FRAME == 0 and plan.overlap % FRAME == 0
    count = -(-(total - plan.overlap) // plan.hop)
    assert (count - 1) * plan.hop + plan.length >= total  # the windows reach the end
    assert (count - 1) * plan.hop < total - plan.overlap  # and none is spare


def test_windows_cover_the_audio_in_order_and_hold_little():
    wave = torch.randn(50 * RATE + 321, generator=torch.Generator().manual_seed(2))
    plan = WindowPlan(length=8 * RATE, hop=6 * RATE)
    sizes, blocks, at = [1, 4000, 12345, 160 * 7, 70000], [], 0
    while at < wave.numel():  # irregular blocks
        blocks.append(wave[at : at + sizes[len(blocks) % len(sizes)]])
        at += blocks[-1].numel()
    got = list(windows(iter(blocks), plan))
    assert [start for start, _, _ in got] == list(range(0, 48 * RATE + 1, plan.hop))
    assert [last for _, _, last in got] == [False] * (len(got) - 1) + [True]
    for start, samples, _ in got:
        assert samples.numel() <= plan.length and torch.equal(samples, wave[start : start + samples.numel()])
    assert got[-1][0] + got[-1][1].numel() == wave.numel()
    exact = list(windows(iter([wave[: 2 * plan.hop + plan.overlap]]), plan))  # ends with a window: no tail
    assert [(s, w.numel(), last) for s, w, last in exact] == [(0, plan.length, False), (plan.hop, plan.length, True)]


def test_windows_equal_one_pass_but_at_the_cuts(local, long_file):
    recognizer = local
    options = TranscribeOptions(snap_words=False)  # snapping looks at each window's loudest frame
    (result,) = recognizer.transcribe_files([long_file], options)
    whole = recognizer.transcribe_batch([read_audio(long_file)], options, max_batch_seconds=1e9)[0]
    ours, truth = timed(result.transcript.words), timed(whole.words)
    assert result.error is None and len(truth) > 40
    cuts = len(result.transcript.segments) - 1
    assert cuts == 2  # 50 s in windows of at most 20 s that share 4 s
    matcher = difflib.SequenceMatcher(None, ours, truth, autojunk=False)
    same = sum(block.size for block in matcher.get_matching_blocks())
    # each cut may clip, lose or split a word longer than the margin it keeps; a doubled
    # or lost overlap would cost ~10 words (here none differs at all)
    assert same >= len(truth) - cuts and len(ours) <= len(truth) + cuts
    assert result.transcript.text == " ".join(w for w, _, _ in ours)


def test_word_times_run_forward_inside_the_file(long_file):
    recipe, tokenizer, model = tiny_untrained_model()  # attention and absolute positions: words vary by window
    recognizer = Recognizer(recipe, tokenizer, model.eval())
    (result,) = recognizer.transcribe_files([long_file])
    transcript = result.transcript
    duration = sf.info(str(long_file)).duration
    assert transcript.duration == pytest.approx(duration)
    words = transcript.words
    assert words and all(0 <= w.start <= w.end <= duration + 0.05 for w in words)
    assert all(a.end <= b.start for a, b in zip(words, words[1:]))
    segments = transcript.segments
    assert segments[0].start == 0 and segments[-1].end == pytest.approx(duration, abs=0.1)  # the last whole frame
    assert all(a.end == b.start for a, b in zip(segments, segments[1:]))
    assert all(s.end - s.start <= 20.0 for s in segments)
    assert [w for s in segments for w in s.words] == list(words)


def test_cut_off_long_file_keeps_what_was_read(local, long_file, tmp_path):
    recognizer = local
    data = long_file.read_bytes()
    cut = tmp_path / "cut.flac"
    cut.write_bytes(data[: len(data) * 3 // 5])  # about 30 of 50 s
    (result,) = recognizer.transcribe_files([cut])
    assert result.error is not None and str(cut) in result.error
    assert result.transcript.words and 20 < result.transcript.words[-1].end <= 31


def test_short_files_beside_a_long_one_are_unchanged(local, long_file, tmp_path):
    recognizer = local
    audio = read_audio(long_file)
    shorts = []
    for i, (start, seconds) in enumerate([(1.0, 3.0), (12.0, 6.5)]):
        shorts.append(tmp_path / f"short{i}.flac")
        sf.write(shorts[-1], audio[int(start * RATE) : int((start + seconds) * RATE)].numpy(), RATE, subtype="PCM_16")
    alone = list(recognizer.transcribe_files(shorts))
    mixed = list(recognizer.transcribe_files([shorts[0], long_file, shorts[1]]))
    assert [r.transcript for r in alone] == [mixed[0].transcript, mixed[2].transcript]
    batch = recognizer.transcribe_batch([read_audio(p) for p in shorts])
    assert [r.transcript for r in alone] == batch

"""Word timestamps against audio whose word boundaries are known: espeak-ng words joined
by known silences. A tiny model is trained here on such utterances (about a minute on two
cores); its word times must fall within 80 ms of the truth (median over starts and ends)."""

from __future__ import annotations

import io
import random
import shutil
import subprocess
import tempfile

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.decoding.alignment import align_tokens, group_words
from asr.audio.read import to_mono_16k
from asr.inference.recognizer import Recognizer
from asr.inference.stream import TranscribeOptions
from asr.text.tokenizer import Tokenizer
from models import small_chunk_trained

WORDS = ["red", "green", "blue", "yellow", "stop", "go", "left", "right"]
RATE = 16000


def word_clips() -> dict[str, np.ndarray]:
    """Each word spoken once, trimmed to where it is audible."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'bash scripts/setup.sh'")
    clips = {}
    for word in WORDS:
        with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", tmp.name, word], check=True)
            samples, rate = sf.read(tmp.name, dtype="float32")
        wave = to_mono_16k(samples, rate).numpy()
        loud = np.flatnonzero(np.abs(wave) > 0.02 * np.abs(wave).max())
        clips[word.upper()] = wave[loud[0] : loud[-1] + 1]
    return clips


def utterance(clips, rng: random.Random, n_words: int):
    """-> (waveform, text, [(word, start s, end s)]) with silences of 0.15-0.5 s between words."""
    words = [rng.choice(sorted(clips)) for _ in range(n_words)]
    parts, truth, pos = [], [], 0
    lead = np.zeros(int(RATE * rng.uniform(0.2, 0.4)), np.float32)
    parts.append(lead)
    pos += len(lead)
    for word in words:
        clip = clips[word]
        truth.append((word, pos / RATE, (pos + len(clip)) / RATE))
        gap = np.zeros(int(RATE * rng.uniform(0.15, 0.5)), np.float32)
        parts += [clip, gap]
        pos += len(clip) + len(gap)
    noise = np.random.default_rng(rng.randint(0, 2**30)).normal(0, 1e-3, pos).astype(np.float32)
    return torch.from_numpy(np.concatenate(parts) + noise), " ".join(words), truth


def word_tokenizer(texts: list[str]) -> Tokenizer:
    """One token per word: the model only has to learn eight classes."""
    import sentencepiece as spm

    proto = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(texts), model_writer=proto, model_type="word", vocab_size=len(WORDS) + 1,
        hard_vocab_limit=False, unk_id=0, bos_id=-1, eos_id=-1, pad_id=-1, minloglevel=2,
    )  # fmt: skip
    return Tokenizer(proto.getvalue())


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


@pytest.fixture(scope="module")
def trained():
    """-> (recognizer, test utterances) after 500 steps on 120 generated utterances."""
    rng = random.Random(0)
    clips = word_clips()
    train = [utterance(clips, rng, rng.randint(2, 5)) for _ in range(120)]
    test = [utterance(clips, rng, 4) for _ in range(6)]
    tokenizer = word_tokenizer([text for _, text, _ in train])
    # chunk-trained: the 320 ms streaming case must hold; 150 steps sufficed on one CPU, 300 on
    # 40 utterances not on another (AMD EPYC): margin
    recipe, model = small_chunk_trained(tokenizer, [(w, t) for w, t, _ in train], 500, rng)
    return Recognizer(recipe, tokenizer, model), test


def timing_errors(recognizer, test, options) -> np.ndarray:
    errors = []
    for wave, text, truth in test:
        result = recognizer.transcribe(wave, options)
        assert result.text == text  # the model learned the words, so the times can be compared
        assert [w.text for w in result.words] == [word for word, _, _ in truth]
        for word, (_, start, end) in zip(result.words, truth):
            assert 0 < word.confidence <= 1 and word.start < word.end
            errors += [word.start - start, word.end - end]
    return np.abs(np.array(errors))


@pytest.mark.parametrize("chunk_ms", [0, 320])
def test_word_times_within_80_ms(trained, chunk_ms):
    recognizer, test = trained
    errors = timing_errors(recognizer, test, TranscribeOptions(chunk_ms=chunk_ms))
    assert np.median(errors) <= 0.080, errors
    assert errors.max() <= 0.2, errors


def test_aligned_spans_alone_fall_on_their_words(trained):
    """Without moving edges onto pauses, each word's CTC span must still overlap the word
    it names: the frame -> seconds conversion (frame x 4 x 10 ms) is right."""
    recognizer, test = trained
    for wave, _, truth in test:
        result = recognizer.transcribe(wave, TranscribeOptions(snap_words=False))
        for word, (_, start, end) in zip(result.words, truth):
            assert word.start < end and word.end > start, (word, start, end)


def test_frames_to_seconds():
    """Spikes at frames 10 and 30 of a 40 ms frame rate start words at 0.40 s and 1.20 s."""
    tokenizer = word_tokenizer(["RED GREEN"] * 3)
    red, green = tokenizer.encode("RED GREEN")
    log_probs = torch.full((50, tokenizer.vocab_size), -20.0)
    log_probs[:, 0] = 0.0
    log_probs[10, red], log_probs[10, 0] = 0.0, -20.0
    log_probs[30:32, green], log_probs[30:32, 0] = 0.0, -20.0
    words = group_words(tokenizer, align_tokens(log_probs, [red, green]), frame_shift=0.04, offset=2.0)
    assert [(w.text, w.start, w.end) for w in words] == [("RED", 2.4, 2.44), ("GREEN", 3.2, 3.28)]
    assert all(w.confidence == pytest.approx(1.0) for w in words)

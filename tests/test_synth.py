"""The synthesis engines, new speakers by warping, and the resumable multi-engine corpus.

Every engine installed here must speak a sentence offline (sockets are made to fail), at
16 kHz, audibly and with a plausible duration; an engine that cannot run is skipped with
its one-line reason. Warping must move the spectrum the right way without changing the
length. The plan must be a function of the seed, and an interrupted generation must end
with the very same files.
"""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest
import torch
import torchaudio.functional as AF

from asr.config import CorpusConfig
from asr.corpus.synth import ENGINES, Engine, Style, load_engines
from asr.corpus.synth.corpus import generate_corpus
from asr.corpus.synth.espeak import EspeakEngine
from asr.corpus.synth.pico import PicoEngine
from asr.corpus.synth.plan import corpus_plan
from asr.corpus.synth.voices import warp
from engines import engine_or_skip, low_centroid

SENTENCE = "Return the number of items in the list, or raise an error."  # 11 words
SENTENCES = [
    "Return a new view of the dictionary's keys",
    "The default value is used when the argument is missing",
    "Close the file and release its resources",
    "This method is called when the object is destroyed",
    "Raise an exception if the queue is full",
    "Each line of the file is read in turn",
    "The result is rounded to the nearest integer",
    "Write the string to the stream and flush it",
]


@pytest.fixture
def offline(monkeypatch):
    """Any attempt to open a network connection fails the test."""

    def refuse(*args, **kwargs):
        raise AssertionError("an engine tried to use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


@pytest.mark.parametrize("name", sorted(ENGINES))
def test_engine_speaks_offline(name, offline):
    engine = engine_or_skip(name)
    voice = engine.voices()[0]
    wave = engine.synthesize(SENTENCE, voice, Style(rate=1.0, seed=1))
    assert wave.dtype == torch.float32 and wave.dim() == 1
    seconds = wave.numel() / 16000
    assert 1.8 < seconds < 7.0, f"{name}: {seconds:.2f} s for 11 words"
    assert abs(float(wave.abs().max()) - 0.9) < 1e-3  # peak-normalized
    frames = wave[: wave.numel() // 400 * 400].view(-1, 400)  # (frames, 25 ms)
    assert (frames.pow(2).mean(1).sqrt() > 0.02).float().mean() > 0.3  # speech, not a click in silence
    faster = engine.synthesize(SENTENCE, voice, Style(rate=1.2, seed=1))
    assert faster.numel() < 0.95 * wave.numel()  # the engine's own rate control works


def test_piper_gives_the_same_audio_for_a_seed_and_other_audio_for_another():
    """Piper samples noise inside its graph: each utterance's session is seeded from its style,
    and sessions load the graph optimized once per process (asr.corpus.synth.piper)."""
    engine = engine_or_skip("piper")
    voice = engine.voices()[0]
    first = engine.synthesize(SENTENCE, voice, Style(seed=3))
    other = engine.synthesize(SENTENCE, voice, Style(seed=4))
    assert torch.equal(engine.synthesize(SENTENCE, voice, Style(seed=3)), first)
    assert torch.equal(type(engine)().synthesize(SENTENCE, voice, Style(seed=3)), first)  # a new process's engine
    assert not (other.numel() == first.numel() and torch.equal(other, first))


class _Broken(Engine):
    name, licence = "broken", "none"

    def voices(self):
        return ["x"]

    def unavailable(self):
        return "its library is not installed (simulated)"

    def speak(self, text, voice, style):
        raise AssertionError("never called")


def test_unavailable_engine_is_skipped_with_one_line(capsys):
    registry = {"broken": _Broken, "espeak": EspeakEngine}
    engines = load_engines(["broken", "espeak"], registry)
    assert list(engines) == (["espeak"] if EspeakEngine().unavailable() is None else [])
    lines = [line for line in capsys.readouterr().out.splitlines() if "broken" in line]
    assert lines == ["synth: skipping engine broken: its library is not installed (simulated)"]
    with pytest.raises(ValueError, match="unknown synthesis engine 'nope'"):
        load_engines(["nope"], registry)


def test_warp_moves_formants_and_pitch_keeps_duration():
    engine = engine_or_skip("espeak")
    wave = engine.synthesize(SENTENCE, "en-us+m3", Style())
    base = low_centroid(wave)
    up, down = warp(wave, 16000, 1.12), warp(wave, 16000, 0.88)
    assert low_centroid(up) > base * 1.01 and low_centroid(down) < base * 0.97
    higher = warp(wave, 16000, 1.0, 1.2)
    f0 = [float(AF.detect_pitch_frequency(w, 16000, freq_low=60, freq_high=400).median()) for w in (wave, higher)]
    assert f0[1] > 1.08 * f0[0]  # pitch up by about 1.2
    for out in (up, down, higher, warp(wave, 16000, 0.9, 0.85)):
        assert abs(out.numel() - wave.numel()) <= 0.1 * wave.numel()
        assert torch.isfinite(out).all()


def test_plan_is_a_function_of_the_seed_and_holds_speakers_out():
    engines = {"espeak": EspeakEngine(), "pico": PicoEngine()}
    sentences = {"train": SENTENCES[:6], "dev": SENTENCES[6:7], "test": SENTENCES[7:]}
    config = CorpusConfig(engines=("espeak", "pico"), engine_weights=(3.0, 1.0), warp_prob=0.5, train_voices=3)
    plan = corpus_plan(config, sentences, engines)
    assert plan == corpus_plan(config, sentences, engines)
    assert plan != corpus_plan(CorpusConfig(**{**config.__dict__, "seed": 1}), sentences, engines)
    who = {split: {(u.engine, u.voice, u.style.warp) for u in utts} for split, utts in plan.items()}
    assert not who["train"] & (who["dev"] | who["test"])  # no dev/test speaker is heard in training
    ids = {}
    for utts in plan.values():
        for u in utts:
            assert ids.setdefault(u.utt_id.split("-")[0], (u.engine, u.voice, u.style.warp)) == (
                u.engine, u.voice, u.style.warp)  # fmt: skip
    assert len(plan["train"]) == 18 and all(0.85 <= u.style.rate <= 1.2 for u in plan["train"])


def _checksums(root: Path) -> dict[str, str]:
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(root.rglob("*.flac"))}


def test_interrupted_generation_resumes_to_identical_files(tmp_path, capsys):
    names = ("espeak", "pico", "hibari", "piper")
    config = CorpusConfig(root=str(tmp_path), engines=names, train_voices=1, warp_prob=0.5, workers=1)
    sentences = {"train": [("docs", s) for s in SENTENCES[:6]], "dev": SENTENCES[6:7], "test": SENTENCES[7:]}
    generate_corpus(config, sentences)
    out = capsys.readouterr().out
    assert "synth train: 6 utterances (0 already on disk)" in out and "source docs" in out
    engines_used = {line.split()[1] for line in out.splitlines() if line.strip().startswith("engine ")}
    assert engines_used and engines_used <= set(names)
    first = _checksums(tmp_path)
    assert len(first) == 8
    transcripts = sorted(tmp_path.rglob("*.trans.txt"))
    assert "RETURN A NEW VIEW OF THE DICTIONARY'S KEYS" in "".join(t.read_text() for t in transcripts)

    # An interrupted run: three files never written, one half-written temporary file left.
    lost = sorted((tmp_path / "train").rglob("*.flac"))[:3]
    for path in lost:
        path.unlink()
    (tmp_path / "train" / ".done").unlink()
    stray = lost[0].parent / f".{lost[0].name}.123.abcd.tmp"
    stray.write_bytes(b"fLaC half")
    generate_corpus(config, sentences)
    assert "synth train: 6 utterances (3 already on disk)" in capsys.readouterr().out
    assert _checksums(tmp_path) == first
    assert not stray.exists()

    generate_corpus(config, sentences)  # complete: returns at once, prints no counts
    assert "synth train" not in capsys.readouterr().out


def test_corpus_parts_follow_the_plan_and_mix_back_by_weight(tmp_path, monkeypatch):
    """The training split cut by engine and warp (asr.bench.corpus_parts) puts each utterance
    in the part of the speaker the plan gave it, and the mix overrides weigh the parts."""
    from asr.bench.corpus_parts import mix, split_parts
    from asr.config import load_recipe
    from asr.data.manifest import Entry, write_manifest
    from asr.corpus.synth.plan import speaker_table
    from asr.training.prepare import mixed_entries

    engines = {"espeak": EspeakEngine(), "pico": PicoEngine()}
    config = CorpusConfig(engines=("espeak", "pico"), warp_prob=0.5, train_voices=3)
    plan = corpus_plan(config, {"train": SENTENCES}, engines)["train"]
    entries = [Entry(u.utt_id, f"{u.utt_id}.flac", 1.0, u.text.upper()) for u in plan]
    write_manifest(tmp_path / "train.jsonl", entries)
    counts = split_parts(tmp_path / "train.jsonl", speaker_table("train", engines), tmp_path / "parts")
    truth = {}
    for u in plan:
        name = f"{u.engine}_{'plain' if u.style.warp == 1.0 else 'warp'}"
        truth[name] = truth.get(name, 0) + 1
    assert {name: n for name, (n, _) in counts.items()} == truth and sum(truth.values()) == len(SENTENCES) * 3
    parts = tuple(sorted(truth))
    monkeypatch.chdir(tmp_path)
    overrides = mix({"pico": 0, "warp": 2}, parts, root="parts")
    recipe = load_recipe(None, overrides)
    assert recipe.corpus.train_splits == ()
    got = mixed_entries(recipe.corpus.mix, seed=0)
    weight = {"espeak_plain": 1, "espeak_warp": 2, "pico_plain": 0, "pico_warp": 0}
    assert len(got) == sum(weight[name] * n for name, n in truth.items())
    assert not any(u.engine == "pico" and e.id == u.utt_id for e in got for u in plan)

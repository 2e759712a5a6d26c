"""The embedded corpus: English sentences spoken by espeak-ng, written in LibriSpeech's
on-disk layout (``<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` beside
``<speaker>-<chapter>.trans.txt``), so one loader reads this corpus and LibriSpeech.

A *voice* is an espeak-ng accent with a voice variant (``en-us+f3``). Splits are disjoint
by sentence; the dev and test splits are also spoken only by voices (variants) that never
occur in training. Each utterance draws its own speaking rate and pitch. Everything is a
function of the seed, so the same config gives the same corpus. A split is generated once:
a ``.done`` stamp records the settings, and a later call with the same settings returns at
once.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import soundfile as sf
from tqdm import tqdm

from asr.audio.read import to_mono_16k, write_flac
from asr.config import CorpusConfig
from asr.data.sentences import stdlib_sentences
from asr.text.normalize import normalize_text

ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029", "en-us-nyc")
TRAIN_VARIANTS = (
    "m1", "m2", "m3", "m5", "m6", "m7", "f1", "f2", "f4", "klatt", "klatt3", "Andy", "Annie",
    "adam", "aunty", "benjamin", "boris", "david", "edward", "grandpa", "iven", "john", "linda", "max",
)  # fmt: skip
HELDOUT_VARIANTS = ("m4", "m8", "f3", "f5", "klatt2", "Alex", "belinda", "caleb", "michel", "paul")
UTTERANCES_PER_CHAPTER = 100
INSTALL_HINT = "espeak-ng is not installed: run 'apt-get install espeak-ng' (the README's setup does this)"


class SynthesisError(RuntimeError):
    """espeak-ng missing or failing; the message says which and what to do."""


@dataclass(frozen=True)
class Utterance:
    """One sentence to speak: where it goes and how it is spoken."""

    utt_id: str  # speaker-chapter-index, LibriSpeech style
    text: str  # what espeak-ng reads (original punctuation, for prosody)
    voice: str  # accent+variant
    rate: int  # words per minute
    pitch: int  # 0..99


def _voices(variants: tuple[str, ...]) -> list[str]:
    return [f"{accent}+{variant}" for variant in variants for accent in ACCENTS]


def plan_split(sentences: list[str], voices: list[str], speakers_base: int, voices_per_sentence: int, seed: int):
    """Assign voices, rates and pitches to sentences -> list of :class:`Utterance`."""
    rng = random.Random(seed)
    plan = []
    for index, sentence in enumerate(sentences):
        for voice in rng.sample(voices, voices_per_sentence):
            speaker = speakers_base + voices.index(voice)
            plan.append((speaker, sentence, voice, rng.randint(135, 195), rng.randint(30, 70)))
    plan.sort(key=lambda item: item[0])
    utterances, counters = [], {}
    for speaker, sentence, voice, rate, pitch in plan:
        n = counters[speaker] = counters.get(speaker, -1) + 1
        chapter = n // UTTERANCES_PER_CHAPTER
        utterances.append(Utterance(f"{speaker}-{chapter}-{n % UTTERANCES_PER_CHAPTER:04d}", sentence, voice, rate, pitch))
    return utterances


def corpus_plan(config: CorpusConfig) -> dict[str, list[Utterance]]:
    """Sentences split disjointly, voices held out for dev/test -> {split: utterances}."""
    sentences = stdlib_sentences()
    random.Random(config.seed).shuffle(sentences)
    need = config.train_sentences + config.dev_sentences + config.test_sentences
    if need > len(sentences):
        raise ValueError(f"corpus asks for {need} sentences; the text source has {len(sentences)}")
    test = sentences[: config.test_sentences]
    dev = sentences[config.test_sentences : config.test_sentences + config.dev_sentences]
    train = sentences[config.test_sentences + config.dev_sentences : need]
    heldout = _voices(HELDOUT_VARIANTS)
    return {
        "train": plan_split(train, _voices(TRAIN_VARIANTS), 1000, config.train_voices, config.seed + 1),
        "dev": plan_split(dev, heldout, 5000, 1, config.seed + 2),
        "test": plan_split(test, heldout, 6000, 1, config.seed + 3),
    }


def _espeak_binary() -> str:
    binary = shutil.which("espeak-ng")
    if binary is None:
        raise SynthesisError(INSTALL_HINT)
    return binary


def _speak(args: tuple[str, Utterance, str]) -> tuple[str, str, float]:
    """Worker: synthesize one utterance to FLAC -> (utt_id, transcript, seconds)."""
    binary, utt, folder = args
    with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
        cmd = [binary, "-v", utt.voice, "-s", str(utt.rate), "-p", str(utt.pitch), "-w", tmp.name, utt.text]
        done = subprocess.run(cmd, capture_output=True, text=True)
        if done.returncode != 0:
            raise SynthesisError(f"espeak-ng failed for {utt.utt_id} ({utt.voice}): {done.stderr.strip()}")
        samples, rate = sf.read(tmp.name, dtype="float32")
    wave = to_mono_16k(samples, rate)
    speaker, chapter, _ = utt.utt_id.split("-")
    write_flac(Path(folder) / speaker / chapter / f"{utt.utt_id}.flac", wave)
    return utt.utt_id, normalize_text(utt.text), wave.numel() / 16000


def _stamp(config: CorpusConfig, split: str, utterances: list[Utterance]) -> str:
    digest = hashlib.sha256(json.dumps([u.__dict__ for u in utterances]).encode()).hexdigest()
    return json.dumps({"split": split, "seed": config.seed, "plan_sha256": digest})


def generate_split(config: CorpusConfig, split: str, utterances: list[Utterance]) -> Path:
    """Write one split under ``config.root/split`` unless it is already there."""
    folder = Path(config.root) / split
    stamp = _stamp(config, split, utterances)
    done_file = folder / ".done"
    if done_file.exists() and done_file.read_text() == stamp:
        return folder
    binary = _espeak_binary()
    if folder.exists():
        shutil.rmtree(folder)  # a partial or differently-configured split
    (Path(config.root) / f"{split}.jsonl").unlink(missing_ok=True)  # its manifest is stale too
    for utt in utterances:
        speaker, chapter, _ = utt.utt_id.split("-")
        (folder / speaker / chapter).mkdir(parents=True, exist_ok=True)
    workers = config.workers or os.cpu_count() or 1
    jobs = [(binary, utt, str(folder)) for utt in utterances]
    transcripts: dict[tuple[str, str], list[str]] = {}
    with get_context("fork").Pool(workers, initializer=_single_thread) as pool:
        results = pool.imap(_speak, jobs, chunksize=16)
        for utt_id, text, _ in tqdm(results, total=len(jobs), desc=f"espeak-ng {split}", unit="utt"):
            speaker, chapter, _ = utt_id.split("-")
            transcripts.setdefault((speaker, chapter), []).append(f"{utt_id} {text}")
    for (speaker, chapter), lines in transcripts.items():
        (folder / speaker / chapter / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(sorted(lines)) + "\n")
    done_file.write_text(stamp)
    return folder


def _single_thread() -> None:
    import torch

    torch.set_num_threads(1)


def generate_corpus(config: CorpusConfig) -> dict[str, Path]:
    """Generate (or find cached) train/dev/test splits -> {split: folder}."""
    return {split: generate_split(config, split, utts) for split, utts in corpus_plan(config).items()}

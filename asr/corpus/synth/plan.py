"""The corpus plan: which engine, voice and style speaks each sentence, as a pure function of
the config's seed and the sentences given.

A *speaker* is one (engine, voice, warp bucket); each gets its own LibriSpeech speaker id
(train from 1000, dev from 5000, test from 6000, other splits from 7000 in steps of 1000),
so per-speaker counts mean something. Training uses each engine's training voices with
the warps of :data:`TRAIN_WARPS`; every other split uses the engine's held-out voices
with :data:`HELDOUT_WARPS` (interleaved with the training ones, never equal), or, for an
engine with no held-out voices, all its voices and always a held-out warp: so no dev or
test speaker is ever heard in training.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from typing import Mapping, Sequence

from asr.config import CorpusConfig
from asr.corpus.synth.base import Engine, Style

TRAIN_WARPS = (0.88, 0.92, 0.96, 1.04, 1.08, 1.12)  # warp buckets heard in training (1.0 = unwarped)
HELDOUT_WARPS = (0.9, 0.94, 1.06, 1.1)  # warp buckets for dev/test speakers only
UTTERANCES_PER_CHAPTER = 100
SPEAKER_BASE = {"train": 1000, "dev": 5000, "test": 6000}  # as the espeak-only corpus had them
MAX_SPEAKERS = {"train": 4000}  # ids available to a split (train 1000..4999); others 1000
DEFAULT_SOURCE = "text"  # the text-source name of a sentence given as a bare string

Sentence = str | tuple[str, str]  # "text" or (source, "text")


@dataclass(frozen=True)
class Utterance:
    """One sentence to speak: where it goes, who speaks it and how."""

    utt_id: str  # speaker-chapter-index, LibriSpeech style
    text: str  # what the engine reads (original punctuation, for prosody)
    source: str  # where the text came from (counted per source)
    engine: str
    voice: str
    style: Style


@dataclass(frozen=True)
class _Pool:
    """The speakers one split may use: per engine, its voices and warp buckets."""

    voices: dict[str, list[str]]  # engine -> voices
    warps: tuple[float, ...]  # warp buckets to draw from
    always_warp: frozenset[str]  # engines whose every utterance must be warped (no held-out voices)


def _pool(split: str, engines: Mapping[str, Engine]) -> _Pool:
    voices, always = {}, set()
    for name, engine in engines.items():
        heldout = [v for v in engine.heldout_voices() if v in engine.voices()]
        if split == "train":
            voices[name] = [v for v in engine.voices() if v not in heldout]
        elif heldout:
            voices[name] = heldout
        else:
            voices[name], _ = engine.voices(), always.add(name)
    return _Pool(voices, TRAIN_WARPS if split == "train" else HELDOUT_WARPS, frozenset(always))


def speaker_keys(pool: _Pool) -> list[tuple[str, str, float]]:
    """Every (engine, voice, warp) this pool can produce, in id order."""
    keys = []
    for engine in sorted(pool.voices):
        warps = pool.warps if engine in pool.always_warp else (1.0, *pool.warps)
        keys += [(engine, voice, warp) for voice in pool.voices[engine] for warp in warps]
    return keys


def _speaker_ids(pool: _Pool, base: int) -> dict[tuple[str, str, float], int]:
    """{(engine, voice, warp): speaker id}: the pool's speakers numbered from ``base``."""
    return {key: base + i for i, key in enumerate(speaker_keys(pool))}


def speaker_table(split: str, engines: Mapping[str, Engine]) -> dict[int, tuple[str, str, float]]:
    """{speaker id: (engine, voice, warp)} of one split, as :func:`corpus_plan` numbers them
    for these engines (1.0 = unwarped); a function of which engines and voices are installed."""
    return {speaker: key for key, speaker in _speaker_ids(_pool(split, engines), SPEAKER_BASE[split]).items()}


def _draw_speaker(rng: random.Random, pool: _Pool, names: list[str], weights: list[float], warp_prob: float):
    engine = rng.choices(names, weights)[0]
    voice = rng.choice(pool.voices[engine])
    warped = engine in pool.always_warp or rng.random() < warp_prob
    return engine, voice, rng.choice(pool.warps) if warped else 1.0


def plan_split(
    split: str, sentences: Sequence[Sentence], engines: Mapping[str, Engine], config: CorpusConfig, seed: int, base: int
) -> list[Utterance]:
    """Speakers (ids from ``base``) and styles for one split's sentences -> utterances sorted by id."""
    pool = _pool(split, engines)
    names = [name for name in config.engines if name in engines and pool.voices.get(name)]
    if not names:
        raise ValueError(f"no engine with voices for split {split!r} (asked for {', '.join(config.engines)})")
    weights = [_weight(config, name) for name in names]
    ids = _speaker_ids(pool, base)
    limit = MAX_SPEAKERS.get(split, 1000)
    if len(ids) > limit:
        raise ValueError(f"split {split!r} would have {len(ids)} speakers; at most {limit} fit its id range")
    per_sentence = config.train_voices if split == "train" else 1
    rng = random.Random(seed)
    drawn = []
    for sentence in sentences:
        source, text = (DEFAULT_SOURCE, sentence) if isinstance(sentence, str) else sentence
        chosen: list[tuple[str, str, float]] = []
        for _ in range(per_sentence):
            for _attempt in range(20):  # distinct speakers per sentence where the pool allows
                key = _draw_speaker(rng, pool, names, weights, config.warp_prob)
                if key not in chosen:
                    break
            chosen.append(key)
            style = Style(
                rate=round(rng.uniform(*config.rate_range), 3),
                pitch=round(rng.uniform(*config.pitch_range), 3),
                warp=key[2],
                seed=rng.getrandbits(31),
            )
            drawn.append((ids[key], text, source, key, style))
    drawn.sort(key=lambda item: item[0])  # stable: sentence order within a speaker
    utterances, counters = [], {}
    for speaker, text, source, (engine, voice, _), style in drawn:
        n = counters[speaker] = counters.get(speaker, -1) + 1
        utt_id = f"{speaker}-{n // UTTERANCES_PER_CHAPTER}-{n % UTTERANCES_PER_CHAPTER:04d}"
        utterances.append(Utterance(utt_id, text, source, engine, voice, style))
    return utterances


def _weight(config: CorpusConfig, name: str) -> float:
    if not config.engine_weights:
        return 1.0
    if len(config.engine_weights) != len(config.engines):
        count = len(config.engine_weights)
        raise ValueError(f"corpus.engine_weights has {count} values for {len(config.engines)} engines")
    return float(config.engine_weights[config.engines.index(name)])


def corpus_plan(
    config: CorpusConfig, sentences: Mapping[str, Sequence[Sentence]], engines: Mapping[str, Engine]
) -> dict[str, list[Utterance]]:
    """{split: sentences} -> {split: utterances}; a function of config.seed, the sentences and
    which engines (and voices) are installed. Each split draws from its own random stream
    (train, dev, test: seed + 1, 2, 3, as the espeak-only corpus; others after them)."""
    others = sorted(split for split in sentences if split not in SPEAKER_BASE)
    plans = {}
    for split in sentences:
        order = list(SPEAKER_BASE).index(split) if split in SPEAKER_BASE else len(SPEAKER_BASE) + others.index(split)
        base = SPEAKER_BASE.get(split, 7000 + 1000 * (order - len(SPEAKER_BASE)))
        plans[split] = plan_split(split, sentences[split], engines, config, config.seed + 1 + order, base)
    return plans


def plan_digest(utterances: Sequence[Utterance]) -> str:
    """sha256 of a split's plan: the stamp that says which files a folder holds."""
    return hashlib.sha256(json.dumps([asdict(u) for u in utterances]).encode()).hexdigest()

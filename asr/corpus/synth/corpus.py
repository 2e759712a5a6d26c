"""Generate the synthesized corpus in LibriSpeech's on-disk layout
(``<split>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`` beside
``<speaker>-<chapter>.trans.txt``, transcripts through :func:`asr.text.normalize_text`).

Resumable: every file is written atomically, so a file under its final name is whole. A
split's folder holds a ``.plan`` stamp (the plan's sha256) from its first file on; a run
with the same plan synthesizes only the missing utterances (and removes temporary files
an interrupted run left), a different plan starts the folder afresh. ``.done`` (the same
stamp) is written last, and a split that has it returns at once. Engines are
deterministic for a style (seeded noise), so a resumed split ends with the same files.
"""

from __future__ import annotations

import json
import os
import shutil
from collections import defaultdict
from multiprocessing import get_context
from pathlib import Path
from typing import Mapping, Sequence

import soundfile as sf
from tqdm import tqdm

from asr.audio import write_flac
from asr.audio.atomic import atomic_write, atomic_write_text
from asr.config import CorpusConfig
from asr.corpus.synth.base import SAMPLE_RATE, Engine
from asr.corpus.synth.personas import PersonaEngine
from asr.corpus.synth.plan import Sentence, Utterance, corpus_plan, plan_digest
from asr.corpus.synth.registry import ENGINES, load_engines
from asr.text import normalize_text

__all__ = ["corpus_plan", "generate_corpus", "generate_split", "format_counts"]

_WORKER_ENGINES: dict[str, Engine] = {}  # per worker process, built on first use


def _stamp(split: str, utterances: Sequence[Utterance]) -> str:
    return json.dumps({"split": split, "plan_sha256": plan_digest(utterances)})


def _flac_path(folder: Path, utt_id: str) -> Path:
    speaker, chapter, _ = utt_id.split("-")
    return folder / speaker / chapter / f"{utt_id}.flac"


def _speak(job: tuple[Utterance, str]) -> tuple[str, float]:
    """Worker: synthesize one utterance and write its FLAC atomically -> (utt_id, seconds)."""
    utt, folder = job
    engine = _WORKER_ENGINES.get(utt.engine)
    if engine is None:  # the wrapper speaks plain voices as they are, and "voice~persona" as planned
        engine = _WORKER_ENGINES[utt.engine] = PersonaEngine(ENGINES[utt.engine]())
    wave = engine.synthesize(utt.text, utt.voice, utt.style)
    atomic_write(_flac_path(Path(folder), utt.utt_id), lambda tmp: write_flac(tmp, wave))
    return utt.utt_id, wave.numel() / SAMPLE_RATE


def _single_thread() -> None:
    import torch

    torch.set_num_threads(1)


def _existing_seconds(path: Path) -> float | None:
    """Duration of a finished file, or None when it is missing or unreadable."""
    try:
        info = sf.info(str(path))
    except (RuntimeError, OSError):  # soundfile raises LibsndfileError (a RuntimeError)
        return None
    return info.frames / info.samplerate if info.frames > 0 else None


def _prepare_folder(folder: Path, stamp: str) -> None:
    """Start afresh unless the folder was begun with this very plan; drop leftover temp files."""
    plan_file = folder / ".plan"
    if folder.exists() and not (plan_file.exists() and plan_file.read_text() == stamp):
        shutil.rmtree(folder)  # another plan's files (or an old espeak-only split): not ours to trust
    folder.mkdir(parents=True, exist_ok=True)
    if not plan_file.exists():
        atomic_write_text(plan_file, stamp)
    for tmp in folder.rglob(".*.tmp"):
        tmp.unlink(missing_ok=True)  # a write an interrupted run never finished


def generate_split(
    config: CorpusConfig, split: str, utterances: Sequence[Utterance], rtf: Mapping[str, float] | None = None
) -> Path:
    """Write (or complete) one split under ``config.root/split``; print its counts when made.

    ``rtf`` ({engine: CPU seconds per audio second}) orders the work costliest first, so no
    slow engine's utterances are left running on one core at the end."""
    folder = Path(config.root) / split
    stamp = _stamp(split, utterances)
    done_file = folder / ".done"
    if done_file.exists() and done_file.read_text() == stamp:
        return folder
    (Path(config.root) / f"{split}.jsonl").unlink(missing_ok=True)  # its manifest is stale now
    _prepare_folder(folder, stamp)
    seconds: dict[str, float] = {}
    todo = []
    for utt in utterances:
        found = _existing_seconds(_flac_path(folder, utt.utt_id))
        if found is None:
            todo.append(utt)
        else:
            seconds[utt.utt_id] = found
    if todo:
        workers = max(1, min(config.workers or len(os.sched_getaffinity(0)), len(todo)))
        cost = rtf or {}
        todo.sort(key=lambda utt: -cost.get(utt.engine, 0.0) * len(utt.text) / utt.style.rate)
        jobs = [(utt, str(folder)) for utt in todo]
        with get_context("fork").Pool(workers, initializer=_single_thread) as pool:
            results = pool.imap_unordered(_speak, jobs, chunksize=4)
            for utt_id, duration in tqdm(results, total=len(jobs), desc=f"synth {split}", unit="utt"):
                seconds[utt_id] = duration
    _write_transcripts(folder, utterances)
    print(format_counts(split, utterances, seconds, resumed=len(utterances) - len(todo)))
    atomic_write_text(done_file, stamp)
    return folder


def _write_transcripts(folder: Path, utterances: Sequence[Utterance]) -> None:
    chapters: dict[tuple[str, str], list[str]] = defaultdict(list)
    for utt in utterances:
        speaker, chapter, _ = utt.utt_id.split("-")
        chapters[(speaker, chapter)].append(f"{utt.utt_id} {normalize_text(utt.text)}")
    for (speaker, chapter), lines in chapters.items():
        path = folder / speaker / chapter / f"{speaker}-{chapter}.trans.txt"
        atomic_write_text(path, "\n".join(sorted(lines)) + "\n")


def format_counts(split: str, utterances: Sequence[Utterance], seconds: Mapping[str, float], resumed: int = 0) -> str:
    """Per engine and per text source: utterances, hours, voices (distinct engine voices) and
    speakers (voice x warp bucket) -> a small table."""
    lines = [f"synth {split}: {len(utterances)} utterances ({resumed} already on disk)"]
    for label, key in (("engine", lambda u: u.engine), ("source", lambda u: u.source)):
        groups: dict[str, list[Utterance]] = defaultdict(list)
        for utt in utterances:
            groups[key(utt)].append(utt)
        for name in sorted(groups):
            group = groups[name]
            hours = sum(seconds.get(u.utt_id, 0.0) for u in group) / 3600
            voices = len({(u.engine, u.voice) for u in group})
            speakers = len({u.utt_id.split("-")[0] for u in group})
            lines.append(
                f"  {label} {name:<10} {len(group):>7} utts {hours:>8.3f} h {voices:>4} voices {speakers:>5} speakers"
            )
    return "\n".join(lines)


def generate_corpus(config: CorpusConfig, sentences: Mapping[str, Sequence[Sentence]]) -> dict[str, Path]:
    """{split: sentences} (each a string or (source, string)) -> {split: folder}, generated or
    found complete. Engines in ``config.engines`` that cannot run here are skipped, named."""
    engines = load_engines(config.engines, personas=config.personas)
    if not engines:
        raise RuntimeError(f"none of the synthesis engines {', '.join(config.engines)} can run here")
    plans = corpus_plan(config, sentences, engines)
    rtf = {name: engine.rtf for name, engine in engines.items()}
    return {split: generate_split(config, split, utterances, rtf) for split, utterances in plans.items()}

"""End-to-end transcription speed: files in, text out, as ``transcribe.py`` does it.

The clock runs from the first file read to the last text decoded (reading, resampling,
log-mel, the model, greedy decoding, word timings); loading the model is timed apart.
Real-time factor (RTF) = processing seconds / audio seconds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Sequence

import soundfile as sf
import torch

from asr.bench.flops import feature_frames, utterance_flops
from asr.bench.machine import peak_memory_gib
from asr.inference.options import TranscribeOptions
from asr.inference.recognizer import Recognizer
from asr.text.wer import score


def audio_seconds(paths: Sequence[Path]) -> float:
    return sum(sf.info(str(p)).duration for p in paths)


def _timed(transcribe: Callable[[list[Path]], dict[str, str]], paths: list[Path], warmup: int) -> tuple[dict, float]:
    transcribe(paths[:warmup])  # thread pools, allocator, kernel selection
    started = time.perf_counter()
    hyps = transcribe(paths)
    return hyps, time.perf_counter() - started


def ours(
    recognizer: Recognizer, paths: Sequence[Path], refs: dict[str, str] | None, warmup: int = 8, options=None
) -> dict:
    """RTF, model GFLOP/s and WER (when ``refs``) of a :class:`Recognizer` over ``paths``, with
    ``options`` (:class:`asr.inference.TranscribeOptions`; None: the model's default decoding)."""
    options = options or TranscribeOptions()

    def transcribe(batch: list[Path]) -> dict[str, str]:
        results = recognizer.transcribe_files(batch, options)
        return {r.path.stem: r.transcript.text if r.transcript else "" for r in results}

    paths = list(paths)
    hyps, seconds = _timed(transcribe, paths, warmup)
    infos = [sf.info(str(p)) for p in paths]
    audio = sum(info.duration for info in infos)
    features = recognizer.recipe.features
    samples = [round(info.frames * features.sample_rate / info.samplerate) for info in infos]  # after resampling
    frames = [feature_frames(n, features) for n in samples]
    flops = utterance_flops(recognizer.recipe.model, features, recognizer.tokenizer.vocab_size, frames)
    out = {
        "audio_seconds": round(audio, 1),
        "seconds": round(seconds, 4),
        "rtf": round(seconds / audio, 5),
        "model_gflops": round(flops / seconds / 1e9, 1),
        "peak_memory_gib": round(peak_memory_gib(recognizer.device), 2),
        "threads": torch.get_num_threads(),
    }
    if refs:
        out["wer"] = round(100 * score(refs, hyps).wer, 2)
    return out


def pocketsphinx(paths: Sequence[Path], refs: dict[str, str] | None, warmup: int = 2) -> dict:
    """The same figures for PocketSphinx 5 with its bundled US English model (one thread)."""
    from pocketsphinx import Decoder

    started = time.perf_counter()
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    load = time.perf_counter() - started

    def transcribe(batch: list[Path]) -> dict[str, str]:
        out = {}
        for path in batch:
            samples, rate = sf.read(str(path), dtype="int16")
            if rate != 16000 or samples.ndim != 1:
                raise ValueError(f"{path}: PocketSphinx here takes 16 kHz mono audio")
            decoder.start_utt()
            decoder.process_raw(samples.tobytes(), full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            out[path.stem] = hyp.hypstr if hyp is not None else ""
        return out

    paths = list(paths)
    hyps, seconds = _timed(transcribe, paths, warmup)
    audio = audio_seconds(paths)
    out = {
        "audio_seconds": round(audio, 1),
        "seconds": round(seconds, 4),
        "rtf": round(seconds / audio, 5),
        "load_seconds": round(load, 2),
        "peak_memory_gib": round(peak_memory_gib(torch.device("cpu")), 2),
        "threads": 1,
    }
    if refs:
        out["wer"] = round(100 * score(refs, hyps).wer, 2)
    return out

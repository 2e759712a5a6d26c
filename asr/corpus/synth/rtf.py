"""Real-time factor of each engine on one core: CPU seconds per second of audio.

``python -m asr.corpus.synth.rtf [--engines espeak pico ...] [--sentences 20]``. CPU time is
this process's plus its children's (espeak-ng runs as a child), torch and onnxruntime on 1
thread; the first utterance (model loading) is timed apart and left out of the RTF.
"""

from __future__ import annotations

import argparse
import os
import time

from asr.corpus.synth.base import Style
from asr.corpus.synth.registry import ENGINES, load_engines


def _cpu() -> float:
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def measure(engine, sentences: list[str], voice: str) -> tuple[float, float, float]:
    """-> (load seconds, audio seconds, RTF) for ``sentences`` after one warm-up utterance."""
    start = _cpu()
    engine.synthesize("Warm up the engine.", voice, Style())
    load = _cpu() - start
    audio, start = 0.0, _cpu()
    for i, text in enumerate(sentences):
        audio += engine.synthesize(text, voice, Style(rate=1.0, seed=i)).numel() / 16000
    return load, audio, (_cpu() - start) / audio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES))
    parser.add_argument("--sentences", type=int, default=20)
    args = parser.parse_args(argv)
    import torch

    from asr.corpus.sentences import stdlib_sentences

    torch.set_num_threads(1)
    sentences = stdlib_sentences()[:: 97][: args.sentences]
    print("engine   voice        load_s  audio_s  RTF(cpu_s/audio_s)")
    for name, engine in load_engines(args.engines).items():
        voice = engine.voices()[0]
        load, audio, rtf = measure(engine, sentences, voice)
        print(f"{name:<8} {voice:<12} {load:6.2f} {audio:8.1f}  {rtf:.4f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

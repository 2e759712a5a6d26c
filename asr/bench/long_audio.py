"""Long test files for the memory benchmark (``bench/long_audio_memory.sh``): espeak-ng
sentences joined by 0.5-1.2 s pauses, written piece by piece, so the builder never holds
more than one sentence either.

    python -m asr.bench.long_audio WORK_DIR        # writes WORK_DIR/1min.flac and 60min.flac
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf

RATE = 16000
LENGTHS = (("1min", 1), ("60min", 60))  # file name, minutes


def spoken_clips(count: int, rng: random.Random) -> list[np.ndarray]:
    """``count`` docstring sentences read by espeak-ng -> (N_i,) float32 clips at 16 kHz."""
    from asr.audio.read import to_mono_16k
    from asr.corpus.sentences import stdlib_sentences

    clips = []
    for text in rng.sample(stdlib_sentences(), count):
        with tempfile.NamedTemporaryFile(suffix=".wav") as tmp:
            subprocess.run(["espeak-ng", "-v", "en-us", "-s", "160", "-w", tmp.name, text], check=True)
            samples, rate = sf.read(tmp.name, dtype="float32")
        clips.append(to_mono_16k(samples, rate, RATE).numpy())
    return clips


def write_long(path: Path, minutes: float, clips: list[np.ndarray], rng: random.Random) -> float:
    """Random clips with pauses until ``minutes`` of audio -> seconds written (renamed into place)."""
    target, written = round(minutes * 60 * RATE), 0
    tmp = path.with_name(path.name + ".tmp")
    with sf.SoundFile(str(tmp), "w", RATE, 1, "PCM_16", format="FLAC") as out:
        while written < target:
            pause = np.zeros(int(RATE * rng.uniform(0.5, 1.2)), np.float32)
            piece = np.concatenate([clips[rng.randrange(len(clips))], pause])[: target - written]
            out.write(piece)
            written += len(piece)
    tmp.rename(path)
    return written / RATE


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("work", type=Path, help="folder for 1min.flac and 60min.flac")
    args = parser.parse_args(argv)
    args.work.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    clips = spoken_clips(24, rng)
    for name, minutes in LENGTHS:
        seconds = write_long(args.work / f"{name}.flac", minutes, clips, rng)
        print(f"{name}: {seconds / 60:.1f} min")
    return 0


if __name__ == "__main__":
    sys.exit(main())

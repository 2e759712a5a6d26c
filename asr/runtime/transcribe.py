"""Transcribe audio files with an exported ONNX model, without torch.

    python -m asr.runtime exp/demo/onnx a.wav b.flac recordings/
    asr-onnx-transcribe exp/demo/onnx a.wav --threads 2

Prints ``id<TAB>text`` per file (id: the file name without extension); a folder is searched
recursively for audio files. A file that cannot be read gets one ``error:`` line naming it,
the others are still transcribed, and the exit status is 1. Greedy CTC decoding over the
model's full-context graph; the toolkit's ``asr-transcribe`` has beam search, LMs,
streaming and timestamps (and needs torch).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".opus", ".mp3", ".aiff", ".aif", ".au", ".sph"}


def parse_args(argv) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="an exported model directory (python -m asr.cli.export)")
    parser.add_argument("audio", type=Path, nargs="+", help="audio files or folders")
    parser.add_argument("--threads", type=int, default=1, help="onnxruntime CPU threads (default: %(default)s)")
    parser.add_argument("--timing", action="store_true", help="print load time and real-time factor on stderr")
    return parser.parse_args(argv)


def expand(paths: list[Path]) -> list[Path]:
    """Files as given; folders -> their audio files, sorted."""
    files = []
    for path in paths:
        if path.is_dir():
            files += sorted(p for p in path.rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
        else:
            files.append(path)
    return files


def main(argv=None) -> int:
    args = parse_args(argv)
    from asr.runtime.audio import AudioError, read_audio
    from asr.runtime.model import ModelError, OnnxModel

    start = time.perf_counter()
    try:
        model = OnnxModel(args.model, args.threads)
    except ModelError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    loaded = time.perf_counter()
    status, audio_s = 0, 0.0
    for path in expand(args.audio):
        try:
            result = model.transcribe(read_audio(path, model.sample_rate))
        except AudioError as err:
            print(f"error: {err}", file=sys.stderr)
            status = 1
            continue
        audio_s += result.duration
        print(f"{path.stem}\t{result.text}", flush=True)
    if args.timing:
        compute = time.perf_counter() - loaded
        rtf = compute / audio_s if audio_s else 0.0
        timing = f"load {loaded - start:.2f} s; {audio_s:.1f} s of audio in {compute:.2f} s (RTF {rtf:.3f})"
        print(timing, file=sys.stderr)
    return status


if __name__ == "__main__":
    sys.exit(main())

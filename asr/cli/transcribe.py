"""Transcribe audio files with a trained model and, given references, score WER.

    python transcribe.py --model exp/demo/model.pt [--ref test.ref] [--report wer.json] AUDIO...

Prints ``id<TAB>text`` per file (id = file name without extension). AUDIO may be files
of any format soundfile reads (resampled to 16 kHz, downmixed to mono), folders (searched
recursively for audio files) or ``@LIST`` files naming one path per line. A file that
cannot be read gets one ``error:`` line on stderr naming it; the others are still
transcribed, and the exit status is 1. With ``--ref`` (Kaldi ``text`` format), WER is
computed after the normalization of ``asr.text`` (upper-case, letters and inner
apostrophes only) on both sides; a file that failed counts as an empty hypothesis.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

AUDIO_SUFFIXES = {".flac", ".wav", ".ogg", ".mp3", ".aiff", ".aif", ".au", ".opus", ".sph"}
GROUP = 64  # files decoded per model batch group (bounds memory)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model.pt or Lightning .ckpt")
    parser.add_argument("--ref", type=Path, help="reference transcripts, Kaldi text format")
    parser.add_argument("--report", type=Path, help="write WER figures as JSON here (needs --ref)")
    parser.add_argument("--device", default="cpu", help="torch device (default: cpu)")
    parser.add_argument("audio", nargs="+", help="audio files, folders or @LIST files")
    return parser.parse_args(argv)


def expand_inputs(items: list[str]) -> tuple[list[Path], list[str]]:
    """-> (audio paths in order, error lines for inputs that name nothing usable)."""
    paths, errors = [], []
    for item in items:
        if item.startswith("@"):
            try:
                lines = Path(item[1:]).read_text().splitlines()
            except OSError as err:
                errors.append(f"{item[1:]}: cannot read list ({err.strerror})")
                continue
            paths.extend(Path(line.strip()) for line in lines if line.strip())
        elif Path(item).is_dir():
            found = sorted(p for p in Path(item).rglob("*") if p.suffix.lower() in AUDIO_SUFFIXES and p.is_file())
            if not found:
                errors.append(f"{item}: folder holds no audio files")
            paths.extend(found)
        else:
            paths.append(Path(item))
    return paths, errors


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.report and not args.ref:
        print("error: --report needs --ref", file=sys.stderr)
        return 2
    from asr.audio import AudioError, read_audio
    from asr.checkpoint import CheckpointError
    from asr.inference import load_model
    from asr.wer import read_kaldi_text, score

    refs = None
    if args.ref:
        try:
            refs = read_kaldi_text(args.ref)
        except (OSError, ValueError, UnicodeDecodeError) as err:
            print(f"error: {args.ref}: cannot read references ({err})", file=sys.stderr)
            return 2
    try:
        recognizer = load_model(args.model, args.device)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2

    paths, errors = expand_inputs(args.audio)
    for line in errors:
        print(f"error: {line}", file=sys.stderr)
    failed = len(errors)
    hyps: dict[str, str] = {}
    rate = recognizer.recipe.features.sample_rate
    for start in range(0, len(paths), GROUP):
        good, waves = [], []
        for path in paths[start : start + GROUP]:
            try:
                waves.append(read_audio(path, rate))
                good.append(path)
            except AudioError as err:
                print(f"error: {err}", file=sys.stderr)
                hyps[path.stem] = ""  # counts as all deletions if it has a reference
                failed += 1
        for path, text in zip(good, recognizer.transcribe_waves(waves)):
            hyps[path.stem] = text
            print(f"{path.stem}\t{text}", flush=True)

    if refs is not None:
        unknown = [i for i in hyps if i not in refs]
        if unknown:
            print(f"warning: {len(unknown)} files have no reference (e.g. {unknown[0]}); not scored", file=sys.stderr)
        try:
            result = score(refs, hyps)
        except ValueError as err:
            print(f"error: cannot score: {err}", file=sys.stderr)
            return 1
        print(result.summary())
        if args.report:
            from asr.io import atomic_write_text

            atomic_write_text(args.report, json.dumps(result.as_dict(), indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

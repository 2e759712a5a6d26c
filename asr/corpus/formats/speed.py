"""How fast a large corpus imports: N short audio files in one layout, made in a scratch
folder, then imported as ``python -m asr.cli.import_data`` does (rows read, text normalized,
each file's header read, dev/test drawn, manifests written), timed.

    python -m asr.corpus.formats.speed --rows 100000 [--format kaldi] [--workers 8]

Each file is a distinct 0.1 s WAV (its own inode, so every header is a real open and read;
the page cache holds them, as it would after a copy or a first scan). The scratch folder is
removed afterwards unless ``--keep``.
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf

from asr.corpus.formats.output import write_import
from asr.corpus.formats.readers import ImportOptions, import_source
from asr.corpus.formats.split import split_entries

LAYOUTS = ("kaldi", "nemo", "csv", "ljspeech", "folder")
SECONDS = 0.1  # each file's length: the header is what is read, not the samples


def make_corpus(folder: Path, rows: int, fmt: str) -> Path:
    """``rows`` WAV files under ``folder`` listed in layout ``fmt`` -> the source to import."""
    buffer = io.BytesIO()
    sf.write(buffer, np.zeros(int(16000 * SECONDS), dtype="int16"), 16000, format="WAV")
    wav = buffer.getvalue()
    audio = folder / ("wavs" if fmt == "ljspeech" else "audio")
    ids = [f"spk{i % 500:03d}-utt{i:07d}" for i in range(rows)]
    for start in range(0, rows, 1000):  # 1,000 files per sub-folder, as real corpora spread them
        (audio / f"{start // 1000:04d}").mkdir(parents=True)
    paths = [audio / f"{i // 1000:04d}" / f"{utt}.wav" for i, utt in enumerate(ids)]
    for path in paths:
        path.write_bytes(wav)
    texts = [f"the quick brown fox number {i} jumps" for i in range(rows)]
    if fmt == "kaldi":
        (folder / "wav.scp").write_text("".join(f"{u} {p}\n" for u, p in zip(ids, paths)))
        (folder / "text").write_text("".join(f"{u} {t}\n" for u, t in zip(ids, texts)))
        (folder / "utt2spk").write_text("".join(f"{u} {u[:6]}\n" for u in ids))
        return folder
    if fmt == "nemo":
        lines = (json.dumps({"audio_filepath": str(p), "text": t, "duration": SECONDS}) for p, t in zip(paths, texts))
        (folder / "manifest.json").write_text("".join(line + "\n" for line in lines))
        return folder / "manifest.json"
    if fmt == "csv":
        (folder / "corpus.csv").write_text("path,text,speaker\n" + "".join(
            f"{p},{t},{u[:6]}\n" for u, p, t in zip(ids, paths, texts)))
        return folder / "corpus.csv"
    if fmt == "ljspeech":  # LJSpeech keeps every file in wavs/ itself
        for path in paths:
            path.rename(audio / path.name)
        (folder / "metadata.csv").write_text("".join(f"{u}|{t}|{t}\n" for u, t in zip(ids, texts)))
        return folder
    for path, text in zip(paths, texts):  # folder: a transcript beside each file
        path.with_suffix(".txt").write_text(text)
    return audio


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=100_000, help="utterances (100000)")
    parser.add_argument("--format", choices=LAYOUTS, default="kaldi", help="layout to make and import (kaldi)")
    parser.add_argument("--workers", type=int, default=8, help="threads reading headers (8, import_data's default)")
    parser.add_argument("--dir", type=Path, default=None, help="scratch folder (default: a new one in $TMPDIR)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    scratch = Path(tempfile.mkdtemp(prefix="import-speed-", dir=args.dir))
    try:
        made = time.perf_counter()
        src = make_corpus(scratch / "src", args.rows, args.format)
        print(f"made {args.rows:,} files in {args.format} layout in {time.perf_counter() - made:.1f} s ({scratch})")
        started = time.perf_counter()
        imported = import_source(args.format, src, ImportOptions(workers=args.workers), scratch / "out")
        read = time.perf_counter() - started
        splits = split_entries(imported.entries, imported.speakers, 0.05, 0.05)
        write_import(scratch / "out", splits, imported.speakers, imported.problems)
        total = time.perf_counter() - started
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)
    print(f"imported {len(imported.entries):,} of {args.rows:,} rows ({len(imported.problems)} left out) in "
          f"{total:.1f} s: {len(imported.entries) / total:,.0f} rows/s (reading and headers {read:.1f} s, "
          f"split and manifests {total - read:.1f} s; {args.workers} threads)")
    return 0 if len(imported.entries) == args.rows else 1


if __name__ == "__main__":
    sys.exit(main())

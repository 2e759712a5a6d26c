"""The layouts by name, their options, and the one call that imports a source.

``import_source("kaldi", Path("data/train"), ImportOptions(), out)`` -> :class:`Imported`:
the layout's reader lists the rows, :func:`asr.corpus.formats.build.build` checks them.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from asr.corpus.formats.build import build
from asr.corpus.formats.folder import read_folder
from asr.corpus.formats.hf_datasets import read_hf
from asr.corpus.formats.kaldi import read_kaldi
from asr.corpus.formats.lhotse_cuts import read_lhotse
from asr.corpus.formats.nemo import read_nemo
from asr.corpus.formats.rows import Imported, Problem, Row
from asr.corpus.formats.tables import read_commonvoice, read_ljspeech, read_table


@dataclass(frozen=True)
class ImportOptions:
    """Options of the readers; each says which layouts read it."""

    allow_pipes: bool = False  # kaldi, lhotse: run the shell commands wav.scp (or a recording) names
    table: str = "validated"  # commonvoice: which <table>.tsv (validated, train, dev, test, other, ...)
    split: str = ""  # hf: the split of a DatasetDict folder
    path_column: str = ""  # csv (hf: audio_column): "" = a usual name (path, audio, file, ...)
    text_column: str = ""  # csv, hf: "" = a usual name (text, transcript, sentence, ...)
    speaker_column: str = ""  # csv, hf: "" = a usual name when present (speaker, speaker_id, client_id, ...)
    speaker_from_folder: bool = False  # folder: the first sub-folder names the speaker
    workers: int = 8  # threads reading audio headers (they wait on the disk more than on the CPU)
    progress: bool = False  # a progress bar on stderr


# name -> (reader(src, options), what SRC is); Lhotse and datasets are imported only when read
FORMATS = {
    "kaldi": (lambda src, o: read_kaldi(src),
              "a Kaldi/ESPnet data directory (wav.scp, text, segments?, utt2spk?)"),
    "nemo": (lambda src, o: read_nemo(src),
             "a NeMo JSON-lines manifest (audio_filepath, text, duration, offset?)"),
    "commonvoice": (lambda src, o: read_commonvoice(src, o.table),
                    "a Common Voice language folder (<table>.tsv + clips/)"),
    "ljspeech": (lambda src, o: read_ljspeech(src),
                 "an LJSpeech-style folder (metadata.csv of id|text|normalized text, wavs/)"),
    "folder": (lambda src, o: read_folder(src, o.speaker_from_folder),
               "a folder of audio files, each with a same-named .txt or .lab"),
    "csv": (lambda src, o: read_table(src, o.path_column, o.text_column, o.speaker_column),
            "a CSV/TSV file whose header names the path and text columns"),
    "lhotse": (lambda src, o: read_lhotse(src),
               "a Lhotse cuts manifest, or recordings + supervisions (optional: Lhotse)"),
    "hf": (lambda src, o: read_hf(src, o.split, o.path_column, o.text_column, o.speaker_column),
           "a Hugging Face datasets folder from save_to_disk (optional: datasets)"),
}


def read_rows(fmt: str, src: str | Path, options: ImportOptions = ImportOptions()) -> tuple[list[Row], list[Problem]]:
    """The rows ``src`` lists in layout ``fmt`` and the problems found reading its listing."""
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r}: one of {', '.join(FORMATS)}")
    return FORMATS[fmt][0](Path(src), options)


def import_source(fmt: str, src: str | Path, options: ImportOptions = ImportOptions(),
                  out: str | Path | None = None) -> Imported:
    """``src`` in layout ``fmt`` -> entries, speakers and problems; audio that must be
    written (segments, commands, stored bytes) goes under ``out``."""
    rows, problems = read_rows(fmt, src, options)
    return build(rows, problems, out, options.allow_pipes, options.workers, options.progress)

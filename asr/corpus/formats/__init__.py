"""Readers of the corpus layouts people have, each to the project's manifest.

Kaldi/ESPnet data directories, NeMo manifests, Common Voice, LJSpeech, a folder of audio with
same-named transcripts, CSV/TSV tables, and (each through its own library, an optional extra)
Lhotse manifests and Hugging Face ``datasets`` folders. A reader lists rows
(:mod:`~asr.corpus.formats.rows`); :mod:`~asr.corpus.formats.build` normalizes their text and
reads their durations from the audio headers, leaving each bad row out, named and counted;
:mod:`~asr.corpus.formats.split` holds dev and test out without leaking a voice or a sentence;
:mod:`~asr.corpus.formats.output` writes the result for ``corpus.kind: manifest``.
``python -m asr.cli.import_data`` is the command.

May import what :mod:`asr.corpus` may: :mod:`asr.config`, :mod:`asr.text`, :mod:`asr.audio`,
:mod:`asr.data`.
"""

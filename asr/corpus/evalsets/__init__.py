"""Test sets that tell the truth: real human speech from registry packages
(:mod:`asr.corpus.evalsets.real`) and one whole synthesizer never used in training
(:mod:`asr.corpus.evalsets.unseen`), both in LibriSpeech's layout, plus the transcripts the
training text must exclude (:func:`evalset_transcripts`).

May import: the standard library, numpy, soundfile, :mod:`asr.audio`, :mod:`asr.text`.
Runs pip, apt-get, dpkg-deb and flite as subprocesses; installs nothing.
"""

from asr.corpus.evalsets.layout import evalset_transcripts
from asr.corpus.evalsets.real import build_real
from asr.corpus.evalsets.unseen import build_unseen

__all__ = ["build_real", "build_unseen", "evalset_transcripts"]

"""Audio in and out: whole-file reading to 16 kHz mono (:mod:`asr.audio.read`), cheap
resampling of odd rates (:mod:`asr.audio.resample`), block sources for streaming files and
standard input (:mod:`asr.audio.sources`) and crash-safe file writes (:mod:`asr.audio.atomic`).

May import: soundfile, numpy, torch, torchaudio.functional. Nothing else of ``asr``.
"""

from asr.audio.read import AudioError, check_file, read_audio, to_mono_16k, write_flac

__all__ = ["AudioError", "check_file", "read_audio", "to_mono_16k", "write_flac"]

"""Corpora: where training and test audio comes from. The synthesized corpus (text sources,
speech engines, personas), the held-out test sets (other synthesizers, a real voice),
LibriSpeech's download, and the Debian packages some of them read. Each writes audio and a
manifest that :mod:`asr.data` then reads.

May import: :mod:`asr.config`, :mod:`asr.text`, :mod:`asr.audio` and :mod:`asr.data` (the
manifest). Never :mod:`asr.model`, :mod:`asr.training` or :mod:`asr.inference`.
"""

"""Speech synthesizers behind one small interface, and the synthesized training corpus.

Owns: the engines (espeak-ng, MBROLA through espeak-ng, SVOX Pico, Piper, hibari), new
speakers made from them by formant and pitch warping (:mod:`.voices`) and as personas, men
among them, of the women's voices (:mod:`.personas`), and the corpus plan
and generator that write LibriSpeech's on-disk layout (:mod:`.plan`, :mod:`.corpus`).
May import: ``asr.audio``, ``asr.text``, ``asr.config``, ``asr.corpus.sentences``; torch,
soundfile and the optional engine packages (each imported only when its engine is used).
Nothing here knows about models or training.
"""

from asr.corpus.synth.base import Engine, Style, SynthesisError
from asr.corpus.synth.registry import ENGINES, load_engines

__all__ = ["ENGINES", "Engine", "Style", "SynthesisError", "load_engines"]

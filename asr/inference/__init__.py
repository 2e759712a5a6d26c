"""Inference: loading a self-describing checkpoint (:mod:`asr.inference.checkpoint`), what
inference asks of a model (:mod:`asr.inference.acoustic`) and its two backends
(:mod:`asr.inference.torch_backend`, :mod:`asr.inference.onnx_backend`), the recognizer
(:mod:`asr.inference.recognizer`) and what it returns (:mod:`asr.inference.results`), the
streaming front end and chunked encoder loop (:mod:`asr.inference.stream`), what a
transcription records for pictures (:mod:`asr.inference.trace`) and the output writers
(:mod:`asr.inference.outputs`).

May import: :mod:`asr.config`, :mod:`asr.text`, :mod:`asr.audio`, :mod:`asr.model`,
:mod:`asr.decoding`, :mod:`asr.data.batch` (padding). Never Lightning or :mod:`asr.training`;
:mod:`asr.plot` only lazily, for ``Transcript.show`` / ``.save`` (matplotlib is optional).
"""

from asr.inference.options import DecodingOptions, TranscribeOptions
from asr.inference.recognizer import FileResult, Recognizer, Transcript, load_model

__all__ = ["DecodingOptions", "FileResult", "Recognizer", "TranscribeOptions", "Transcript", "load_model"]

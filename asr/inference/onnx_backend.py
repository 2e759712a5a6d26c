"""An exported ONNX model directory run through onnxruntime, behind the torch path's interface.

    recognizer = load_model("exp/demo/onnx")          # a directory: this backend
    recognizer.transcribe("a.wav")

:class:`OnnxCTCModel` offers what :class:`~asr.inference.Recognizer`, the streaming front end
and the segmenter (:mod:`asr.inference.stream`) call on a :class:`~asr.model.CTCModel`
(``features``, ``cmvn``, ``subsampling``, ``encoder.forward_chunk``, ``head``, ...), each
backed by one graph of the directory, so front end, decoding, timestamps, segmentation and
outputs are the torch path's own code. The directory (written by ``python -m asr.cli.export``):

- ``model.json``: the recipe, feature parameters, the graphs' inputs and outputs, the chunking;
- ``model.onnx``: full context, (B, T, F) log-mel -> (B, T', V) log-probs (padded batches);
- ``subsampling.onnx`` + ``chunk.onnx``: streaming, log-mel blocks -> encoder input frames,
  then chunks of frames with explicit caches -> log-probs;
- ``model.int8.onnx``, ``chunk.int8.onnx`` (``--precision int8`` at export): the same with the
  encoder's and head's weight matrices quantized by onnxruntime (dynamic int8); without
  them ``precision="int8"`` quantizes at load. The subsampling stays float32, as in torch.
- ``tokenizer.model``: sentencepiece.

Log-mel features are computed by torch (:class:`asr.model.features.LogMel`), so torch stays a
dependency of this backend (see ``pyproject.toml``'s ``onnx`` extra).
"""

from __future__ import annotations

import json
import logging
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
from torch import nn

from asr.config import recipe_from_dict
from asr.inference.checkpoint import CheckpointError
from asr.inference.recognizer import Recognizer
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


def int8_name(name: str) -> str:
    return INT8.get(name, name)


def quantize_int8(src: Path, dst: Path) -> Path:
    """onnxruntime's dynamic int8 quantization of the weight matrix products of ``src``
    (``nn.Linear`` layers: MatMul with a constant weight) outside the subsampling -> ``dst``.

    As in torch's int8 path (:func:`asr.inference.recognizer.quantize_int8`), activations
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


class OnnxSubsampling:
    """The model's subsampling for the streaming front end: (B, T, F) log-mel (CMVN inside
    the graph), (B,) -> (B, T', D) frames, (B,) lengths; constants from its torch class."""

    def __init__(self, graph: OnnxGraph, kind: str):
        self.graph = graph
        cls = subsampling_class(kind)
        self.subsampling_rate, self.min_frames = cls.subsampling_rate, cls.min_frames
        self.output_lengths = cls.output_lengths

    def __call__(self, feats: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        (frames,) = self.graph.run(features=feats.float().numpy())
        return torch.from_numpy(frames), self.output_lengths(lengths)


class OnnxEncoder:
    """The encoder and head of :mod:`asr.inference.stream`'s calls, as the chunk graph: its
    outputs are already log-probs (the head is then the identity)."""

    layers = ()  # no torch attention blocks: asr.inference.trace records no attention

    def __init__(self, graph: OnnxGraph, n_layers: int, n_heads: int, d_model: int, conv_left: int):
        self.graph = graph
        self.n_layers, self.n_heads, self.d_model, self.conv_left = n_layers, n_heads, d_model, conv_left
        self.has_conv = "conv" in graph.inputs

    def empty_cache(self, batch: int) -> OnnxCache:
        """The first chunk's: no frames in view, a zero convolution state."""
        keys = np.zeros((self.n_layers, batch, self.n_heads, 0, self.d_model // self.n_heads), np.float32)
        conv = np.zeros((self.n_layers, batch, self.conv_left, self.d_model), np.float32)
        return OnnxCache(keys, keys, conv if self.has_conv else None)

    def forward_chunk(
        self, x: torch.Tensor, offset: int, cache: OnnxCache | None, keep: int = -1
    ) -> tuple[torch.Tensor, OnnxCache]:
        """:meth:`TransformerEncoder.forward_chunk` + head: (B, C, D) -> (B, C, V) log-probs."""
        cache = cache if cache is not None else self.empty_cache(x.shape[0])
        offsets = np.full(x.shape[0], offset, np.int64)
        log_probs, keys, values, *conv = self.graph.run(
            frames=x.float().numpy(), offset=offsets, keys=cache.keys, values=cache.values, conv=cache.conv
        )
        if keep >= 0:
            start = max(keys.shape[3] - keep, 0)
            keys, values = keys[:, :, :, start:], values[:, :, :, start:]  # (N, B, H, <=keep, Dh)
        return torch.from_numpy(log_probs), OnnxCache(keys, values, conv[0] if conv else None)

    def __call__(self, x: torch.Tensor, lengths: torch.Tensor, chunk_frames: int = 0, left_chunks: int = -1):
        """Full context over one unpadded segment (the streaming path's): (1, T', D) -> (1, T', V),
        as one chunk with nothing cached."""
        if chunk_frames or x.shape[0] != 1 or int(lengths[0]) != x.shape[1]:
            raise ValueError("the ONNX encoder runs one unpadded segment at a time here")
        return self.forward_chunk(x, 0, None)[0]


class Passthrough(nn.Module):
    """The CTC head's place: the graphs end in log-probs already. ``in_features`` is D."""

    def __init__(self, in_features: int):
        super().__init__()
        self.in_features = in_features

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class OnnxCTCModel(nn.Module):
    """What the inference code calls on a :class:`CTCModel`, backed by onnxruntime sessions;
    :meth:`full_context` is the padded-batch path (``model.onnx``)."""

    def __init__(self, recipe, encoder: dict, full: OnnxGraph, subsampling: OnnxGraph, chunk: OnnxGraph):
        super().__init__()
        self.features = LogMel(recipe.features)
        self.cmvn = nn.Identity()  # the statistics are inside the graphs
        self.subsampling = OnnxSubsampling(subsampling, recipe.model.subsampling)
        self.encoder = OnnxEncoder(chunk, **encoder)  # model.json's "encoder": n_layers, n_heads, d_model, conv_left
        self.head = Passthrough(encoder["d_model"])
        self.full = full
        rate, cfg = self.subsampling.subsampling_rate, recipe.features
        self.frame_shift = rate * cfg.hop_length / cfg.sample_rate  # seconds per output frame
        # the streaming front end finds the device from the parameters: an empty one says "cpu"
        self.anchor = nn.Parameter(torch.zeros(0), requires_grad=False)

    def min_samples(self) -> int:
        """Fewest samples that give one output frame (as :meth:`CTCModel.min_samples`)."""
        cfg = self.features.config
        return cfg.n_fft + (self.subsampling.min_frames - 1) * cfg.hop_length

    def full_context(self, feats: torch.Tensor, feat_lens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, T, F) log-mel, (B,) -> (B, T', V) log-probs, (B,) frame counts (``model.onnx``)."""
        log_probs, lengths = self.full.run(features=feats.float().numpy(), feature_lengths=feat_lens.numpy())
        return torch.from_numpy(log_probs), torch.from_numpy(lengths)

    def chunked(self, feats: torch.Tensor, chunk_frames: int, left_chunks: int) -> torch.Tensor:
        """(T, F) log-mel of one utterance -> (T', V) log-probs under chunked attention, chunk
        by chunk through the streaming graphs (equal to the chunk attention mask on a batch)."""
        frames, _ = self.subsampling(feats[None], torch.tensor([feats.shape[0]]))  # (1, T', D)
        keep = left_chunks * chunk_frames if left_chunks >= 0 else -1
        cache, out = None, []
        for start in range(0, frames.shape[1], chunk_frames):
            log_probs, cache = self.encoder.forward_chunk(frames[:, start : start + chunk_frames], start, cache, keep)
            out.append(log_probs[0])
        return torch.cat(out)


class OnnxRecognizer(Recognizer):
    """:class:`Recognizer` on an :class:`OnnxCTCModel`: everything but the padded-batch
    model call is the torch path's code."""

    def __init__(self, recipe, tokenizer: Tokenizer, model: OnnxCTCModel, precision: str = "32"):
        super().__init__(recipe, tokenizer, model, "cpu", "32")  # log-mel on the CPU; no torch quantization
        self.precision = precision

    def _log_probs(self, waves, lengths, chunk: int, left_chunks: int):
        """As :meth:`Recognizer._log_probs`: (B, N), (B,) -> (B, T', V), (B,), (B, T) dB."""
        model = self.model
        feats, feat_lens = model.features(waves, lengths)  # (B, T, F)
        energy = torch.logsumexp(feats, dim=-1) * (10 / np.log(10))  # (B, T) total mel power, dB
        if not chunk:
            return (*model.full_context(feats, feat_lens), energy)
        # chunked attention: each utterance as a stream (the full-context graph has no chunk mask)
        out_lens = model.subsampling.output_lengths(feat_lens)
        log_probs = torch.zeros(len(waves), int(out_lens.max()), self.tokenizer.vocab_size)
        for b, n in enumerate(feat_lens.tolist()):
            log_probs[b, : out_lens[b]] = model.chunked(feats[b, :n], chunk, left_chunks)
        return log_probs, out_lens, energy


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


def load_onnx(folder: str | Path, device: str = "cpu", precision: str = "32") -> OnnxRecognizer:
    """An exported directory -> :class:`OnnxRecognizer`; :class:`CheckpointError` naming the
    file that is missing or corrupt. ``precision`` "int8" uses the directory's int8 graphs,
    or quantizes at load where the export wrote none."""
    if precision not in PRECISIONS:
        raise ValueError(f"ONNX models run at precision {' or '.join(PRECISIONS)}, not {precision!r}")
    folder = Path(folder)
    meta = read_meta(folder)
    try:
        recipe = recipe_from_dict(meta["recipe"], check_trainer=False)
        encoder = {k: int(meta["encoder"][k]) for k in ("n_layers", "n_heads", "d_model", "conv_left")}
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
    model = OnnxCTCModel(recipe, encoder, graphs[FULL], graphs[SUBSAMPLING], graphs[CHUNK])
    return OnnxRecognizer(recipe, tokenizer, model, precision)

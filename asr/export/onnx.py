"""A self-describing checkpoint -> an ONNX model directory (the layout
:mod:`asr.inference.onnx_backend` reads and documents).

Graphs go through the current exporter, ``torch.onnx.export(..., dynamo=True)`` (torch.export,
then onnxscript), with dynamic batch, time, chunk and cache lengths, at :data:`OPSET`. Each
graph is checked against torch on the example inputs it was traced with before it is kept.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.export import Dim

from asr.config import RecipeConfig, recipe_to_dict
from asr.export.graphs import FullContext, StreamingChunk, Subsampling
from asr.inference import onnx_backend as layout
from asr.model import CTCModel
from asr.text.tokenizer import Tokenizer

OPSET = 20  # the dynamo exporter's default in torch 2.14 (opset 20: LayerNormalization, Gelu, ...)
TOLERANCE = 1e-3  # largest log-prob difference from torch accepted at export


def _export(module: torch.nn.Module, args: tuple, names: tuple[list[str], list[str]], shapes: tuple, out: Path):
    """Trace ``module`` on ``args`` -> ``out`` (one file, weights inside), checked against torch."""
    inputs, outputs = names
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # exporter notices (torchvision absent, axis renames)
        torch.onnx.export(
            module, args, str(out), dynamo=True, opset_version=OPSET, input_names=inputs, output_names=outputs,
            dynamic_shapes=shapes, external_data=False, verbose=False,
        )  # fmt: skip
    import onnxruntime as ort

    session = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])
    got = session.run(None, {n: a.numpy() for n, a in zip(inputs, args) if n in {i.name for i in session.get_inputs()}})
    with torch.no_grad():
        want = module(*args)
    want = want if isinstance(want, tuple) else (want,)
    for name, a, b in zip(outputs, got, want):
        if a.shape != tuple(b.shape) or np.abs(a - b.numpy()).max(initial=0) > TOLERANCE:
            raise RuntimeError(f"{out}: output {name} differs from torch's after export")


def example_features(model: CTCModel, batch: int = 2, frames: int = 67) -> torch.Tensor:
    """(B, T, F) log-mel of noise: realistic magnitudes for the export checks."""
    cfg = model.features.config
    samples = cfg.n_fft + (frames - 1) * cfg.hop_length
    waves = 0.1 * torch.randn(batch, samples, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return model.features(waves, torch.full((batch,), waves.shape[1]))[0]


def export_graphs(model: CTCModel, folder: Path) -> dict:
    """Write the three graphs of ``model`` (eval mode) into ``folder`` -> their descriptions."""
    model = model.eval()
    cfg = model.encoder.config
    batch, time = Dim("batch"), Dim("frames", min=model.subsampling.min_frames)
    feats = example_features(model)
    _export(
        FullContext(model), (feats, torch.tensor([feats.shape[1], feats.shape[1] - 17])),
        (["features", "feature_lengths"], ["log_probs", "lengths"]), ({0: batch, 1: time}, {0: batch}),
        folder / layout.FULL,
    )  # fmt: skip
    _export(
        Subsampling(model), (feats,), (["features"], ["frames"]), ({0: batch, 1: time},), folder / layout.SUBSAMPLING
    )
    name_dims(folder / layout.SUBSAMPLING, {("features", 0): "batch"})  # the exporter renumbers a Dim it reuses
    B, C, L, H = 2, 5, 3, cfg.n_heads
    g = torch.Generator().manual_seed(1)
    frames = torch.randn(B, C, cfg.d_model, generator=g)
    keys, values = (torch.randn(cfg.n_layers, B, H, L, cfg.d_model // H, generator=g) for _ in range(2))
    chunk_args = (frames, torch.tensor([L, L]), keys, values)
    names = (["frames", "offset", "keys", "values"], ["log_probs", "keys_out", "values_out"])
    auto = Dim.AUTO  # named Dims fail to trace here ("Invalid ranges": cached + chunk frames); AUTO works
    shapes = ({0: auto, 1: auto}, {0: auto}, {1: auto, 3: auto}, {1: auto, 3: auto})
    conv = model.encoder.conv_module
    if conv is not None:
        chunk_args += (torch.randn(cfg.n_layers, B, conv.left, cfg.d_model, generator=g),)
        names = (names[0] + ["conv"], names[1] + ["conv_out"])
        shapes += ({1: auto},)
    _export(StreamingChunk(model), chunk_args, names, shapes, folder / layout.CHUNK)
    name_dims(folder / layout.CHUNK, {("frames", 0): "batch", ("frames", 1): "chunk", ("keys", 3): "cached",
                                      ("values", 3): "cached"})  # fmt: skip
    return {name: describe(folder / name) for name in (layout.FULL, layout.SUBSAMPLING, layout.CHUNK)}


def name_dims(path: Path, names: dict[tuple[str, int], str]) -> None:
    """Rename the symbolic dimensions that Dim.AUTO numbered (``s22``) after the inputs' axes
    in ``names`` ((input, axis) -> name), everywhere in the graph (``s45 + s69`` too)."""
    import onnx

    proto = onnx.load(str(path))
    graph = proto.graph
    dims = {i.name: i.type.tensor_type.shape.dim for i in graph.input}
    mapping = {dims[i][axis].dim_param: name for (i, axis), name in names.items() if dims[i][axis].dim_param}
    symbol = re.compile(r"\bs\d+\b")
    for value in (*graph.input, *graph.output, *graph.value_info):
        for dim in value.type.tensor_type.shape.dim:
            if dim.dim_param:
                dim.dim_param = symbol.sub(lambda m: mapping.get(m.group(0), m.group(0)), dim.dim_param)
    onnx.save(proto, str(path))


def describe(path: Path) -> dict:
    """A graph's inputs and outputs: name -> [type, shape] (symbolic dimensions as names)."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return {
        "inputs": {i.name: [i.type, i.shape] for i in session.get_inputs()},
        "outputs": {o.name: [o.type, o.shape] for o in session.get_outputs()},
    }


def metadata(recipe: RecipeConfig, tokenizer: Tokenizer, model: CTCModel, graphs: dict, int8: bool) -> dict:
    """The directory's ``model.json``: what a program needs to run the graphs without this code."""
    f, m, sub = recipe.features, recipe.model, model.subsampling
    conv = model.encoder.conv_module
    return {
        "format": layout.FORMAT,
        "format_version": layout.FORMAT_VERSION,
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
        "opset": OPSET,
        "sample_rate": f.sample_rate,
        "features": {
            "what": "ln(mel power + 1e-6), torchaudio MelSpectrogram: periodic Hann window, no centre padding, "
            "HTK mel scale, no filter normalization; frame t reads samples [t * hop, t * hop + n_fft)",
            "n_fft": f.n_fft, "hop_length": f.hop_length, "n_mels": f.n_mels,
        },  # fmt: skip
        "frame_shift": model.frame_shift,
        "subsampling": {"rate": sub.subsampling_rate, "right_context": sub.right_context, "min_frames": sub.min_frames},
        "vocab_size": tokenizer.vocab_size,
        "blank": 0,
        "tokenizer": layout.TOKENIZER,
        "encoder": {"n_layers": m.n_layers, "n_heads": m.n_heads, "d_model": m.d_model,
                    "conv_left": conv.left if conv is not None else 0},  # fmt: skip
        "streaming": {
            "chunk_frames": "any; trained with chunks of 1..%d frames and %d left chunks" % (
                m.max_chunk_frames, m.max_left_chunks),
            "default_chunk_ms": 640,
            "default_left_chunks": 8,
            "how": "subsampling.onnx on log-mel (frame t reads feature frames [rate t, rate t + right_context]; keep "
            "the features a later frame still needs), then chunk.onnx per chunk of C frames: offset = frames "
            "before it, the first chunk with L = 0 keys/values and a zero conv state; keep the last "
            "left_chunks * C frames of keys_out/values_out for the next chunk (all if left_chunks = -1)",
        },
        "graphs": graphs,
        "int8": [layout.int8_name(n) for n in (layout.FULL, layout.CHUNK)] if int8 else [],
        "recipe": recipe_to_dict(recipe),
    }


def export_onnx(
    recipe: RecipeConfig, tokenizer: Tokenizer, model: CTCModel, out: str | Path, int8: bool = False
) -> Path:
    """Write the ONNX model directory ``out`` (replaced whole, only once everything is written)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    tmp.chmod(0o755)
    try:
        graphs = export_graphs(model, tmp)
        if int8:
            for name in (layout.FULL, layout.CHUNK):
                layout.quantize_int8(tmp / name, tmp / layout.int8_name(name))
        (tmp / layout.TOKENIZER).write_bytes(tokenizer.model_proto)
        (tmp / layout.META).write_text(json.dumps(metadata(recipe, tokenizer, model, graphs, int8), indent=1) + "\n")
        if out.exists():
            shutil.rmtree(out)
        tmp.rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out

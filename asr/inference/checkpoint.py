"""Self-describing checkpoints: weights plus the recipe, the tokenizer and (as buffers)
the feature statistics. Every load uses ``torch.load(..., weights_only=True)``: a file
that would need to run code to load is refused.

Two kinds of file load the same way: Lightning training checkpoints (``*.ckpt``, with an
``"asr"`` entry and ``model.``-prefixed weights) and exported models (``model.pt``).
Lightning reads and writes its checkpoints through
:class:`asr.training.module.SafeCheckpointIO`, which uses :func:`read_checkpoint` and
:func:`asr.audio.atomic.atomic_write`; :func:`asr.training.checkpoint.export_model` writes
``model.pt``.

A file states its :data:`FORMAT_VERSION`; one of another version is refused in one line. It
carries the whole training recipe, but only the sections that rebuild the network
(:data:`MODEL_SECTIONS`) are read strictly: a field of the other sections (corpus,
augmentation, data, optimizer, ...) that this code no longer knows, or a section renamed
since, is left out, so recipes can change without breaking the models trained before.
"""

from __future__ import annotations

import dataclasses
import math
import pickle
import re
import warnings
from pathlib import Path

import torch

from asr.config import ConfigError, RecipeConfig, recipe_from_dict, recipe_to_dict
from asr.text.tokenizer import Tokenizer

FORMAT_VERSION = 1  # of what a file holds: {"format_version", "config", "tokenizer", "state_dict"}
MODEL_SECTIONS = ("model", "features")  # the recipe's sections that rebuild the network: read strictly


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, corrupt, unsafe or not one of ours."""


def checkpoint_meta(recipe: RecipeConfig, tokenizer: Tokenizer) -> dict:
    return {"format_version": FORMAT_VERSION, "config": recipe_to_dict(recipe), "tokenizer": tokenizer.model_proto}


def _refusal(path: Path, err: pickle.UnpicklingError) -> CheckpointError:
    """torch's weights-only error (many lines, advice to load unsafely) -> one line."""
    called = re.search(r"Unsupported global: GLOBAL (\S+)", str(err))
    if called:
        reason = f"loading it would call {called.group(1)}, which could run code"
    else:
        detail = re.search(r"WeightsUnpickler error: \s*([^\n]+)", str(err))
        reason = f"corrupt, or pickled data that is not plain weights ({detail.group(1) if detail else 'unreadable'})"
    return CheckpointError(f"{path}: refused: {reason}; only plain-weights checkpoints are loaded")


def read_checkpoint(path: str | Path) -> dict:
    """Safely load a checkpoint file -> its dict, or raise :class:`CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: checkpoint not found")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Detected pickle protocol 4": the error below says it all
            data = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:
        raise _refusal(path, err) from None
    except Exception as err:  # noqa: BLE001 - fed random bytes, the unpickler raises IndexError, KeyError, ...
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({_first_line(err)})") from None
    if not isinstance(data, dict) or "asr" not in data and "config" not in data:
        raise CheckpointError(f"{path}: not an asr checkpoint (no config or tokenizer inside)")
    meta = data.get("asr", data)
    version = meta.get("format_version", 1) if isinstance(meta, dict) else None  # files before it was written: 1
    if version != FORMAT_VERSION:
        raise CheckpointError(f"{path}: checkpoint format version {version!r}, this code reads {FORMAT_VERSION}")
    return data


def recipe_of(config: dict) -> RecipeConfig:
    """A checkpoint's recipe: :data:`MODEL_SECTIONS` as they are (:class:`ConfigError` on any
    field this code does not know), the other sections without the fields it does not know
    (a section none of whose fields it can read: its defaults), unknown sections left out."""
    try:
        return recipe_from_dict(config, check_trainer=False)
    except ConfigError:
        pass  # the strict reading failed: keep what this code still reads
    if not isinstance(config, dict):
        raise ConfigError(f"the recipe is a {type(config).__name__}, not a mapping")
    defaults = RecipeConfig()
    known = {f.name for f in dataclasses.fields(RecipeConfig)}
    kept = {key: config[key] for key in MODEL_SECTIONS if key in config}
    for key, value in config.items():
        if key not in known or key in kept:
            continue
        section = getattr(defaults, key)
        if dataclasses.is_dataclass(section) and isinstance(value, dict):
            fields = {f.name for f in dataclasses.fields(section)}
            value = {k: v for k, v in value.items() if k in fields}
        try:
            recipe_from_dict({**kept, key: value}, check_trainer=False)
        except ConfigError:
            continue  # a field of a type that changed: the section's defaults
        kept[key] = value
    return recipe_from_dict(kept, check_trainer=False)


def load_parts(path: str | Path):
    """-> (recipe, tokenizer, CTCModel in eval mode) from either kind of checkpoint.

    The model the config describes is checked against the weights before it is built
    (:func:`check_shapes`), so a config that asks for far more than its weights costs nothing.
    """
    from asr.model import CTCModel

    data = read_checkpoint(path)
    meta = data.get("asr", data)
    try:
        recipe = recipe_of(meta["config"])
        tokenizer = Tokenizer(meta["tokenizer"])
        state = data["state_dict"]
        if not isinstance(state, dict):
            raise TypeError("state_dict is not a mapping")
        if "asr" in data:  # Lightning checkpoint
            state = {k.removeprefix("model."): v for k, v in state.items() if str(k).startswith("model.")}
        check_shapes(path, recipe, tokenizer.vocab_size, state)
        model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
        model.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError, TypeError, AttributeError) as err:
        if isinstance(err, CheckpointError):
            raise
        raise CheckpointError(f"{path}: incomplete or mismatched checkpoint ({_first_line(err)})") from None
    return recipe, tokenizer, model.eval()


def _first_line(err: Exception) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


MAX_PARAMETERS = 2_000_000_000  # a config describing more is refused (8 GB of float32 weights)
MAX_LAYERS = 1_000  # sanity limits checked before the model is even described:
MAX_WIDTH = 16_384  # building it loops over layers and makes a (10,000, d_model) position table
SMALL_TENSOR = 65_536  # elements: smaller tensors are made for real while describing the model
_FACTORIES = {torch.empty, torch.zeros, torch.ones, torch.full, torch.rand, torch.randn, torch.randint,
              torch.empty_strided, torch.eye}  # fmt: skip


class _LargeTensorsOnMeta(torch.overrides.TorchFunctionMode):
    """Tensor factories of more than :data:`SMALL_TENSOR` elements (weights) make shape-only
    tensors on the ``meta`` device; small ones (the mel filterbank, norms) stay real, so
    code that reads their values while a module is built still runs."""

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = dict(kwargs or {})
        if func in _FACTORIES and kwargs.get("device") is None and _numel(args, kwargs) > SMALL_TENSOR:
            kwargs["device"] = "meta"
        return func(*args, **kwargs)


def _numel(args: tuple, kwargs: dict) -> int:
    size = kwargs.get("size", args[0] if args and isinstance(args[0], (tuple, list, torch.Size)) else args)
    return math.prod(size) if all(isinstance(n, int) for n in size) else 0


def expected_shapes(recipe: RecipeConfig, vocab_size: int) -> dict[str, tuple[int, ...]]:
    """The state-dict shapes of the model ``recipe`` describes, without allocating its weights."""
    from asr.model import CTCModel

    cfg = recipe.model
    if cfg.n_layers > MAX_LAYERS or max(cfg.d_model, cfg.n_heads) > MAX_WIDTH or vocab_size > MAX_PARAMETERS:
        raise ValueError(f"model.n_layers {cfg.n_layers}, d_model {cfg.d_model}, vocabulary {vocab_size}: "
                         f"beyond the sane limits ({MAX_LAYERS} layers, width {MAX_WIDTH})")  # fmt: skip
    at_least = cfg.n_layers * (4 * cfg.d_model**2 + 2 * cfg.d_model * cfg.ff_dim)  # attention + feed-forward
    if at_least > MAX_PARAMETERS:  # refused without even describing the layers one by one
        raise ValueError(f"over {at_least:,} parameters in the encoder alone, the limit is {MAX_PARAMETERS:,}")
    with _LargeTensorsOnMeta():
        model = CTCModel(cfg, recipe.features, recipe.specaug, vocab_size)
    return {name: tuple(t.shape) for name, t in model.state_dict().items()}


def check_shapes(path, recipe: RecipeConfig, vocab_size: int, state: dict) -> None:
    """Compare the model the config describes with the tensors in ``state``; one
    :class:`CheckpointError` naming the file and the first tensor that differs, or the
    size when the config describes more than :data:`MAX_PARAMETERS`."""
    try:
        expected = expected_shapes(recipe, vocab_size)
    except (RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: its config describes no model that can be built ({_first_line(err)})") from None
    count = sum(math.prod(shape) for shape in expected.values())
    if count > MAX_PARAMETERS:
        raise CheckpointError(f"{path}: its config describes a model of {count:,} parameters, over the limit of "
                              f"{MAX_PARAMETERS:,}; refused before building it")  # fmt: skip
    problem = None
    for name, shape in expected.items():
        found = state.get(name)
        if found is None:
            problem = f"{name!r} {shape} is missing from the file"
        elif not isinstance(found, torch.Tensor):
            problem = f"{name!r} is a {type(found).__name__}, not a tensor"
        elif tuple(found.shape) != shape:
            problem = f"{name!r} is {tuple(found.shape)} in the file, {shape} in the model its config describes"
        if problem:
            break
    extra = [name for name in state if name not in expected]
    if problem is None and extra:
        problem = f"{extra[0]!r} in the file is not in the model its config describes"
    if problem:
        raise CheckpointError(f"{path}: weights do not match the config: {problem}")

"""Self-describing checkpoints: weights plus the recipe, the tokenizer and (as buffers)
the feature statistics. Every load uses ``torch.load(..., weights_only=True)``: a file
that would need to run code to load is refused.

Two kinds of file load the same way: Lightning training checkpoints (``*.ckpt``, with an
``"asr"`` entry and ``model.``-prefixed weights) and exported models (``model.pt``).
Lightning reads and writes its checkpoints through
:class:`asr.training.module.SafeCheckpointIO`, which uses :func:`read_checkpoint` and
:func:`asr.audio.atomic.atomic_write`; :func:`asr.training.checkpoint.export_model` writes
``model.pt``.
"""

from __future__ import annotations

import pickle
import re
import warnings
from pathlib import Path

import torch

from asr.config import RecipeConfig, recipe_from_dict, recipe_to_dict
from asr.text.tokenizer import Tokenizer

FORMAT_VERSION = 1


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
    except (RuntimeError, EOFError, OSError, ValueError, MemoryError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{path}: corrupt or unreadable checkpoint ({first})") from None
    if not isinstance(data, dict) or "asr" not in data and "config" not in data:
        raise CheckpointError(f"{path}: not an asr checkpoint (no config or tokenizer inside)")
    return data


def load_parts(path: str | Path):
    """-> (recipe, tokenizer, CTCModel in eval mode) from either kind of checkpoint."""
    from asr.model import CTCModel

    data = read_checkpoint(path)
    meta = data.get("asr", data)
    try:
        recipe = recipe_from_dict(meta["config"], check_trainer=False)
        tokenizer = Tokenizer(meta["tokenizer"])
        state = data["state_dict"]
        if "asr" in data:  # Lightning checkpoint
            state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
        model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size)
        model.load_state_dict(state)
    except (KeyError, RuntimeError, ValueError, TypeError) as err:
        raise CheckpointError(f"{path}: incomplete or mismatched checkpoint ({str(err).splitlines()[0]})") from None
    return recipe, tokenizer, model.eval()

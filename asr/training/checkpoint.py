"""Exporting a Lightning training checkpoint as the compact inference file ``model.pt``
(the format :mod:`asr.inference.checkpoint` defines and reads)."""

from __future__ import annotations

from pathlib import Path

import torch

from asr.audio.atomic import atomic_write
from asr.inference.checkpoint import CheckpointError, read_checkpoint


def export_model(checkpoint_path: str | Path, out_path: str | Path) -> Path:
    """Lightning checkpoint -> compact inference file (config, tokenizer, weights)."""
    data = read_checkpoint(checkpoint_path)
    if "asr" not in data:
        raise CheckpointError(f"{checkpoint_path}: not a Lightning training checkpoint (exported already?)")
    meta = data["asr"]
    state = {k.removeprefix("model."): v for k, v in data["state_dict"].items() if k.startswith("model.")}
    exported = {**meta, "state_dict": state}
    return atomic_write(out_path, lambda tmp: torch.save(exported, tmp))

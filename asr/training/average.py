"""Checkpoint averaging: the element-wise mean of the weights of several checkpoints of one
run, written as a self-describing ``model.pt`` (config, tokenizer, weights) that
:func:`asr.inference.checkpoint.load_parts` and :func:`asr.inference.load_model` read.

Floating-point tensors are averaged in float64 and cast back; integer tensors (counters)
are taken from the newest checkpoint. Checkpoints are Lightning training checkpoints
(``*.ckpt``) of the same recipe; the epoch, step and validation score that Lightning
stores in each one choose the *last* or *best* N.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from asr.inference.checkpoint import CheckpointError, read_checkpoint
from asr.audio.atomic import atomic_write


@dataclass(frozen=True)
class CheckpointInfo:
    path: Path
    epoch: int
    step: int
    score: float | None  # the monitored metric (val_wer) when it was saved; None if unknown


def checkpoint_info(path: str | Path) -> CheckpointInfo:
    data = read_checkpoint(path)
    if "asr" not in data or "state_dict" not in data:
        raise CheckpointError(f"{path}: not a Lightning training checkpoint (averaging needs *.ckpt files)")
    score = None
    for key, state in data.get("callbacks", {}).items():
        if str(key).startswith("ModelCheckpoint") and state.get("current_score") is not None:
            score = float(state["current_score"])
    return CheckpointInfo(Path(path), int(data.get("epoch", -1)), int(data.get("global_step", -1)), score)


def select(paths: list[Path], last: int = 0, best: int = 0) -> list[CheckpointInfo]:
    """The ``last`` newest or the ``best`` lowest-scoring checkpoints, one per training step,
    oldest first. ``best`` needs checkpoints saved by a monitoring ModelCheckpoint."""
    if (last > 0) == (best > 0):
        raise ValueError("choose exactly one of last=N or best=N (N > 0)")
    by_step: dict[int, CheckpointInfo] = {}
    for path in paths:
        info = checkpoint_info(path)
        by_step.setdefault(info.step, info)  # last.ckpt often repeats the best one
    infos = sorted(by_step.values(), key=lambda i: i.step)
    if best:
        unscored = [str(i.path) for i in infos if i.score is None]
        if unscored:
            raise CheckpointError(f"{unscored[0]}: no validation score stored; use --last instead of --best")
        chosen = sorted(infos, key=lambda i: i.score)[:best]
        return sorted(chosen, key=lambda i: i.step)
    return infos[-last:]


def average_checkpoints(infos: list[CheckpointInfo], out: str | Path) -> Path:
    """Write the averaged weights of ``infos`` (newest last) with the newest one's recipe."""
    if not infos:
        raise ValueError("no checkpoints to average")
    total: dict[str, torch.Tensor] = {}
    meta = None
    for info in infos:
        data = read_checkpoint(info.path)
        if meta is not None and data["asr"]["config"]["model"] != meta["config"]["model"]:
            raise CheckpointError(f"{info.path}: model config differs from {infos[0].path}; cannot average")
        meta = data["asr"]
        state = {k.removeprefix("model."): v for k, v in data["state_dict"].items() if k.startswith("model.")}
        for name, tensor in state.items():
            if tensor.is_floating_point():
                total[name] = total.get(name, 0) + tensor.double()
            else:
                total[name] = tensor  # counters: the newest value
    reference = {k.removeprefix("model."): v for k, v in data["state_dict"].items() if k.startswith("model.")}
    averaged = {
        name: (value / len(infos)).to(reference[name].dtype) if reference[name].is_floating_point() else value
        for name, value in total.items()
    }
    exported = {**meta, "state_dict": averaged, "averaged_from": [i.path.name for i in infos]}
    return atomic_write(out, lambda tmp: torch.save(exported, tmp))

"""Hostile files other than audio for the soak: reference files, manifests, recipes and
command-line overrides, checkpoints. Each generator writes one case from the random
generator and says whether it is good; a good case must be read and read right, a broken
one must be read or refused with the project's own error, never crash.

- references (``--ref``, Kaldi ``text``): spaces or tabs between id and transcript,
  Windows line ends, a byte-order mark, empty lines, ids with no transcript, characters
  ``str.splitlines`` would cut at; broken: duplicate ids, bytes that are not UTF-8, NUL
  bytes, random bytes
- manifests: JSON lines (:func:`asr.data.manifest.read_manifest` and ``transcribe.py``'s
  reader) and ``wav.scp``-style ``id path`` files; broken: bad JSON, wrong types, NaN
  durations, duplicate ids, non-UTF-8 bytes, lists instead of objects
- recipes and overrides (:func:`asr.config.load_recipe`): known keys with good values;
  broken: unknown keys, wrong types, bad YAML, binary files, overrides without ``=``
- checkpoints (:func:`asr.inference.checkpoint.load_parts`): the tiny model as saved, and
  truncated, random bytes, empty, a tensor of the wrong shape, a missing or extra tensor,
  a config that does not match its weights, absurd sizes, a non-tensor, a broken tokenizer
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np

from asr.bench.fuzz_core import LOST, OK, REFUSED, WORDS

SEPARATORS = [" ", "\t", "  ", " \t", "\t\t"]
ODD = ["\x85", "\u2028", "\x1c", "\u3000", "é", "ß", "'", "-"]  # inside a transcript: kept, never a line break


def _choice(rng: np.random.Generator, items):
    return items[rng.integers(len(items))]


def _sentence(rng: np.random.Generator) -> str:
    words = [_choice(rng, WORDS) for _ in range(rng.integers(0, 6))]
    if words and rng.random() < 0.2:
        words[rng.integers(len(words))] += _choice(rng, ODD)
    return " ".join(words)


# references ----------------------------------------------------------------------------

REF_FAULTS = ["none"] * 4 + ["duplicate", "not_utf8", "nul", "random"]


def write_references(path: Path, rng: np.random.Generator) -> tuple[str, dict[str, str]]:
    """-> (fault, {id: text} that a good file must read as)."""
    fault = _choice(rng, REF_FAULTS)
    refs = {f"utt{i}": _sentence(rng) for i in range(rng.integers(1, 12))}
    lines = []
    for utt_id, text in refs.items():
        lines.append(f"{utt_id}{_choice(rng, SEPARATORS)}{text}" if text or rng.random() < 0.5 else utt_id)
        if rng.random() < 0.2:
            lines.append(_choice(rng, ["", " ", "\t", "  \t "]))  # empty lines
    if fault == "duplicate":
        lines.insert(rng.integers(len(lines) + 1), f"{next(iter(refs))} AGAIN")
    end = "\r\n" if rng.random() < 0.2 else "\n"
    data = (("\ufeff" if rng.random() < 0.1 else "") + end.join(lines) + end).encode()
    if fault in ("not_utf8", "nul"):
        at = int(rng.integers(len(data) + 1))
        data = data[:at] + (b"\xff\xfe" if fault == "not_utf8" else b"\x00") + data[at:]
    elif fault == "random":
        data = rng.bytes(int(rng.integers(1, 500)))
    path.write_bytes(data)
    return fault, {i: t.strip(" \t\r\n\v\f") for i, t in refs.items()}


# manifests -----------------------------------------------------------------------------

MANIFEST_FAULTS = ["none"] * 4 + ["json", "type", "nan", "duplicate", "not_utf8", "list", "missing"]


def write_manifest_case(path: Path, rng: np.random.Generator, scp: bool) -> tuple[str, list[str]]:
    """A JSON-lines manifest or a ``wav.scp`` file -> (fault, ids a good one must list)."""
    fault = _choice(rng, ["none", "none", "duplicate", "not_utf8", "missing"] if scp else MANIFEST_FAULTS)
    ids = [f"u{i}" for i in range(rng.integers(1, 10))]
    if scp:
        lines = [f"{i}{_choice(rng, SEPARATORS)}/data/{i}.flac" for i in ids]
        if fault == "missing":
            lines.append("u_alone")
    else:
        lines = [json.dumps({"id": i, "audio": f"/data/{i}.flac", "duration": float(rng.uniform(0.1, 20)),
                             "text": _sentence(rng)}) for i in ids]  # fmt: skip
        broken = {"json": '{"id": "x", "audio": ', "type": json.dumps({"id": 3, "audio": [], "duration": "a", "text": 1}),
                  "nan": '{"id": "n", "audio": "a.flac", "duration": NaN, "text": ""}', "list": "[1, 2]",
                  "missing": json.dumps({"id": "m"})}  # fmt: skip
        if fault in broken:
            lines.insert(rng.integers(len(lines) + 1), broken[fault])
    if fault == "duplicate":
        lines.append(lines[0])
    data = "\n".join(lines).encode() + b"\n"
    if fault == "not_utf8":
        data = b"\xc3\x28" + data
    path.write_bytes(data)
    return fault, ids


def check_read_manifest(path: Path, fault: str, ids: list[str]) -> str:
    from asr.data.manifest import ManifestError, read_manifest

    try:
        entries = read_manifest(path)
    except ManifestError as err:
        if not str(err).startswith(str(path)) or "\n" in str(err):
            raise
        return LOST if fault == "none" else REFUSED
    return OK if fault == "none" and [e.id for e in entries] == ids else LOST


# recipes and overrides -------------------------------------------------------------------

GOOD_OVERRIDES = ["model.d_model=64", "model.n_layers=2", "optim.lr=0.001", "data.max_batch_seconds=30",
                  "trainer.max_epochs=3", "tokenizer.kind=char", "model.pos_enc=rope", "data.buckets=5",
                  "specaug.freq_masks=1", "trainer.precision=bf16-mixed", "corpus.train_splits=[a,b]"]  # fmt: skip
BAD_OVERRIDES = ["model.d_model=big", "model.nope=1", "optim.lr", "=1", "model=3", "trainer.max_time=1:2",
                 "model.subsampling=conv9", "data.buckets=[1,2]", "corpus.train_splits=5", "model.n_layers=1.5",
                 "model..d_model=2", "trainer.no_such_arg=1", "model.inter_ctc_layers=[9]", "\x00=\x00"]  # fmt: skip
BAD_RECIPES = ["model: [1, 2]", "- a\n- b", "model:\n  d_model: [", "nope:\n  x: 1", "model:\n  d_model: {a: 1}",
               "trainer: 5", "model:\n  n_heads: null", "optim:\n  betas: [1]", ": : :"]  # fmt: skip


def write_recipe_case(path: Path, rng: np.random.Generator) -> tuple[bool, list[str]]:
    """A recipe file and overrides -> (good, overrides)."""
    good = bool(rng.random() < 0.4)
    overrides = [_choice(rng, GOOD_OVERRIDES) for _ in range(rng.integers(0, 4))]
    if good:
        path.write_text("model:\n  d_model: 96\n  n_heads: 4\noptim:\n  lr: 0.002\n")
        return True, overrides
    if rng.random() < 0.5:
        overrides.insert(rng.integers(len(overrides) + 1), _choice(rng, BAD_OVERRIDES))
        path.write_text("data:\n  buckets: 4\n")
    elif rng.random() < 0.7:
        path.write_text(_choice(rng, BAD_RECIPES))
    else:
        path.write_bytes(rng.bytes(int(rng.integers(0, 300))))
    return False, overrides


def check_recipe(path: Path, good: bool, overrides: list[str]) -> str:
    from asr.config import ConfigError, load_recipe

    try:
        load_recipe(path, overrides)
    except ConfigError as err:
        if "\n" in str(err).strip() and "YAML" not in str(err):
            raise
        return LOST if good else REFUSED
    return OK


# checkpoints ------------------------------------------------------------------------------

CHECKPOINT_FAULTS = ["none"] * 3 + ["truncated", "random", "empty", "shape", "missing", "extra", "config",
                                    "absurd", "larger", "layers", "not_tensor", "tokenizer", "state", "lightning"]  # fmt: skip


def write_checkpoint_case(path: Path, good: dict, rng: np.random.Generator) -> str:
    """``good``: the tiny model's checkpoint dict, read once -> fault written to ``path``."""
    import torch

    fault = _choice(rng, CHECKPOINT_FAULTS)
    data = copy.deepcopy(good)
    state = data["state_dict"]
    name = _choice(rng, sorted(state))
    if fault == "shape":
        state[name] = torch.zeros(*(n + 1 for n in state[name].shape)) if state[name].ndim else torch.zeros(2)
    elif fault == "missing":
        del state[name]
    elif fault == "extra":
        state["encoder.extra.weight"] = torch.zeros(3)
    elif fault == "config":
        data["config"]["model"][_choice(rng, ["d_model", "ff_dim", "n_layers", "subsampling_channels"])] *= 2
    elif fault == "absurd":  # billions of weights: refused for its size alone, before anything is built
        width = int(rng.integers(2048, 16384))
        data["config"]["model"].update(d_model=width, ff_dim=4 * width, n_layers=int(rng.integers(24, 1000)))
    elif fault == "larger":  # tens of millions of weights: described (not allocated), then found not to match
        data["config"]["model"].update(d_model=1024, n_heads=8, ff_dim=4096, n_layers=int(rng.integers(2, 8)))
    elif fault == "layers":
        data["config"]["model"]["n_layers"] = int(rng.integers(10**4, 10**9))
    elif fault == "not_tensor":
        state[name] = [1, 2, 3]
    elif fault == "tokenizer":
        data["tokenizer"] = rng.bytes(int(rng.integers(0, 200)))
    elif fault == "state":
        data["state_dict"] = [1]
    elif fault == "lightning":  # a training checkpoint's layout, as Lightning writes it
        data = {"asr": {k: data[k] for k in ("format_version", "config", "tokenizer")},
                "state_dict": {f"model.{k}": v for k, v in state.items()}}  # fmt: skip
    torch.save(data, path)
    if fault in ("truncated", "random", "empty"):
        raw = path.read_bytes()
        pickled = bytes([0x80, int(rng.integers(2, 6))]) if rng.random() < 0.5 else b""  # into the unpickler
        path.write_bytes({"truncated": raw[: int(len(raw) * rng.uniform(0.01, 0.99))], "empty": b"",
                          "random": pickled + rng.bytes(int(rng.integers(1, 4000)))}[fault])  # fmt: skip
    return fault


def check_checkpoint(path: Path, fault: str) -> str:
    from asr.inference.checkpoint import CheckpointError, load_parts

    try:
        load_parts(path)
    except CheckpointError as err:
        if not str(err).startswith(str(path)) or "\n" in str(err):
            raise
        return LOST if fault in ("none", "lightning") else REFUSED
    return OK if fault in ("none", "lightning") else LOST



"""Data preparation for a recipe: corpus, manifests, tokenizer, feature statistics.

Each product is cached under the recipe's folders and rebuilt only when missing:
``<corpus.root>/<split>.jsonl`` manifests, ``<exp_dir>/tokenizer.model`` and
``<exp_dir>/feature_stats.pt``. The last two are also rebuilt when the recipe section they
were made from (``tokenizer``, ``features``; recorded in ``tokenizer.json`` and
``feature_stats.json`` beside them) has changed, unless a model trained with them is in
exp_dir: that is refused, naming the key.

``corpus.kind: manifest`` reads manifests made elsewhere (``python -m asr.cli.import_data``):
``<corpus.root>/<split>.jsonl``, or a split named by its ``.jsonl`` path. ``corpus.mix`` takes
manifest files too. When ``model.init`` names a model this project trained, its tokenizer and
feature statistics are used instead of any made here (:mod:`asr.training.pretrained`).
"""

from __future__ import annotations

import dataclasses
import json
import random
from dataclasses import dataclass
from pathlib import Path

import torch

from asr.audio.read import AudioError, read_audio
from asr.config import ConfigError, RecipeConfig
from asr.data.manifest import Entry, ManifestError, read_manifest, scan_librispeech, write_manifest
from asr.model.features import LogMel
from asr.audio.atomic import atomic_write
from asr.text.tokenizer import Tokenizer
from asr.training.pretrained import read_trained, trained_init


@dataclass(frozen=True)
class Prepared:
    train: list[Entry]
    dev: list[Entry]
    test: dict[str, list[Entry]]  # split name -> entries
    tokenizer: Tokenizer
    mean: torch.Tensor  # (F,)
    std: torch.Tensor  # (F,)


def split_manifest(root: Path, split: str) -> list[Entry]:
    """Manifest for ``root/split`` (a LibriSpeech-layout folder), built once; a split ending in
    ``.jsonl`` is that manifest file (from the current folder, else from ``root``)."""
    if split.endswith(".jsonl"):
        path = Path(split) if Path(split).is_file() or not (root / split).is_file() else root / split
        if not path.is_file():
            raise ManifestError(f"{path}: no such manifest")
        return read_manifest(path)
    path = root / f"{split}.jsonl"
    if not path.exists():
        entries, problems = scan_librispeech(root / split)
        for line in problems:
            print(f"warning: {split}: {line}")
        write_manifest(path, entries)
    return read_manifest(path)


def manifest_split(root: Path, split: str) -> list[Entry]:
    """``corpus.kind: manifest``: as :func:`split_manifest`, but a missing ``<root>/<split>.jsonl``
    is an error naming the command that makes it, not a folder to scan."""
    path = root / f"{split}.jsonl"
    if not split.endswith(".jsonl") and not path.is_file():
        raise ManifestError(f"{path}: no such manifest (python -m asr.cli.import_data FORMAT SRC --out {root} "
                            "writes train.jsonl, dev.jsonl and test.jsonl)")
    return split_manifest(root, split)


def split_name(split: str) -> str:
    """A test split's name in file names (``<exp_dir>/<name>.ref``): ``data/mine/test.jsonl`` -> ``mine-test``."""
    if not split.endswith(".jsonl"):
        return split
    path = Path(split)
    return f"{path.parent.name}-{path.stem}" if path.parent.name else path.stem


def mixed_entries(mix: tuple[str, ...], seed: int) -> list[Entry]:
    """``corpus.mix`` ("folder:weight" or "manifest.jsonl:weight", ...) -> training entries: each
    manifest, repeated ``int(weight)`` times plus a seeded share of ``weight % 1`` of it."""
    entries: list[Entry] = []
    for item in mix:
        folder, _, weight_text = item.rpartition(":")
        try:
            weight = float(weight_text)
        except ValueError:
            folder, weight = item, 1.0
        if not folder or weight < 0:
            raise ValueError(f"corpus.mix: {item!r} is not 'folder:weight' with a weight >= 0")
        path = Path(folder)
        if folder.endswith(".jsonl") and path.is_file():
            found = read_manifest(path)
        elif path.is_dir():
            found = split_manifest(path.parent, path.name)
        else:
            raise ValueError(f"corpus.mix: {folder}: no such folder or .jsonl manifest")
        whole, part = int(weight), weight - int(weight)
        share = random.Random(f"{seed}:{folder}").sample(found, round(part * len(found)))
        entries += found * whole + share
        print(f"mix: {folder}: {len(found)} utterances x {weight:g} -> {len(found) * whole + len(share)}")
    return entries


def feature_stats(entries: list[Entry], recipe: RecipeConfig, max_utts: int = 1000, seed: int = 0):
    """Per-bin mean and std of log-mel over (a sample of) training audio -> (F,), (F,)."""
    sample = random.Random(seed).sample(entries, min(max_utts, len(entries)))
    logmel = LogMel(recipe.features)
    total = torch.zeros(recipe.features.n_mels, dtype=torch.float64)
    total_sq = torch.zeros_like(total)
    frames = 0
    with torch.no_grad():
        for entry in sample:
            try:
                wave = read_audio(entry.audio, recipe.features.sample_rate)
            except AudioError as err:  # gone or broken since the manifest was made
                print(f"warning: feature statistics: skipped {err}")
                continue
            feats, _ = logmel(wave.unsqueeze(0), torch.tensor([wave.numel()]))  # (1, T, F)
            feats = feats[0].double()
            total += feats.sum(0)
            total_sq += (feats**2).sum(0)
            frames += feats.shape[0]
    mean = total / frames
    std = (total_sq / frames - mean**2).clamp(min=1e-10).sqrt()
    return mean.float(), std.float()


def prepare(recipe: RecipeConfig) -> Prepared:
    corpus = recipe.corpus
    root = Path(corpus.root)
    eval_sets: dict[str, Path] = {}
    # a trained model to start from is read (and checked against the recipe) before any data is made
    start = read_trained(recipe) if trained_init(recipe) else None
    read_split = manifest_split if corpus.kind == "manifest" else split_manifest
    if corpus.kind == "manifest":
        pass  # made beforehand; read_split names a missing file
    elif corpus.kind == "espeak":
        from asr.corpus.synthetic import generate_espeak

        generate_espeak(corpus)
    elif corpus.kind == "synth":
        from asr.corpus.synthetic import generate_synthetic

        eval_sets = generate_synthetic(corpus)
    elif corpus.kind == "librispeech":
        from asr.corpus.librispeech import fetch_corpus

        fetch_corpus(corpus)  # downloads only the subsets not under corpus.root yet
    else:
        raise ValueError(f"corpus.kind must be 'espeak', 'synth', 'librispeech' or 'manifest', not {corpus.kind!r}")

    def gather(splits):
        return [e for split in splits for e in read_split(root, split)]

    train = gather(corpus.train_splits) + mixed_entries(corpus.mix, recipe.seed)
    dev = gather(corpus.dev_splits)
    if corpus.kind == "manifest" and not (train and dev):
        empty = "train" if not train else "dev"
        raise ManifestError(f"corpus.{empty}_splits {list(getattr(corpus, f'{empty}_splits'))} under {root}: no "
                            f"utterances (python -m asr.cli.import_data --dev N sets the dev size)")
    test = {split_name(split): read_split(root, split) for split in corpus.test_splits}
    for name, folder in eval_sets.items():
        test[name] = split_manifest(folder.parent, folder.name)
    exp = recipe.exp_path
    exp.mkdir(parents=True, exist_ok=True)
    if start is not None:  # the trained model's own tokenizer and feature statistics
        tokenizer, model = start
        return Prepared(train, dev, test, tokenizer, model.cmvn.mean.clone(), model.cmvn.std.clone())

    tok_path = exp / "tokenizer.model"
    if reusable(tok_path, "tokenizer", recipe.tokenizer, exp):
        tokenizer = Tokenizer(tok_path.read_bytes())
    else:
        tokenizer = Tokenizer.train((e.text for e in train), recipe.tokenizer.vocab_size, recipe.tokenizer.kind)
        atomic_write(tok_path, lambda tmp: tmp.write_bytes(tokenizer.model_proto))
        record_made_from(tok_path, recipe.tokenizer)

    stats_path = exp / "feature_stats.pt"
    if reusable(stats_path, "features", recipe.features, exp):
        stats = torch.load(stats_path, weights_only=True)
    else:
        mean, std = feature_stats(train, recipe, seed=recipe.seed)
        stats = {"mean": mean, "std": std}
        atomic_write(stats_path, lambda tmp: torch.save(stats, tmp))
        record_made_from(stats_path, recipe.features)
    return Prepared(train, dev, test, tokenizer, stats["mean"], stats["std"])


def reusable(path: Path, section: str, config, exp: Path) -> bool:
    """Whether ``path`` exists and was made from ``config``, the recipe's ``section``
    (:func:`record_made_from`). One made from other values is rebuilt, said in one line;
    where a model trained with it is in ``exp`` that raises :class:`ConfigError` naming the
    key and the file instead (resuming that model with another tokenizer or filterbank
    would not fit it)."""
    if not path.exists():
        return False
    record = path.with_suffix(".json")
    trained = (exp / "model.pt").exists() or any((exp / "checkpoints").glob("*.ckpt"))
    if not record.exists():  # made before records were kept: the model trained with it decides
        if not trained:
            print(f"{path}: no record of the {section} section it was made from: rebuilt")
        return trained
    # a key the record lacks (a field added since) counts as that field's default: the old behaviour
    made = {**dataclasses.asdict(type(config)()), **json.loads(record.read_text(encoding="utf-8"))}
    wanted = dataclasses.asdict(config)
    changed = [key for key in wanted if made[key] != wanted[key]]
    if not changed:
        return True
    key = changed[0]
    was = f"{path} was made with {made[key]!r}, the recipe has {wanted[key]!r}"
    if trained:
        raise ConfigError(f"config key '{section}.{key}': {was}, and a model in {exp} was trained with it: "
                          "choose another exp_dir")  # fmt: skip
    print(f"{section}.{key}: {was}: rebuilt")
    return False


def record_made_from(path: Path, config) -> None:
    """Write ``config`` (a recipe section) beside ``path`` as ``<stem>.json``."""
    text = json.dumps(dataclasses.asdict(config), sort_keys=True) + "\n"
    atomic_write(path.with_suffix(".json"), lambda tmp: tmp.write_text(text, encoding="utf-8"))

"""Small corpora the tests write themselves (imported by test modules; pytest puts tests/ on sys.path)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf

WORDS = ["RED", "BLUE", "CAT", "DOG", "SUN", "MOON", "TREE", "STONE", "RIVER", "HILL"]


def write_noise_corpus(root: Path, split: str, count: int, seed: int) -> None:
    """``count`` utterances of 2-4 s of noise with 2-3 word transcripts, LibriSpeech layout."""
    rng = np.random.default_rng(seed)
    folder = root / split / "10" / "1"
    folder.mkdir(parents=True)
    lines = []
    for i in range(count):
        utt = f"10-1-{seed * 1000 + i:04d}"
        sf.write(folder / f"{utt}.flac", 0.1 * rng.standard_normal(int(16000 * rng.uniform(2, 4))), 16000)
        lines.append(f"{utt} {' '.join(rng.choice(WORDS, size=rng.integers(2, 4)))}")
    (folder / "10-1.trans.txt").write_text("\n".join(lines) + "\n")


def noise_recipe(root: Path, exp_dir: Path, data: dict):
    """A one-layer character model on a noise corpus at ``root`` (train and dev splits),
    with the ``data`` section given."""
    from asr.config import recipe_from_dict

    return recipe_from_dict(
        {
            "exp_dir": str(exp_dir),
            "corpus": {"kind": "librispeech", "root": str(root), "train_splits": ["train"],
                       "dev_splits": ["dev"], "test_splits": ["dev"]},  # fmt: skip
            "tokenizer": {"kind": "char"},
            "model": {"d_model": 16, "n_heads": 2, "n_layers": 1, "ff_dim": 32, "subsampling_channels": 4},
            "data": data,
        }
    )

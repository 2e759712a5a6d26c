"""The synthesized corpora, from text to folders.

``corpus.kind: espeak`` (the first corpus, kept for tests and comparisons): the plain
sentences of the Python docstrings (:mod:`asr.corpus.sentences`), shuffled by the seed and
split test / dev / train, spoken by espeak-ng alone (:func:`docstring_sentences`).

``corpus.kind: synth``:

1. everyday sentences from the recipe's text sources (:mod:`asr.corpus.text_sources`),
   ``train/dev/test_sentences`` in all, shared evenly between the sources;
2. split disjointly per source, with a held-out pool that no training split ever sees;
3. known evaluation prompts (Harvard/IEEE, TIMIT, CMU ARCTIC where a package ships them)
   and every transcript of the recipe's eval sets dropped from the training text;
4. spoken by the recipe's engines (:mod:`asr.corpus.synth`) into ``corpus.root/<split>``;
5. the eval sets built into ``corpus.eval_root/<name>/test`` (:mod:`asr.corpus.evalsets`):
   ``unseen`` reads the held-out pool with an engine never used in training, ``real`` is
   human speech from registry packages.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

from asr.config import CorpusConfig
from asr.text import normalize_text

EVAL_SEED_OFFSET = 7  # the unseen set's draws differ from the corpus's own


def _per_source(total: int, names: list[str]) -> int:
    return max(1, total // max(1, len(names)))


def corpus_sentences(config: CorpusConfig, exclude: set[str]) -> dict[str, list]:
    """-> {"train" | "dev" | "test" | "heldout": [(source, sentence), ...]}; ``exclude``
    holds normalized sentences that must not be trained on (eval-set transcripts)."""
    from asr.corpus.text_sources import drop_eval_prompts, everyday_sentences, split_sentences
    from asr.corpus.text_sources.prompts import unpack_prompt_packages

    names = list(config.text_sources)
    each = sum(_per_source(n, names) for n in (config.train_sentences, config.dev_sentences, config.test_sentences,
                                               config.heldout_sentences))  # fmt: skip
    by_source = everyday_sentences(names, int(each * 1.2) + 50, config.seed)  # margin for dropped prompts
    if not by_source:
        raise RuntimeError(f"none of the text sources {', '.join(config.text_sources)} is installed")
    names = sorted(by_source)
    origin = {normalize_text(s): name for name in names for s in by_source[name]}
    splits = split_sentences(
        by_source,
        dev=_per_source(config.dev_sentences, names),
        test=_per_source(config.test_sentences, names),
        heldout=_per_source(config.heldout_sentences, names),
        seed=config.seed,
    )
    unpack_prompt_packages()
    splits["train"] = drop_eval_prompts(splits["train"], extra=exclude)
    if not 0.0 < config.train_share <= 1.0:
        raise ValueError(f"config key 'corpus.train_share' expects a share in (0, 1], got {config.train_share!r}")
    want = _per_source(round(config.train_sentences * config.train_share), names)
    train: list[tuple[str, str]] = []
    for name in names:  # at most `want` training sentences from each source, a seeded draw
        mine = [s for s in splits["train"] if origin.get(normalize_text(s)) == name]
        random.Random(f"{config.seed}:{name}:train").shuffle(mine)
        train += [(name, s) for s in sorted(mine[:want])]
    out = {"train": train}
    for split in ("dev", "test", "heldout"):
        out[split] = [(origin.get(normalize_text(s), "?"), s) for s in splits[split]]
    return out


EVAL_SETS = ("unseen", "real")


def build_eval_sets(config: CorpusConfig, names: tuple[str, ...], heldout: list[str]) -> dict[str, Path]:
    """Make each eval set of ``names`` -> {name: test folder}."""
    from asr.corpus.evalsets import build_real, build_unseen

    root = Path(config.eval_root)
    built = {}
    for name in names:
        if name == "real":
            built[name] = build_real(root, root / "packages")
        else:
            built[name] = build_unseen(root, heldout, config.seed + EVAL_SEED_OFFSET, config.unseen_utterances)
    return built


def docstring_sentences(config: CorpusConfig) -> dict[str, list[str]]:
    """The espeak corpus's splits: docstring sentences shuffled by the seed -> {split: sentences}."""
    from asr.corpus.sentences import stdlib_sentences

    sentences = stdlib_sentences()
    random.Random(config.seed).shuffle(sentences)
    need = config.train_sentences + config.dev_sentences + config.test_sentences
    if need > len(sentences):
        raise ValueError(f"corpus asks for {need} sentences; the text source has {len(sentences)}")
    test, dev = config.test_sentences, config.test_sentences + config.dev_sentences
    return {"train": sentences[dev:need], "dev": sentences[test:dev], "test": sentences[:test]}


def generate_espeak(config: CorpusConfig) -> dict[str, Path]:
    """The ``espeak`` corpus (docstrings read by espeak-ng) -> {split: folder}."""
    from asr.corpus.synth.corpus import generate_corpus

    return generate_corpus(replace(config, engines=("espeak",), engine_weights=()), docstring_sentences(config))


def generate_synthetic(config: CorpusConfig) -> dict[str, Path]:
    """Sentences, corpus splits and eval sets of a ``synth`` recipe -> {test name: folder}
    for the eval sets (the corpus's own splits are under ``config.root``)."""
    from asr.corpus.evalsets import evalset_transcripts
    from asr.corpus.synth.corpus import generate_corpus

    unknown = [name for name in config.eval_sets if name not in EVAL_SETS]
    if unknown:  # before hours of synthesis, not after
        raise ValueError(f"corpus.eval_sets: unknown eval set {unknown[0]!r} (expected one of {', '.join(EVAL_SETS)})")
    real = tuple(name for name in config.eval_sets if name == "real")
    built = build_eval_sets(config, real, [])  # first: its transcripts must stay out of the training text
    exclude = evalset_transcripts(built["real"]) if real else set()
    sentences = corpus_sentences(config, exclude)
    generate_corpus(config, {split: sentences[split] for split in ("train", "dev", "test")})
    others = tuple(name for name in config.eval_sets if name != "real")
    built |= build_eval_sets(config, others, [s for _, s in sentences["heldout"]])
    return {name: built[name] for name in config.eval_sets}

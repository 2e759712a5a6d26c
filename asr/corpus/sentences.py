"""Real English sentences from a text source every Python installation ships: the
docstrings of the standard library and the reference manual's topics (``pydoc_data``).

Only plain sentences are kept: letters, spaces, commas, semicolons and apostrophes, 4 to
14 words, no acronyms or code-like words. About 5,000 distinct sentences come out of
CPython 3.11; the list is sorted, so it is the same on every machine with that Python.
"""

from __future__ import annotations

import ast
import re
import sysconfig
from pathlib import Path

_SKIP_DIRS = {"site-packages", "dist-packages", "test", "tests", "idlelib", "lib2to3", "turtledemo"}
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+")
_PLAIN = re.compile(r"[A-Z][A-Za-z ,;']*")
_WORD = re.compile(r"[A-Za-z']+")


def _docstrings(root: Path):
    for path in sorted(root.rglob("*.py")):
        if _SKIP_DIRS.intersection(path.relative_to(root).parts):
            continue
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (SyntaxError, UnicodeDecodeError, OSError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    yield doc


def _is_plain(body: str) -> bool:
    if not _PLAIN.fullmatch(body):
        return False
    words = _WORD.findall(body)
    if not 4 <= len(words) <= 14:
        return False
    for word in words[1:]:
        if len(word) > 13 or (word != word.lower() and word != word.capitalize()):
            return False  # acronyms and camelCase identifiers read badly
    return len(words[0]) <= 13 and (words[0] == words[0].capitalize() or len(words[0]) == 1)


def stdlib_sentences() -> list[str]:
    """Sorted, distinct plain sentences (without the final period)."""
    from pydoc_data.topics import topics

    texts = list(_docstrings(Path(sysconfig.get_paths()["stdlib"]))) + list(topics.values())
    found = set()
    for text in texts:
        for sentence in _SENTENCE_END.split(" ".join(text.split())):
            if sentence.endswith(".") and _is_plain(sentence[:-1]):
                found.add(sentence[:-1])
    return sorted(found)

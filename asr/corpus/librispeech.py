"""LibriSpeech (openslr SLR12): resumable download, md5 check and safe extraction.

Each subset is one archive, ``<url>/<subset>.tar.gz``, holding
``LibriSpeech/<subset>/<speaker>/<chapter>/*.flac`` beside ``*.trans.txt``. After
:func:`fetch_corpus` the corpus root holds one folder per subset in that same layout, which
:func:`asr.data.manifest.scan_librispeech` reads.

* A download goes to ``<root>/archives/<subset>.tar.gz.part`` and resumes from its size
  with an HTTP ``Range`` request, after an interrupted connection or in a later run.
* The finished archive is checked against the md5 openslr publishes (``MD5SUMS``, or a
  table in ``md5sum.txt`` format for a private mirror). A mismatch deletes the archive and
  raises :class:`ChecksumError`; nothing else on disk is touched.
* Extraction goes to a staging folder; the subset folder appears in one rename, so a
  subset folder that exists is complete. A subset already present is never fetched again.
"""

from __future__ import annotations

import fcntl
import hashlib
import http.client
import os
import re
import shutil
import tarfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Mapping

from tqdm import tqdm

from asr.config import CorpusConfig

# Published at https://www.openslr.org/resources/12/md5sum.txt (the same values appear in
# PaddleSpeech's and NeMo's LibriSpeech downloaders).
MD5SUMS = {
    "dev-clean": "42e2234ba48799c1f50f24a7926300a1",
    "dev-other": "c8d0bcc9cca99d4f8b62fcc847357931",
    "test-clean": "32fa31d27d2e1cad72775fee3f4849a9",
    "test-other": "fb5a50374b501bb3bac4815ee91d3135",
    "train-clean-100": "2a93770f6d5c6c964bc36631d331a522",
    "train-clean-360": "c0e676e450a7ff2f54aeade5171606fa",
    "train-other-500": "d1a0fd59409feb2c614ce4d30c387708",
}
SUBSETS = tuple(MD5SUMS)
CHUNK = 1 << 20  # bytes per read while downloading and hashing
TOP_FOLDER = "LibriSpeech"  # every member of an archive lives under this folder
_MD5_LINE = re.compile(r"([0-9a-fA-F]{32})\s+\*?(\S+)")


class DownloadError(RuntimeError):
    """A download or extraction that failed; the message names the URL or file."""


class ChecksumError(DownloadError):
    """A downloaded archive whose md5 is not the published one (it has been deleted)."""


def read_md5_file(path: str | Path) -> dict[str, str]:
    """``md5sum.txt`` lines (``<md5>  <subset>.tar.gz``) -> {subset: md5}."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as err:
        raise DownloadError(f"{path}: cannot read md5 table ({err.strerror})") from None
    table = {}
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        match = _MD5_LINE.fullmatch(line.strip())
        if match is None:
            raise DownloadError(f"{path}:{number}: not an md5sum line: {line.strip()!r}")
        table[match.group(2).removesuffix(".tar.gz")] = match.group(1).lower()
    return table


def md5sum(path: str | Path) -> str:
    digest = hashlib.md5()  # the checksum openslr publishes; integrity, not security
    with open(path, "rb") as f:
        while block := f.read(CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _resume_offset(response, have: int) -> int | None:
    """Where the body of ``response`` starts in the file: 0 for a 200 (the server ignored
    the Range header), ``have`` for the 206 asked for, None for any other range."""
    if response.status != 206:
        return 0
    match = re.match(r"bytes (\d+)-", response.headers.get("Content-Range", ""))
    return have if match and int(match.group(1)) == have else None


def _fetch_once(url: str, part: Path, timeout: float, desc: str) -> None:
    """One HTTP request that appends to ``part``; raises ``OSError`` if the body is cut short."""
    have = part.stat().st_size if part.exists() else 0
    headers = {"Range": f"bytes={have}-"} if have else {}
    with urllib.request.urlopen(urllib.request.Request(url, headers=headers), timeout=timeout) as response:
        start = _resume_offset(response, have)
        if start is None:  # not the bytes asked for: drop the partial file, the retry starts afresh
            part.unlink()
            raise ConnectionError(f"asked for bytes {have}- but got {response.headers.get('Content-Range')!r}")
        length = response.headers.get("Content-Length")
        total = start + int(length) if length is not None else None
        with open(part, "ab" if start else "wb") as out, tqdm(
            total=total, initial=start, unit="B", unit_scale=True, desc=desc, leave=False
        ) as bar:
            while block := response.read(CHUNK):
                out.write(block)
                bar.update(len(block))
    got = part.stat().st_size
    if total is not None and got < total:  # http.client returns b"" when the peer hangs up early
        raise ConnectionError(f"connection closed after {got} of {total} bytes")


def download(url: str, dest: str | Path, retries: int = 5, timeout: float = 60.0) -> Path:
    """Fetch ``url`` to ``dest`` through ``dest.part``, resuming with HTTP Range requests.

    A cut connection is retried ``retries`` times, each from the bytes already on disk.
    """
    dest = Path(dest)
    part = dest.with_name(dest.name + ".part")
    dest.parent.mkdir(parents=True, exist_ok=True)
    failure = None
    for attempt in range(retries + 1):
        if attempt:
            time.sleep(min(attempt - 1, 10))  # first retry at once, then back off
        try:
            _fetch_once(url, part, timeout, desc=dest.name)
            break
        except urllib.error.HTTPError as err:
            if err.code == 416 and part.exists():  # asked beyond the end: the partial file is whole
                break
            if err.code < 500:
                raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
            failure = f"HTTP {err.code} {err.reason}"
        except (urllib.error.URLError, http.client.HTTPException, OSError) as err:
            failure = str(getattr(err, "reason", err))
    else:
        raise DownloadError(f"{url}: download failed after {retries + 1} attempts ({failure})")
    os.replace(part, dest)
    return dest


def verify(archive: Path, expected_md5: str) -> None:
    """Raise :class:`ChecksumError` (after deleting ``archive``) unless its md5 matches."""
    actual = md5sum(archive)
    if actual != expected_md5.lower():
        archive.unlink(missing_ok=True)
        raise ChecksumError(
            f"{archive.name}: corrupted download refused (md5 {actual}, published {expected_md5}); "
            "the file was deleted, run again to fetch it anew"
        )


def _check_members(tar: tarfile.TarFile, archive: Path, subset: str) -> None:
    """Only plain files and folders under ``LibriSpeech/``; the subset folder must be there."""
    found = False
    for member in tar.getmembers():
        parts = Path(member.name).parts
        if not parts or parts[0] != TOP_FOLDER or ".." in parts or not (member.isfile() or member.isdir()):
            raise DownloadError(f"{archive}: unexpected member {member.name!r} (not a LibriSpeech archive)")
        found = found or (len(parts) >= 2 and parts[1] == subset)
    if not found:
        raise DownloadError(f"{archive}: holds no {TOP_FOLDER}/{subset}/ folder")


def extract(archive: Path, root: Path, subset: str) -> Path:
    """Unpack ``archive`` so that ``root/subset`` appears complete in one rename."""
    staging = root / f".extract-{subset}"
    if staging.exists():
        shutil.rmtree(staging)  # left by an interrupted extraction
    staging.mkdir(parents=True)
    try:
        with tarfile.open(archive, "r:gz") as tar:
            _check_members(tar, archive, subset)
            if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 / 3.10.12
                tar.extractall(staging, filter="data")
            else:  # members were checked above
                tar.extractall(staging)
        for doc in (staging / TOP_FOLDER).iterdir():  # README.TXT, SPEAKERS.TXT, ... once
            if doc.is_file() and not (root / doc.name).exists():
                os.replace(doc, root / doc.name)
        os.replace(staging / TOP_FOLDER / subset, root / subset)
    except (tarfile.TarError, EOFError, OSError) as err:
        raise DownloadError(f"{archive}: cannot extract ({err})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return root / subset


def fetch_subset(subset: str, root: str | Path, url: str, md5: str, keep_archive: bool = False) -> Path:
    """Make ``root/subset`` exist: download, verify and extract unless it is there already."""
    root = Path(root)
    folder = root / subset
    if folder.is_dir():
        return folder
    archive = root / "archives" / f"{subset}.tar.gz"
    if not archive.exists():  # a finished archive from an earlier run is verified, not fetched
        download(f"{url.rstrip('/')}/{subset}.tar.gz", archive)
    verify(archive, md5)
    try:
        extract(archive, root, subset)
    except DownloadError:
        archive.unlink()  # a broken archive is never kept: the next run fetches it anew
        raise
    if not keep_archive:
        archive.unlink()
    return folder


def needed_subsets(config: CorpusConfig) -> list[str]:
    """Training, dev and test splits of a recipe, each once, in that order."""
    return list(dict.fromkeys(config.train_splits + config.dev_splits + config.test_splits))


def fetch_corpus(config: CorpusConfig, checksums: Mapping[str, str] | None = None) -> dict[str, Path]:
    """Fetch every subset the recipe names that is not under ``config.root`` yet -> {subset: folder}.

    ``checksums`` (or ``config.md5_file``) replaces the published md5 table.
    """
    if checksums is None:
        checksums = read_md5_file(config.md5_file) if config.md5_file else MD5SUMS
    root = Path(config.root)
    subsets = needed_subsets(config)
    missing = [s for s in subsets if not (root / s).is_dir()]
    unknown = [s for s in missing if s not in checksums]
    if unknown:
        known = ", ".join(checksums)
        raise DownloadError(f"corpus split {unknown[0]!r} is neither under {root} nor a known archive ({known})")
    if missing:  # (a corpus already in place may sit on a read-only file system: no lock file then)
        root.mkdir(parents=True, exist_ok=True)
        # Ranks started together (torchrun, SLURM) take turns: the first fetches, the others find it done.
        with open(root / ".fetch.lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            for subset in missing:
                fetch_subset(subset, root, config.url, checksums[subset], config.keep_archives)
    return {subset: root / subset for subset in subsets}


# OpenSLR resource 11 (https://www.openslr.org/11/): LibriSpeech's n-gram LMs (ARPA, gzipped)
# and lexicon, fetched by the same resumable, md5-checked download as the corpus.
LM_URL = "https://www.openslr.org/resources/11/"
LM_FILES = (
    "3-gram.arpa.gz",
    "3-gram.pruned.1e-7.arpa.gz",
    "3-gram.pruned.3e-7.arpa.gz",
    "4-gram.arpa.gz",
    "librispeech-lexicon.txt",
    "librispeech-vocab.txt",
)
# TODO(lead): the official md5 values of https://www.openslr.org/resources/11/md5sum.txt, not
# known offline when this was written. Until they are filled in, pass that table as
# ``checksums`` (``read_md5_file``; ``python -m asr.cli.lm --librispeech DIR --md5-file FILE``).
LM_MD5SUMS: dict[str, str] = {}


def fetch_lm_files(
    names: tuple[str, ...] | list[str], root: str | Path, url: str = LM_URL, checksums: Mapping[str, str] | None = None
) -> dict[str, Path]:
    """Make ``root/<name>`` exist for each OpenSLR 11 file ``name``: download (resumable),
    verify its md5 (``checksums``, default :data:`LM_MD5SUMS`) -> {name: path}. A file already
    there is verified, not fetched; a name without a checksum is refused before any download."""
    checksums = LM_MD5SUMS if checksums is None else checksums
    unknown = [n for n in names if n not in checksums]
    if unknown:
        raise DownloadError(f"no md5 for {unknown[0]!r}: pass the md5sum.txt of {url} as the checksum table")
    root = Path(root)
    found = {}
    for name in names:
        path = root / name
        if not path.exists():
            download(f"{url.rstrip('/')}/{name}", path)
        verify(path, checksums[name])  # a file from an earlier run is verified, not fetched
        found[name] = path
    return found

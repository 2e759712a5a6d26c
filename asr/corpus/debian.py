"""Files of a Debian package, unpacked into a folder without installing anything:
``apt-get download PKG`` then ``dpkg-deb -x``. Used for the evaluation prompt lists
(:mod:`asr.corpus.text_sources.prompts`) and the real-speech test set (:mod:`asr.corpus.evalsets`).
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

TIMEOUT_S = 600  # one download or unpack


class PackageError(RuntimeError):
    """A package that could not be had; the message is one line saying why."""


def run_tool(command: list[str], cwd: Path, what: str, timeout: float = TIMEOUT_S) -> str:
    """Run ``command`` in ``cwd`` -> its standard output; :class:`PackageError` naming ``what`` otherwise."""
    if not Path(cwd).is_dir():
        raise PackageError(f"{what}: its working folder {cwd} is gone")
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except FileNotFoundError:
        raise PackageError(f"{command[0]} not found (needed for {what})") from None
    except subprocess.TimeoutExpired:
        raise PackageError(f"{what}: no answer within {timeout:g} s") from None
    if done.returncode != 0:
        lines = [line for line in (done.stderr + done.stdout).splitlines() if line.strip() and "is ignored" not in line]
        raise PackageError(f"{what} failed: {lines[-1].strip() if lines else f'exit {done.returncode}'}")
    return done.stdout


def unpack_deb(package: str, dest: Path) -> str:
    """Download ``package`` and unpack its files under ``dest`` -> its version."""
    dest = Path(dest).resolve()
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        run_tool(["apt-get", "download", "-q", package], Path(tmp), f"apt-get download {package}")
        debs = sorted(Path(tmp).glob("*.deb"))
        if not debs:
            raise PackageError(f"apt-get download {package}: no .deb came back")
        version = run_tool(["dpkg-deb", "-f", str(debs[0]), "Version"], Path(tmp), "dpkg-deb -f").strip()
        run_tool(["dpkg-deb", "-x", str(debs[0]), str(dest)], Path(tmp), f"dpkg-deb -x {debs[0].name}")
    return version

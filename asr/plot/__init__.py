"""Pictures of what the model does and how training went (matplotlib is optional; a clone's
``bash scripts/setup.sh dev`` installs it, or ``.venv/bin/pip install matplotlib``).

May import: :mod:`asr.inference` (its trace), :mod:`asr.decoding`, :mod:`asr.model`. Never :mod:`asr.training`.
"""

import sys
from pathlib import Path


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def install_hint() -> str:
    """The command that installs matplotlib for the running interpreter: ``.venv/bin/pip
    install matplotlib`` in a clone's environment (the path as seen from the working folder)."""
    prefix = Path(sys.prefix)
    if sys.prefix != sys.base_prefix and (prefix / "bin" / "pip").exists():  # a virtual environment
        shown = prefix.relative_to(Path.cwd()) if prefix.is_relative_to(Path.cwd()) else prefix
        return f"{shown / 'bin' / 'pip'} install matplotlib"
    return f"{sys.executable} -m pip install matplotlib"


def pyplot():
    """matplotlib.pyplot with a file-only backend, or a clear error."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable(f"pictures need matplotlib: {install_hint()}") from None
    return plt


def new_figure(figsize: tuple[float, float]):
    """A matplotlib ``Figure`` for file output, or :class:`PlotUnavailable`.

    Not made through pyplot: no GUI backend is touched, so saving a picture in a notebook
    or a GUI session leaves that session's backend as it was.
    """
    try:
        from matplotlib.figure import Figure
    except ImportError:
        pyplot()  # raises PlotUnavailable with the install hint
        raise
    return Figure(figsize=figsize)

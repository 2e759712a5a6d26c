"""Pictures of what the model does and how training went (matplotlib is optional: ``pip install .[plot]``).

May import: :mod:`asr.inference` (its trace), :mod:`asr.decoding`, :mod:`asr.model`. Never :mod:`asr.training`.
"""


class PlotUnavailable(RuntimeError):
    """matplotlib is not installed."""


def pyplot():
    """matplotlib.pyplot with a file-only backend, or a clear error."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise PlotUnavailable("pictures need matplotlib: pip install 'asr[plot]' (or pip install matplotlib)") from None
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

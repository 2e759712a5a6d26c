"""Pictures (matplotlib is optional: ``pip install .[plot]``)."""


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

"""A small speech recognition toolkit: log-mel -> conv subsampling -> transformer -> CTC.

    from asr import load_model
    print(load_model("exp/demo/model.pt").transcribe("a.flac").text)
"""

__version__ = "0.1.0"


def load_model(path, device: str = "cpu", precision: str = "32"):
    """See :func:`asr.inference.load_model` (imported lazily: ``import asr`` stays cheap)."""
    from asr.inference.recognizer import load_model as _load

    return _load(path, device, precision)


def __getattr__(name: str):
    """``asr.DecodingOptions`` / ``asr.TranscribeOptions``, imported on first use."""
    if name in ("DecodingOptions", "TranscribeOptions"):
        from asr.inference import options

        return getattr(options, name)
    raise AttributeError(f"module 'asr' has no attribute {name!r}")


__all__ = ["DecodingOptions", "TranscribeOptions", "load_model", "__version__"]

"""Acoustic model: features -> subsampling -> transformer encoder -> CTC head."""

from asr.model.ctc_model import CTCModel

__all__ = ["CTCModel"]

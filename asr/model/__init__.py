"""The acoustic model as pure ``nn.Module``s: log-mel front end (:mod:`asr.model.features`)
-> convolutional subsampling (4x, 8x, or Whisper's 2x) -> self-attention encoder
(:mod:`asr.model.attention`, optional rotary positions; :mod:`asr.model.conv`, optional
convolution module) -> CTC head (:mod:`asr.model.ctc_model`).

May import: torch, torchaudio, :mod:`asr.config`, the token ids of :mod:`asr.text.tokenizer`
(the blank). No Lightning, no files, no other room.
"""

from asr.model.ctc_model import CTCModel

__all__ = ["CTCModel"]

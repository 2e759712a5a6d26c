"""CTC decoding from log-probabilities only: greedy, prefix beam search, their incremental
(streaming) forms (:mod:`asr.decoding.streaming`) and token-to-word time alignment
(:mod:`asr.decoding.alignment`).

May import: torch, :mod:`asr.text`, constants of :mod:`asr.model.ctc_model` (the blank id).
No Lightning, no files.
"""

from asr.decoding.greedy import greedy_decode

__all__ = ["greedy_decode"]

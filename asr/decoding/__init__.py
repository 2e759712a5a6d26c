"""CTC decoding from log-probabilities: greedy, the beam search with language model, lexicon
and hotwords (:mod:`asr.decoding.ctc_beam`, flashlight-text's decoder), their incremental
(streaming) forms (:mod:`asr.decoding.streaming`) and token-to-word time alignment
(:mod:`asr.decoding.alignment`).

May import: torch, flashlight-text, :mod:`asr.text` (the tokenizer and its token ids: the
blank). No model, no Lightning; the only files read are the LM and lexicon a beam search is
built from (:mod:`asr.decoding.lm`).
"""

from asr.decoding.greedy import greedy_decode

__all__ = ["greedy_decode"]

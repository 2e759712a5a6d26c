"""Text: the one normalization (:mod:`asr.text.normalize`), the sentencepiece tokenizer
(:mod:`asr.text.tokenizer`) and WER scoring (:mod:`asr.text.wer`).

May import: the standard library, sentencepiece, jiwer. Nothing else of ``asr``.
"""

from asr.text.normalize import normalize_text

__all__ = ["normalize_text"]

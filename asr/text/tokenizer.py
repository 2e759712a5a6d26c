"""sentencepiece tokens for CTC, and the token ids every room reads (model, decoders, data):
id :data:`BLANK` (0) is the CTC blank and sentencepiece piece ``i`` is id ``i + 1``, so
sentencepiece's ``<unk>`` (piece 0) is :data:`UNKNOWN` (1).

The trained model is kept as bytes (the sentencepiece proto), so it can travel inside
checkpoints and be rebuilt without any file on disk.
"""

from __future__ import annotations

import io
from typing import Iterable

BLANK = 0  # the CTC blank's id: the head's first output
FIRST_PIECE = 1  # id of sentencepiece piece 0; piece i is id i + FIRST_PIECE
UNKNOWN = FIRST_PIECE  # sentencepiece's <unk> (trained as piece 0): text the pieces cannot spell


class Tokenizer:
    def __init__(self, model_proto: bytes):
        import sentencepiece as spm  # here, not at import: the model reads BLANK without sentencepiece

        self.model_proto = bytes(model_proto)
        self.sp = spm.SentencePieceProcessor(model_proto=self.model_proto)

    @property
    def vocab_size(self) -> int:
        """Output classes of the CTC head, blank included."""
        return self.sp.get_piece_size() + FIRST_PIECE

    def encode(self, text: str) -> list[int]:
        return [i + FIRST_PIECE for i in self.sp.encode(text)]

    def decode(self, ids: Iterable[int]) -> str:
        """CTC ids -> text; no space at either end (sentencepiece puts one around an unknown piece)."""
        return self.sp.decode([int(i) - FIRST_PIECE for i in ids if int(i) != BLANK]).strip()

    def piece(self, token_id: int) -> str:
        """Readable piece for a CTC id (``<b>`` for the blank)."""
        return "<b>" if token_id == BLANK else self.sp.id_to_piece(token_id - FIRST_PIECE)

    @classmethod
    def train(cls, texts: Iterable[str], vocab_size: int, kind: str = "bpe") -> "Tokenizer":
        """Train on normalized transcripts. ``vocab_size`` is an upper bound for tiny corpora."""
        if kind not in ("bpe", "unigram", "char"):
            raise ValueError(f"tokenizer kind must be bpe, unigram or char, not {kind!r}")
        texts = [t for t in texts if t]
        if not texts:
            raise ValueError("cannot train a tokenizer: no non-empty transcripts")
        import sentencepiece as spm

        proto = io.BytesIO()
        spm.SentencePieceTrainer.train(
            sentence_iterator=iter(texts),
            model_writer=proto,
            model_type=kind,
            vocab_size=vocab_size,
            hard_vocab_limit=False,  # tiny corpora get fewer pieces instead of an error
            character_coverage=1.0,
            unk_id=UNKNOWN - FIRST_PIECE,
            bos_id=-1,
            eos_id=-1,
            pad_id=-1,
            num_threads=1,
            minloglevel=2,
        )
        return cls(proto.getvalue())

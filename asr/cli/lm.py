"""Build an n-gram language model for the beam search with KenLM's ``lmplz`` or IRSTLM's ``tlm``.

    python -m asr.cli.lm --out exp/demo/lm/train3 --manifest data/synth/train.jsonl \\
        [--sources chitchat sotu ...] [--exclude data/synth/dev.jsonl exp/demo/test.ref ...] \\
        [--order 3] [--prune 0 1 1] [--units words|pieces --model exp/demo/model.pt] \\
        [--estimator auto|kenlm|irstlm]

    python -m asr.cli.lm --recipe recipes/demo/whisper.yaml --out exp/demo/lm/words3   # what the main job runs

Text: ``--recipe`` (its training transcripts and ``corpus.text_sources``, less every
sentence of its dev and test sets, the unseen-engine and real-speech sets included),
``--text`` files (one sentence a line), ``--manifest`` JSON-lines manifests (their
``text``), ``--sources`` the corpus's text pools (:mod:`asr.corpus.text_sources`). Every
sentence is normalized (:func:`asr.text.normalize_text`) and any sentence of an
``--exclude`` file (manifest, Kaldi ``text``/``.ref`` with ids, or plain) is dropped, so an
LM for evaluation never saw a test sentence. Writes ``OUT.txt`` (the text used), ``OUT.arpa``
(modified Kneser-Ney, n-grams of order k seen at most ``--prune``'s k-th count dropped; the last
count repeats for higher orders) with ``OUT.arpa.words`` (its words: the lexicon), and, where
KenLM's ``build_binary`` is found, ``OUT.bin`` (what the decoder loads fastest) with
``OUT.bin.words``. ``--units pieces`` writes an LM over the model's BPE pieces instead, for
lexicon-free decoding.

Estimators (``--estimator auto``: KenLM where ``lmplz`` is found, else IRSTLM):

- ``kenlm``: ``lmplz --prune ... --discount_fallback``;
- ``irstlm``: ``tlm -lm=ikn`` (IRSTLM's improved Kneser-Ney: three discounts per order) on the
  text with ``<s> ... </s>`` added, ``-pft=p1,...,pN`` for ``--prune`` and ``-ps=no -pts=no`` so
  that nothing else is pruned; shift-beta (``-lm=sb``, one discount) where a tiny text leaves a
  count-of-counts empty.

LibriSpeech's own LMs and lexicon (OpenSLR 11), through the corpus's resumable, md5-checked
downloader, each ARPA also converted to a KenLM binary (``DIR/<name>.bin``):

    python -m asr.cli.lm --librispeech data/lm --md5-file md5sum.txt \
        [--files 3-gram.pruned.1e-7.arpa.gz 4-gram.arpa.gz librispeech-lexicon.txt]

KenLM (LGPL-2.1) is built from the pinned ``kenlm`` source by ``scripts/setup.sh``;
``--kenlm-bin`` points at another ``lmplz`` / ``build_binary``. IRSTLM (LGPL-2.1+) comes
prebuilt from Debian (``apt-get install irstlm``, tools in ``/usr/lib/irstlm/bin``);
``--irstlm-bin`` points at another ``tlm``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path


LIBRISPEECH_DEFAULT = ("3-gram.pruned.1e-7.arpa.gz", "4-gram.arpa.gz", "librispeech-lexicon.txt")
IRSTLM_DIRS = ("/usr/lib/irstlm/bin",)  # Debian's irstlm keeps its tools off PATH
# tlm -lm names: improved Kneser-Ney, then shift-beta for a text too small for three discounts
IRSTLM_SMOOTHING = {"ikn": "improved Kneser-Ney", "sb": "shift-beta"}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, help="output prefix: OUT.txt, OUT.arpa, OUT.bin")
    parser.add_argument("--librispeech", type=Path, help="instead: fetch OpenSLR 11 LMs and lexicon into this folder")
    parser.add_argument("--files", nargs="+", default=list(LIBRISPEECH_DEFAULT), help="OpenSLR 11 files to fetch")
    parser.add_argument("--md5-file", type=Path, help="md5sum.txt of OpenSLR 11 (default: the built-in table)")
    parser.add_argument("--url", help="OpenSLR 11 mirror (default: openslr.org)")
    parser.add_argument(
        "--recipe", type=Path, help="a recipe: its training transcripts and text sources, less its dev and test sets"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a --recipe override")
    parser.add_argument("--text", type=Path, nargs="*", default=[], help="plain text files, one sentence a line")
    parser.add_argument("--manifest", type=Path, nargs="*", default=[], help="JSON-lines manifests (their text)")
    parser.add_argument("--sources", nargs="*", default=[], help="text pools of asr.corpus.text_sources")
    parser.add_argument("--exclude", type=Path, nargs="*", default=[], help="files whose sentences are left out")
    parser.add_argument("--order", type=int, default=3, help="n-gram order (default: 3)")
    parser.add_argument(
        "--prune", type=int, nargs="*", default=[0, 1, 1], help="per-order count thresholds (default: 0 1 1)"
    )
    parser.add_argument("--units", choices=("words", "pieces"), default="words", help="LM units (default: words)")
    parser.add_argument("--model", type=Path, help="model whose tokenizer makes the pieces (--units pieces)")
    parser.add_argument(
        "--estimator", choices=("auto", "kenlm", "irstlm"), default="auto",
        help="n-gram estimator (default: auto, KenLM if lmplz is found, else IRSTLM)",
    )  # fmt: skip
    parser.add_argument("--kenlm-bin", type=Path, help="folder with lmplz and build_binary (default: PATH)")
    parser.add_argument("--irstlm-bin", type=Path, help="folder with IRSTLM's tlm (default: PATH, /usr/lib/irstlm/bin)")
    parser.add_argument("--memory", default="10%", help="lmplz -S memory limit (default: 10%%)")
    return parser.parse_args(argv)


def read_sentences(path: Path) -> list[str]:
    """Sentences of a manifest (``.jsonl``), a Kaldi text (``.ref`` or named ``text``: id first)
    or a plain text file, not yet normalized."""
    lines = path.read_text(encoding="utf-8").splitlines()
    if path.suffix == ".jsonl":
        return [json.loads(line)["text"] for line in lines if line.strip()]
    if path.suffix == ".ref" or path.name == "text":
        from asr.text.kaldi import read_id_lines  # the project's one id-line parser

        return list(read_id_lines(path).values())
    return lines


def training_text(args) -> tuple[list[str], int]:
    """-> normalized sentences (order kept, duplicates kept: they are counts), number excluded."""
    from asr.corpus.text_sources import load_sentences
    from asr.text.normalize import normalize_text

    raw = [s for path in [*args.text, *args.manifest] for s in read_sentences(path)]
    raw += [s for name in args.sources for s in load_sentences(name)]
    banned = {normalize_text(s) for path in args.exclude for s in read_sentences(path)}
    if args.recipe:
        extra, held_out = recipe_text(args.recipe, args.set)
        raw += extra
        banned |= held_out
    sentences = [normalize_text(s) for s in raw]
    kept = [s for s in sentences if s and s not in banned]
    return kept, sum(1 for s in sentences if s in banned)


def recipe_text(path: Path, overrides: list[str] = ()) -> tuple[list[str], set[str]]:
    """A recipe's LM text -> (its training transcripts and every sentence of its
    ``corpus.text_sources``, the normalized sentences of its dev and test sets, the
    unseen-engine and real-speech sets included). The corpus is prepared first if needed."""
    from asr.config import load_recipe
    from asr.corpus.text_sources import load_sentences
    from asr.text.normalize import normalize_text
    from asr.training.prepare import prepare

    recipe = load_recipe(path, overrides)
    data = prepare(recipe)
    raw = [e.text for e in data.train]
    if recipe.corpus.kind == "synth":
        raw += [s for name in recipe.corpus.text_sources for s in load_sentences(name)]
    held_out = {normalize_text(e.text) for entries in [data.dev, *data.test.values()] for e in entries}
    return raw, held_out


def kenlm_tool(name: str, folder: Path | None) -> str:
    found = shutil.which(name, path=str(folder)) if folder else shutil.which(name) or shutil.which(
        name, path=str(Path(sys.executable).parent)
    )
    if not found:
        where = folder or "PATH or the virtual environment"
        raise FileNotFoundError(f"{name} not found in {where}: build KenLM (scripts/setup.sh) or pass --kenlm-bin")
    return found


def irstlm_tool(name: str, folder: Path | None) -> str:
    irstlm = os.environ.get("IRSTLM", "")  # IRSTLM's own scripts find their tools through it
    search = [str(folder)] if folder else [os.environ.get("PATH", ""), irstlm and irstlm + "/bin", *IRSTLM_DIRS]
    found = shutil.which(name, path=os.pathsep.join(d for d in search if d))
    if not found:
        where = folder or "PATH, $IRSTLM/bin or /usr/lib/irstlm/bin"
        raise FileNotFoundError(f"{name} not found in {where}: apt-get install irstlm or pass --irstlm-bin")
    return found


def choose_estimator(name: str, kenlm_bin: Path | None, irstlm_bin: Path | None) -> str:
    """``auto`` -> ``kenlm`` where lmplz is found, else ``irstlm`` where tlm is; others unchanged."""
    if name != "auto":
        return name
    candidates = (("kenlm", "lmplz", kenlm_tool, kenlm_bin), ("irstlm", "tlm", irstlm_tool, irstlm_bin))
    for estimator, tool, find, folder in candidates:
        try:
            find(tool, folder)
            return estimator
        except FileNotFoundError:
            pass
    raise FileNotFoundError(
        "no n-gram estimator: neither KenLM's lmplz (scripts/setup.sh builds it; or --kenlm-bin) "
        "nor IRSTLM's tlm (apt-get install irstlm; or --irstlm-bin)"
    )


def last_line(run: subprocess.CompletedProcess) -> str:
    lines = run.stderr.decode(errors="replace").strip().splitlines()
    return lines[-1].removeprefix("DEBUG_LEVEL:0/1 ") if lines else f"exit status {run.returncode}"  # tlm's prefix


def estimate_kenlm(text: Path, arpa: Path, order: int, prune: list[int], kenlm_bin: Path | None, memory: str) -> str:
    """lmplz: ``text`` -> ``arpa``; -> the smoothing used."""
    command = [kenlm_tool("lmplz", kenlm_bin), "-o", str(order), "-S", memory, "-T", str(arpa.parent)]
    command += ["--discount_fallback", *(["--prune", *map(str, prune)] if prune else [])]
    with text.open("rb") as stdin, arpa.open("wb") as stdout:
        run = subprocess.run(command, stdin=stdin, stdout=stdout, stderr=subprocess.PIPE)
    if run.returncode:
        raise RuntimeError(f"lmplz failed: {last_line(run)}")
    return "modified Kneser-Ney"


def estimate_irstlm(sentences: list[str], arpa: Path, order: int, prune: list[int], irstlm_bin: Path | None) -> str:
    """tlm: ``sentences`` -> ``arpa``; -> the smoothing used. Its scratch files live in a
    temporary folder beside ``arpa``."""
    import tempfile

    tlm = irstlm_tool("tlm", irstlm_bin)
    thresholds = [*prune, *[prune[-1] if prune else 0] * order][:order]  # lmplz's rule: the last count repeats
    # absolute: tlm runs inside the folder, so a relative --out would name a path it cannot find
    with tempfile.TemporaryDirectory(prefix=arpa.name + ".", dir=arpa.parent.resolve()) as tmp:
        marked, written = Path(tmp) / "text", Path(tmp) / "lm.arpa"
        marked.write_text("".join(f"<s> {s} </s>\n" for s in sentences), encoding="utf-8")  # add-start-end.sh
        for smoothing, description in IRSTLM_SMOOTHING.items():
            command = [tlm, f"-tr={marked}", f"-n={order}", f"-lm={smoothing}", "-ps=no", "-pts=no"]
            command += [f"-pft={','.join(map(str, thresholds))}", f"-o={written}"]
            run = subprocess.run(command, cwd=tmp, capture_output=True)
            if not run.returncode:
                os.replace(written, arpa)
                return description
            if b"count-of-counts" not in run.stderr:
                break
    raise RuntimeError(f"tlm failed: {last_line(run)}")


def build(
    sentences: list[str], out: Path, order: int, prune: list[int], estimator: str = "auto",
    kenlm_bin: Path | None = None, irstlm_bin: Path | None = None, memory: str = "10%",
) -> tuple[Path, str]:  # fmt: skip
    """Write OUT.txt, OUT.arpa and OUT.arpa.words, and where build_binary is found OUT.bin and
    OUT.bin.words; -> (the LM to decode with: binary, else ARPA; what was done, in words)."""
    from asr.audio.atomic import atomic_write_text

    estimator = choose_estimator(estimator, kenlm_bin, irstlm_bin)
    out.parent.mkdir(parents=True, exist_ok=True)
    text, arpa, binary = (out.with_name(out.name + suffix) for suffix in (".txt", ".arpa", ".bin"))
    atomic_write_text(text, "".join(s + "\n" for s in sentences))
    if estimator == "kenlm":
        smoothing = estimate_kenlm(text, arpa, order, prune, kenlm_bin, memory)
    else:
        smoothing = estimate_irstlm(sentences, arpa, order, prune, irstlm_bin)
    words = "".join(w + "\n" for w in sorted({w for s in sentences for w in s.split()}))
    atomic_write_text(arpa.with_name(arpa.name + ".words"), words)
    done = f"{estimator}, {smoothing}"
    try:
        build_binary = kenlm_tool("build_binary", kenlm_bin)
    except FileNotFoundError:
        return arpa, done + ", no build_binary: ARPA only"
    run = subprocess.run([build_binary, str(arpa), str(binary)], capture_output=True)
    if run.returncode:
        raise RuntimeError(f"build_binary failed: {last_line(run)}")
    atomic_write_text(binary.with_name(binary.name + ".words"), words)
    return binary, done


def ngram_counts(arpa: Path) -> list[int]:
    """The ``ngram N=count`` lines of an ARPA header."""
    counts = []
    with arpa.open(encoding="utf-8") as lines:
        for line in lines:
            if line.startswith("ngram "):
                counts.append(int(line.split("=")[1]))
            elif line.startswith("\\1-grams"):
                break
    return counts


def fetch_librispeech(args) -> int:
    """Download the OpenSLR 11 files; make a KenLM binary of each ARPA."""
    from asr.corpus.librispeech import LM_URL, DownloadError, fetch_lm_files, read_md5_file

    try:
        checksums = read_md5_file(args.md5_file) if args.md5_file else None
        files = fetch_lm_files(args.files, args.librispeech, args.url or LM_URL, checksums)
        for name, path in files.items():
            if ".arpa" in name:
                binary = path.with_name(name.split(".arpa")[0] + ".bin")
                if not binary.exists():
                    run = subprocess.run([kenlm_tool("build_binary", args.kenlm_bin), str(path), str(binary)],
                                         capture_output=True)  # fmt: skip
                    if run.returncode:
                        raise RuntimeError(f"build_binary {path} failed: {run.stderr.decode(errors='replace')[-200:]}")
                print(f"{binary}")
            print(f"{path}")
    except (DownloadError, OSError, RuntimeError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.librispeech:
        return fetch_librispeech(args)
    if args.out is None:
        print("error: give --out (build an LM) or --librispeech (fetch OpenSLR 11)", file=sys.stderr)
        return 2
    if args.units == "pieces" and not args.model:
        print("error: --units pieces needs --model (its tokenizer makes the pieces)", file=sys.stderr)
        return 2
    try:
        sentences, excluded = training_text(args)
        if not sentences:
            raise ValueError("no training sentences left (give --recipe, --text, --manifest or --sources)")
        if args.units == "pieces":
            from asr.inference.checkpoint import load_parts

            tokenizer = load_parts(args.model)[1]
            sentences = [" ".join(tokenizer.piece(t) for t in tokenizer.encode(s)) for s in sentences]
        lm, done = build(
            sentences, args.out, args.order, args.prune, args.estimator, args.kenlm_bin, args.irstlm_bin, args.memory
        )
    except (OSError, ValueError, KeyError, RuntimeError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    counts = ngram_counts(args.out.with_name(args.out.name + ".arpa"))
    size = lm.stat().st_size / 2**20
    print(f"{len(sentences)} sentences ({excluded} excluded), {done}, n-grams {counts}, {lm} {size:.2f} MiB")
    return 0


if __name__ == "__main__":
    sys.exit(main())

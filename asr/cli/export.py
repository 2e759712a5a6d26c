"""Export a trained model for deployment.

    python -m asr.cli.export --model exp/demo/model.pt --format onnx --out exp/demo/onnx [--precision int8]

Writes an ONNX model directory (read by ``load_model(DIR)`` and ``transcribe.py --model DIR``):
``model.onnx`` (full context: log-mel in, CTC log-probs and lengths out, dynamic batch and
time), ``subsampling.onnx`` and ``chunk.onnx`` (streaming: caches as explicit inputs and
outputs), ``tokenizer.model`` and ``model.json`` (inputs, outputs, features, chunking).
``--precision int8`` also writes ``model.int8.onnx`` and ``chunk.int8.onnx``, quantized by
onnxruntime (dynamic int8 weight matrices). Needs the ``onnx`` extra (requirements-onnx.txt).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

FORMATS = ("onnx",)


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, required=True, help="model.pt or Lightning .ckpt")
    parser.add_argument("--format", choices=FORMATS, default="onnx", help="export format (default: onnx)")
    parser.add_argument("--out", type=Path, required=True, help="directory to write (replaced if it exists)")
    parser.add_argument(
        "--precision", choices=("32", "int8"), default="32", help="int8: also write onnxruntime-quantized graphs"
    )
    return parser.parse_args(argv)


def copy_decoding_defaults(model: Path, out: Path) -> None:
    """The model's ``decoding.json`` (beam width, LM and weights), if it has one, into the
    export, with copies of its LM (and the LM's word list) and lexicon under ``out/lm/``: the
    folder carries its decoding and can be moved anywhere. An ARPA LM is stored gzipped (KenLM
    reads it as it is): the main job's 17.5 MB word 3-gram takes 5.6 MB and loads as fast."""
    import gzip
    import json
    import shutil

    from asr.audio.atomic import atomic_write_text
    from asr.inference.options import DECODING_FILE, decoding_defaults

    defaults = decoding_defaults(model)
    if defaults is None:
        return
    source = json.loads((Path(model).parent / DECODING_FILE).read_text(encoding="utf-8"))
    folder = Path(out) / "lm"
    for key in ("lm", "lexicon"):
        value = getattr(defaults.decoding, key)
        if not value:
            continue
        folder.mkdir(exist_ok=True)
        path = Path(value)
        name = path.name + ".gz" if key == "lm" and path.suffix == ".arpa" else path.name
        with open(path, "rb") as src, (gzip.open if name != path.name else open)(folder / name, "wb") as dst:
            shutil.copyfileobj(src, dst)
        words = Path(value + ".words")
        if words.is_file():
            shutil.copyfile(words, folder / (name + ".words"))
        source[key] = f"lm/{name}"
    atomic_write_text(Path(out) / DECODING_FILE, json.dumps(source, indent=2) + "\n")


def main(argv=None) -> int:
    args = parse_args(argv)
    from asr.inference.checkpoint import CheckpointError, load_parts

    try:
        recipe, tokenizer, model = load_parts(args.model)
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    try:
        from asr.export.onnx import OPSET, export_onnx
    except ImportError as err:
        print(f"error: ONNX export needs the onnx extra ({err}): pip install -r requirements-onnx.txt", file=sys.stderr)
        return 2
    started = time.perf_counter()
    out = export_onnx(recipe, tokenizer, model, args.out, int8=args.precision == "int8")
    copy_decoding_defaults(args.model, out)
    files = ", ".join(sorted(p.name for p in out.iterdir()))
    print(f"{out}: {files} (opset {OPSET}, {time.perf_counter() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

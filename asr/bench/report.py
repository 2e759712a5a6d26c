"""Benchmark figures -> markdown tables (printed and written), JSON, and the RTF plot."""

from __future__ import annotations

import json
from pathlib import Path

PEAK_KEY = {"32": "fp32_gflops", "bf16": "bf16_gflops"}  # int8 products have no measured peak here


def _table(header: list[str], rows: list[list]) -> str:
    cells = [[str(c) for c in header]] + [["—" if c is None else str(c) for c in r] for r in rows]
    return "\n".join(["| " + " | ".join(cells[0]) + " |", "|" + "---|" * len(header)]
                     + ["| " + " | ".join(r) + " |" for r in cells[1:]])


def _share(gflops, machine: dict, precision: str):
    peak = machine.get(PEAK_KEY.get(precision, ""), 0)
    return f"{100 * gflops / peak:.0f}%" if gflops and peak else None


def _mem(row: dict):
    return f"{row['peak_memory_gib']:.2f}" if "peak_memory_gib" in row else None


def tables(results: dict) -> str:
    """All sections' figures -> the markdown of BENCHMARKS.md: a device line, then one table
    per section that ran, in the order of SECTION_TABLES."""
    machine = results.get("machine", {})
    out = []
    if machine:
        out.append(f"Device: {machine.get('device')}; matmul peak (2048², best of 5): "
                   f"fp32 {machine.get('fp32_gflops')} GFLOP/s, bf16 {machine.get('bf16_gflops')} GFLOP/s")
    out += [table(results[section], machine) for section, table in SECTION_TABLES.items() if section in results]
    for section in ("decoding", "peers", "loader"):  # these print their own tables
        if section in results:
            error = f"\n(failed: {results[section]['error']})" if "error" in results[section] else ""
            out.append(f"{section} (python -m asr.bench.{section}):\n\n```\n{results[section]['output'].strip()}\n```{error}")
    return "\n\n".join(out) + "\n"


def transcribe_table(rows: list[dict], machine: dict) -> str:
    peer = next((r for r in rows if r["case"] == "pocketsphinx" and "rtf" in r), None)
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["name"], r.get("precision", "—"), "error: " + r["error"]] + [None] * 5)
            continue
        faster = f"{peer['rtf'] / r['rtf']:.1f}x" if peer else None
        gflops = r.get("model_gflops")
        body.append([r["name"], r.get("precision"), f"{r['rtf']:.4f}", faster, r.get("wer"),
                     gflops, _share(gflops, machine, r.get("precision", "32")), _mem(r)])
    audio = rows[0].get("audio_seconds")
    threads = rows[0].get("threads")
    return (f"End-to-end transcription, {audio} s of audio ({threads} threads; PocketSphinx: 1)\n\n"
            + _table(["system", "precision", "RTF", "speed vs PocketSphinx", "WER %", "model GFLOP/s",
                      "of peak", "peak memory GiB"], body))


def length_table(rows: list[dict], machine: dict) -> str:
    body = [[r["name"], r["length_seconds"], r.get("rtf", "error"), _mem(r)] for r in rows]
    header = ["system", "audio s", "RTF", "peak memory GiB"]
    return "Real-time factor against audio length\n\n" + _table(header, body)


def train_table(rows: list[dict], machine: dict) -> str:
    body = []
    for r in rows:
        if "error" in r:
            body.append([r["name"], r.get("precision"), "error: " + r["error"]] + [None] * 7)
            continue
        batch, n = f"{r['batch_audio_seconds']}", r["micro_batches"]
        if n > 1:
            batch += f" ({n} x {r['batch_audio_seconds'] / n:.0f})"
        body.append([r["name"], r["precision"], batch, r["seconds_per_step"], r["audio_seconds_per_second"],
                     r["model_gflops"], _share(r["model_gflops"], machine, r["precision"]),
                     f"{100 * r['front_end_share']:.1f}%", _mem(r)])
    return "Training throughput (synthetic 12.3 s utterances)\n\n" + _table(
        ["model", "precision", "batch, audio s", "s/step", "audio s/s", "model GFLOP/s", "of peak",
         "front end", "peak memory GiB"], body)


def padding_table(rows: list[dict], machine: dict) -> str:
    body = [[r["name"], r["utterances"], r["max_batch_seconds"], r["buckets"],
             f"{100 * r['bucketed_padding']:.1f}% ({r['bucketed_batches']} batches)",
             f"{100 * r['random_padding']:.1f}% ({r['random_batches']} batches)"] for r in rows]
    header = ["corpus", "utterances", "batch s", "buckets", "bucketed", "random"]
    return "Padded frames\n\n" + _table(header, body)


def layers_table(rows: list[dict], machine: dict) -> str:
    body = []
    for r in rows:
        ref = next((x for x in rows if x.get("kind") == "torch" and x["name"] == r["name"]
                    and x["precision"] == r["precision"] and "ms_fwd_bwd" in x), None)
        if "error" in r:
            body.append([r["name"], r["kind"], r["precision"], "error: " + r["error"], None, None, None, None])
            continue
        ratio = f"{r['ms_fwd_bwd'] / ref['ms_fwd_bwd']:.2f}" if ref else None
        # time per parameter against torch's: a layer with more parameters (macaron, a conv module) may take longer
        per_param = (f"{r['ms_fwd_bwd'] / r['parameters_m'] / (ref['ms_fwd_bwd'] / ref['parameters_m']):.2f}"
                     if ref and r["parameters_m"] and ref["parameters_m"] else None)  # fmt: skip
        body.append([r["name"], r["kind"], r["precision"], r["parameters_m"], r["ms_fwd_bwd"], ratio, per_param,
                     f"{r['peak_memory_gib']:.3f}"])
    return "One encoder layer, forward + backward (training mode)\n\n" + _table(
        ["size", "layer", "precision", "params M", "ms", "time / torch layer", "per parameter", "peak memory GiB"],
        body)


# section -> (its rows, the machine figures) -> its table, in the order of the report
SECTION_TABLES = {
    "transcribe": transcribe_table,
    "length": length_table,
    "train": train_table,
    "padding": padding_table,
    "layers": layers_table,
}


def plot_rtf(rows: list[dict], path: Path) -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, ax = plt.subplots(figsize=(6, 4))
    for name in dict.fromkeys(r["name"] for r in rows):
        points = sorted((r["length_seconds"], r["rtf"]) for r in rows if r["name"] == name and "rtf" in r)
        ax.plot(*zip(*points), marker="o", label=name)
    ax.set(xscale="log", yscale="log", xlabel="audio length (s)", ylabel="real-time factor (lower is faster)",
           title="Transcription speed against audio length")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_report(results: dict, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    text = tables(results)
    print(text)
    (out / "bench.md").write_text(text)
    (out / "bench.json").write_text(json.dumps(results, indent=2) + "\n")
    if results.get("length"):
        plot_rtf(results["length"], out / "rtf_vs_length.png")

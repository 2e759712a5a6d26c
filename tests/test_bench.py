"""The benchmark's arithmetic and the speed work it led to: FLOP counts, fast dropout,
the CPU training attention path, padding figures, and the benchmark command itself."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from asr.bench import layers, padding, report, train, transcribe
from asr.bench import cli as bench_cli
from asr.bench.cli import main as bench_main
from asr.bench.report import tables
from asr.bench.flops import TRAINING_FACTOR, feature_frames, forward_flops
from asr.config import ModelConfig, RecipeConfig
from asr.data.manifest import read_manifest
from asr.model import CTCModel
from asr.model.dropout import Dropout, dropout
from asr.model.encoder import TransformerEncoder
from asr.training.prepare import split_manifest
from models import explicit_attention, tiny_untrained_model

TINY = ModelConfig(d_model=32, n_heads=2, n_layers=2, ff_dim=64, subsampling_channels=8, dropout=0.0)


@pytest.mark.parametrize("conv_kernel", [0, 5])
def test_flop_count_matches_torch_flop_counter(conv_kernel):
    recipe = RecipeConfig(model=ModelConfig(**{**TINY.__dict__, "conv_kernel": conv_kernel}))
    # training mode on a CPU: attention as explicit products, which the counter sees (it
    # does not count SDPA's fused CPU kernel), taken when attention has dropout
    model = explicit_attention(CTCModel(recipe.model, recipe.features, recipe.specaug, 41).train())
    feats, lengths = torch.randn(3, 157, 80), torch.tensor([157, 120, 90])
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        x, lens = model.subsampling(feats, lengths)
        model.head(model.encoder(x, lens))
    counted = forward_flops(recipe.model, recipe.features, 41, 3, 157)
    assert counted["total"] == counter.get_total_flops()
    assert (counted["conv_module"] > 0) == (conv_kernel > 0)


def test_feature_frames_match_the_front_end():
    recipe = RecipeConfig()
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, 5)
    for samples in (400, 401, 16000, 12345):
        _, n = model.features(torch.zeros(1, samples), torch.tensor([samples]))
        assert feature_frames(samples, recipe.features) == int(n[0])


def test_fast_dropout_keeps_the_right_fraction_and_scales():
    torch.manual_seed(0)
    x = torch.ones(1_000_003, requires_grad=True)
    y = dropout(x, 0.1, True)
    kept = y != 0
    assert abs(kept.float().mean().item() - 0.9) < 0.002
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.9))
    y.sum().backward()  # gradient: the same mask and scale
    assert torch.equal(x.grad, kept.float() / 0.9)
    assert dropout(x, 0.1, False) is x and dropout(x, 0.0, True) is x
    layer = Dropout(0.3).eval()
    assert layer(x) is x
    with pytest.raises(ValueError, match="1.5"):
        Dropout(1.5)


def test_fast_dropout_masks_differ_between_calls_and_repeat_with_the_seed():
    x = torch.ones(4096)
    torch.manual_seed(1)
    a, b = dropout(x, 0.5, True), dropout(x, 0.5, True)
    torch.manual_seed(1)
    assert not torch.equal(a, b) and torch.equal(a, dropout(x, 0.5, True))


@pytest.mark.parametrize("chunk,left", [(0, -1), (4, 0), (4, 2)])
def test_cpu_training_attention_equals_the_fused_kernel(chunk, left):
    """Training on a CPU computes attention explicitly (cheap dropout); with dropout off it must
    give what SDPA gives in inference, and padded queries with no visible key stay finite."""
    torch.manual_seed(0)
    encoder = TransformerEncoder(TINY)
    x, lengths = torch.randn(3, 40, 32), torch.tensor([40, 23, 9])
    train_out = encoder.train()(x, lengths, chunk_frames=chunk, left_chunks=left)
    with torch.no_grad():
        eval_out = encoder.eval()(x, lengths, chunk_frames=chunk, left_chunks=left)
    assert torch.isfinite(train_out).all()
    for b, n in enumerate(lengths.tolist()):
        torch.testing.assert_close(train_out[b, :n], eval_out[b, :n], atol=1e-5, rtol=1e-5)
    train_out[0].sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in encoder.parameters() if p.grad is not None)


def test_padded_fraction_arithmetic():
    durations = [1.0, 2.0, 3.0, 4.0]
    assert padding.padded_fraction([[0, 1], [2, 3]], durations) == pytest.approx(1 - 10 / 12)
    assert padding.padded_fraction([[0], [1], [2], [3]], durations) == 0.0


def test_bucketing_pads_far_less_than_random_batches():
    rng = random.Random(0)
    durations = [min(20.0, max(1.0, rng.gauss(12.3, 4.0))) for _ in range(3000)]  # LibriSpeech-like
    figures = padding.padding_figures(durations, 200.0, 30)
    assert figures["bucketed_padding"] < 0.05 < 0.2 < figures["random_padding"]
    # both pack every utterance once
    assert figures["bucketed_batches"] < figures["random_batches"]


@pytest.mark.parametrize("kind", layers.KINDS)
def test_layer_speed_runs_each_kind(kind, one_thread):
    figures = layers.layer_speed(kind, TINY, torch.device("cpu"), batch=2, frames=20, precision="32", repeats=1)
    assert figures["kind"] == kind and figures["precision"] == "32" and figures["batch"] == [2, 20, 32]
    assert 0 < figures["ms_fwd_bwd"] < 1000  # a (2, 20, 32) layer: about a millisecond on one thread
    assert 0 < figures["parameters_m"] < 1
    if kind != "conformer":  # ours and torch's: the same parameter count
        assert figures["parameters_m"] == layers.layer_speed("torch", TINY, torch.device("cpu"), 2, 20, "32", 1)[
            "parameters_m"
        ]


def test_train_throughput_counts_micro_batches(one_thread):
    recipe = RecipeConfig(model=TINY)
    figures = train.train_throughput(
        recipe, 41, torch.device("cpu"), "32", batch_seconds=4.0, micro_seconds=2.0, utt_seconds=1.0, warmup=0, steps=1
    )
    assert figures["micro_batches"] == 2 and figures["utterances_per_micro_batch"] == 2
    forward = forward_flops(TINY, recipe.features, 41, 2, feature_frames(16000, recipe.features))["total"]
    assert figures["model_gflop_per_step"] == round(TRAINING_FACTOR * 2 * forward / 1e9, 1)
    assert figures["audio_seconds_per_second"] == pytest.approx(4.0 / figures["seconds_per_step"], rel=0.03)
    assert 0 < figures["seconds_per_step"] < 30 and 0 < figures["cpu_seconds_per_step"] < 60
    assert 0 < figures["front_end_share"] < 1 and figures["peak_memory_gib"] > 0
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, 41)
    assert figures["parameters_m"] == round(sum(p.numel() for p in model.parameters()) / 1e6, 2)
    # its row of the training table: the batch as micro-batches, no peak share without a machine section
    (row,) = table_rows(report.tables({"train": [{**figures, "name": "tiny"}]}), "Training throughput")
    assert row == ["tiny", "32", "4.0 (2 x 2)", str(figures["seconds_per_step"]),
                   str(figures["audio_seconds_per_second"]), str(figures["model_gflops"]), "—",
                   f"{100 * figures['front_end_share']:.1f}%", f"{figures['peak_memory_gib']:.2f}"]  # fmt: skip


def test_transcription_figures_and_tables(tiny_corpus, one_thread):
    from asr.inference.recognizer import Recognizer

    entries = split_manifest(Path(tiny_corpus.root), "test")
    paths = [Path(e.audio) for e in entries]
    refs = {e.id: e.text for e in entries}
    recognizer = Recognizer(*tiny_untrained_model())
    ours = transcribe.ours(recognizer, paths, refs, warmup=1)
    peer = transcribe.pocketsphinx(paths, refs, warmup=1)
    audio = sum(e.duration for e in entries)
    for figures in (ours, peer):
        assert figures["audio_seconds"] == pytest.approx(audio, abs=0.1)
        assert figures["rtf"] == pytest.approx(figures["seconds"] / audio, rel=0.02)
        assert figures["wer"] > 50  # an untrained model; PocketSphinx on espeak-ng voices
    ours.update(case="transcribe", name="ours", precision="32")
    peer.update(case="pocketsphinx", name="PocketSphinx")
    text = report.tables({"machine": {"fp32_gflops": 100.0, "bf16_gflops": 400.0}, "transcribe": [ours, peer]})
    row, peer_row = table_rows(text, "End-to-end transcription")
    assert row == ["ours", "32", f"{ours['rtf']:.4f}", f"{peer['rtf'] / ours['rtf']:.1f}x", str(ours["wer"]),
                   str(ours["model_gflops"]), f"{ours['model_gflops']:.0f}%",  # of the 100 GFLOP/s fp32 peak
                   f"{ours['peak_memory_gib']:.2f}"]  # fmt: skip
    assert peer_row[:4] == ["PocketSphinx", "—", f"{peer['rtf']:.4f}", "1.0x"] and peer_row[5:7] == ["—", "—"]


def test_bench_command_padding_section(tmp_path, tiny_corpus):
    out = tmp_path / "bench"
    manifest = f"{tiny_corpus.root}/train.jsonl"
    split_manifest(Path(tiny_corpus.root), "train")  # writes it
    assert bench_main(["--sections", "padding", "--manifest", manifest, "--out", str(out)]) == 0
    results = json.loads((out / "bench.json").read_text())
    (figures,) = results["padding"]
    assert figures["utterances"] == len(read_manifest(manifest))
    assert 0.0 <= figures["bucketed_padding"] <= figures["random_padding"] < 1.0
    (row,) = table_rows((out / "bench.md").read_text(), "Padded frames")
    assert row[:2] == ["demo", str(figures["utterances"])]
    assert row[4] == f"{100 * figures['bucketed_padding']:.1f}% ({figures['bucketed_batches']} batches)"


def test_bench_command_names_an_unknown_section(capsys):
    assert bench_main(["--sections", "speed"]) == 2
    assert "unknown section 'speed'" in capsys.readouterr().err


def table_rows(text: str, title: str) -> list[list[str]]:
    """The body rows of the markdown table under ``title`` in a report, as lists of cells."""
    lines = text.split(title, 1)[1].split("\n\n", 2)[1].splitlines()  # [header, |---|, rows...]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]


def test_report_has_a_table_per_section_in_order_with_error_rows():
    machine = {"device": "cpu", "fp32_gflops": 100.0, "bf16_gflops": 400.0}
    layer = {"name": "demo", "precision": "bf16", "parameters_m": 0.5, "peak_memory_gib": 0.1}
    results = {
        "layers": [{**layer, "kind": "ours", "ms_fwd_bwd": 4.5, "parameters_m": 1.0},
                   {**layer, "kind": "torch", "ms_fwd_bwd": 3.0},
                   {**layer, "kind": "conformer", "error": "no torchaudio"}],
        "length": [{"name": "demo", "length_seconds": 60.0, "rtf": 0.002, "peak_memory_gib": 1.5},
                   {"name": "960h", "length_seconds": 60.0, "error": "killed"}],
        "machine": machine,
        "transcribe": [{"case": "transcribe", "name": "demo", "precision": "bf16", "rtf": 0.002, "wer": 24.0,
                        "model_gflops": 40.0, "audio_seconds": 90.0, "threads": 2},
                       {"case": "transcribe", "name": "960h", "precision": "int8", "error": "out of memory"}],
    }  # fmt: skip
    text = tables(results)
    assert text.startswith("Device: cpu; matmul peak (2048², best of 5): fp32 100.0 GFLOP/s, bf16 400.0 GFLOP/s")
    titles = ["End-to-end transcription, 90.0 s of audio (2 threads; PocketSphinx: 1)",
              "Real-time factor against audio length", "One encoder layer"]  # fmt: skip
    assert [text.index(t) for t in titles] == sorted(text.index(t) for t in titles)  # report order, not dict order
    assert "Training throughput" not in text and "Padded frames" not in text  # sections that did not run
    assert table_rows(text, titles[0]) == [
        ["demo", "bf16", "0.0020", "—", "24.0", "40.0", "10%", "—"],  # 40 of bf16's 400 GFLOP/s
        ["960h", "int8", "error: out of memory", "—", "—", "—", "—", "—"],
    ]
    assert table_rows(text, titles[1]) == [["demo", "60.0", "0.002", "1.50"], ["960h", "60.0", "error", "—"]]
    assert table_rows(text, titles[2]) == [
        ["demo", "ours", "bf16", "1.0", "4.5", "1.50", "0.75", "0.100"],  # twice the parameters in 1.5x the time
        ["demo", "torch", "bf16", "0.5", "3.0", "1.00", "1.00", "0.100"],
        ["demo", "conformer", "bf16", "error: no torchaudio", "—", "—", "—", "—"],
    ]


def test_bench_command_runs_the_sections_in_order(tmp_path, monkeypatch):
    """Each case goes to its own process (here: recorded); sections run in the report's order
    whatever order --sections names them, and a CPU runs the 960 h batch as micro-batches."""
    specs = []

    def record(spec):
        specs.append(spec)
        return {**spec, "error": "not run"}  # what run() gives for a case that failed

    monkeypatch.setattr(bench_cli, "run", record)
    argv = ["--sections", "train,machine", "--steps", "3", "--out", str(tmp_path)]
    assert bench_main(argv) == 0
    results = json.loads((tmp_path / "bench.json").read_text())
    assert list(results) == ["command", "machine", "train"]
    assert results["command"] == "python -m asr.bench " + " ".join(argv)
    assert [s["case"] for s in specs] == ["matmul", "train", "train", "train", "train"]
    train_specs = specs[1:]
    assert all(s["steps"] == 3 and s["threads"] == 2 and s["device"] == "cpu" for s in train_specs)
    assert [(s["name"], s["precision"], s.get("batch_seconds"), s.get("micro_seconds")) for s in train_specs] == [
        ("demo", "bf16", None, None), ("960h", "bf16", 100, None), ("960h", "32", 100, None),
        ("960h", "bf16", None, 100),
    ]  # fmt: skip
    assert len(table_rows((tmp_path / "bench.md").read_text(), "Training throughput")) == 4


def test_thread_benchmark_times_a_real_training_step():
    from asr.bench.threads import SETTINGS, seconds_per_step

    assert 0.01 < seconds_per_step(1) < 60
    assert set(SETTINGS) == {"default", "passive", "one thread"}

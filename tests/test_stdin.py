"""transcribe.py reading standard input: WAV or raw PCM piped in, partial results while
audio still arrives, and a clear error that keeps the transcript when the stream breaks."""

from __future__ import annotations

import io
from dataclasses import replace
import os
import select
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from asr.inference.checkpoint import checkpoint_meta
from asr.inference.options import LIVE
from asr.inference.recognizer import load_model
from asr.inference.stream import TranscribeOptions
from models import tiny_untrained_model

ROOT = Path(__file__).parents[1]


pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """A tiny untrained model file; its head is scaled up so its output varies with the
    audio, so equal transcripts mean the same audio reached the model."""
    recipe, tokenizer, model = tiny_untrained_model()
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.save({**checkpoint_meta(recipe, tokenizer), "state_dict": model.state_dict()}, path)
    return path


def noise(seconds: float, rate: int = 16000, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed)
    n = int(seconds * rate)
    envelope = (np.sin(np.arange(n) / rate * 2 * np.pi * 1.3) > -0.3).astype(np.float32)
    return (0.3 * g.standard_normal(n) * envelope).astype(np.float32)


def wav_bytes(samples: np.ndarray, rate: int = 16000) -> bytes:
    out = io.BytesIO()
    sf.write(out, samples, rate, subtype="PCM_16", format="WAV")
    return out.getvalue()


def expected_text(model_path: Path, samples: np.ndarray, rate: int = 16000, chunk_ms: int = 640) -> str:
    """What the model makes of the same audio (16-bit rounded, resampled) given at once."""
    path = model_path.parent / f"expected-{rate}.wav"
    sf.write(path, samples, rate, subtype="PCM_16")
    return load_model(model_path).transcribe(path, replace(LIVE, chunk_ms=chunk_ms)).text  # standard input's segments


def run_main(model_path, stdin: bytes, *args, monkeypatch, capsys) -> tuple[int, str, str]:
    from asr.cli.transcribe import main

    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(stdin)))
    code = main(["--model", str(model_path), *args, "-"])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_partial_results_arrive_while_audio_is_still_coming(model_path):
    """A real pipe into a real process: the first half of the audio must give partial
    results before the second half is even sent."""
    samples = noise(4.0)
    data = wav_bytes(samples)
    half = data.index(b"data") + 8 + 2 * 16000 * 2  # header + 2 s
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, str(ROOT / "transcribe.py"), "--model", str(model_path), "--threads", "1", "-"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip
    proc.stdin.write(data[:half])
    proc.stdin.flush()
    partial, deadline = b"", time.monotonic() + 300  # generous: the process may start slowly on a busy machine
    while b"partial [" not in partial and time.monotonic() < deadline and proc.poll() is None:
        if select.select([proc.stderr], [], [], 1.0)[0]:
            partial += os.read(proc.stderr.fileno(), 4096)
    assert b"partial [0.64s]" in partial, partial  # the first 640 ms chunk, long before the end
    proc.stdin.write(data[half:])
    proc.stdin.close()
    out, err = proc.stdout.read(), proc.stderr.read()  # both small: no deadlock
    assert proc.wait(timeout=300) == 0, err
    lines = out.decode().splitlines()
    assert lines == [f"stdin\t{expected_text(model_path, samples)}"]
    last_partial = (partial + err).decode().strip().splitlines()[-1]
    assert last_partial.startswith("partial [") and len(last_partial) > 20
    # two passes: the final result is the full-context one, not the chunked pass's
    assert lines[0].split("\t")[1] == expected_text(model_path, samples, chunk_ms=0)


def test_raw_pcm_at_another_rate(model_path, monkeypatch, capsys):
    samples = noise(3.0, rate=8000, seed=1)
    raw = (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()
    code, out, err = run_main(model_path, raw, "--raw-rate", "8000", monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert out == f"stdin\t{expected_text(model_path, samples, rate=8000)}\n"


def test_json_partials_and_final_words(model_path, monkeypatch, capsys):
    import json

    samples = noise(2.0, seed=2)
    code, out, _ = run_main(model_path, wav_bytes(samples), "--format", "json", monkeypatch=monkeypatch, capsys=capsys)
    records = [json.loads(line) for line in out.splitlines()]
    assert code == 0
    ends = [r["end"] for r in records[:-1]]
    assert ends[0] == 0.64 and len(ends) >= 2 and ends == sorted(ends) and ends[-1] <= 2.0  # one per whole chunk
    final = records[-1]
    assert "partial" not in final and final["text"] == expected_text(model_path, samples)
    assert " ".join(w["word"] for w in final["words"]) == final["text"]


def test_garbage_after_the_audio_is_an_error_that_keeps_the_transcript(model_path, monkeypatch, capsys):
    samples = noise(2.5, seed=3)
    garbage = bytes(np.random.default_rng(0).integers(0, 256, 5000, dtype=np.uint8))
    code, out, err = run_main(model_path, wav_bytes(samples) + garbage, monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1
    assert out == f"stdin\t{expected_text(model_path, samples)}\n"  # everything before the garbage
    assert err.strip().splitlines()[-1] == "error: -: unexpected bytes after 2.50 s of audio (not a WAV chunk)"


def test_truncated_stream_is_an_error_that_keeps_the_transcript(model_path, monkeypatch, capsys):
    samples = noise(3.0, seed=4)
    data = wav_bytes(samples)
    kept = data.index(b"data") + 8 + 2 * 16000 * 2  # the header announces 3 s; 2 s arrive
    code, out, err = run_main(model_path, data[:kept], monkeypatch=monkeypatch, capsys=capsys)
    assert code == 1
    assert out == f"stdin\t{expected_text(model_path, samples[:32000])}\n"
    assert "error: -: truncated: stream ended after 2.00 s of the 3.00 s announced" in err


def test_garbage_instead_of_audio(model_path, monkeypatch, capsys):
    code, out, err = run_main(
        model_path, b"\x00\x17garbage, not a WAV stream" * 50, monkeypatch=monkeypatch, capsys=capsys
    )
    assert code == 1 and out == ""
    assert err.startswith("error: -: not a WAV stream") and "raw 16-bit PCM" in err


def test_wav_stream_of_unknown_length(model_path, monkeypatch, capsys):
    """Recorders writing to a pipe cannot know the length: the data size is a placeholder."""
    samples = noise(2.0, seed=5)
    data = bytearray(wav_bytes(samples))
    at = data.index(b"data") + 4
    data[at : at + 4] = b"\xff\xff\xff\xff"
    code, out, err = run_main(model_path, bytes(data), monkeypatch=monkeypatch, capsys=capsys)
    assert code == 0, err
    assert out == f"stdin\t{expected_text(model_path, samples)}\n"

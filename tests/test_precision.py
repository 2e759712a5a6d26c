"""Inference precision: bf16 autocast around the model calls only, int8 dynamic
quantization of the Linear layers, and ``transcribe.py --precision``."""

from __future__ import annotations

import difflib
import json
import shutil
import subprocess
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.ao.nn.quantized import dynamic as qdynamic

from asr.inference.checkpoint import checkpoint_meta
from asr.inference.recognizer import Recognizer, load_model
from asr.inference.stream import TranscribeOptions
from asr.audio.sources import file_blocks
from models import tiny_untrained_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: see conftest.one_thread


@pytest.fixture(scope="module")
def parts():
    return tiny_untrained_model()


@pytest.fixture(scope="module")
def model_path(parts, tmp_path_factory) -> Path:
    recipe, tokenizer, model = parts
    path = tmp_path_factory.mktemp("model") / "model.pt"
    torch.save({**checkpoint_meta(recipe, tokenizer), "state_dict": model.state_dict()}, path)
    return path


@pytest.fixture(scope="module")
def speech_file(tmp_path_factory) -> Path:
    """One sentence spoken by espeak-ng (about 4 s)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: run 'bash scripts/setup.sh' (apt-get install espeak-ng)")
    path = tmp_path_factory.mktemp("audio") / "fox.wav"
    text = "The quick brown fox jumps over the lazy dog near the river bank."
    subprocess.run(["espeak-ng", "-v", "en-us", "-w", str(path), text], check=True)
    return path


@pytest.fixture(scope="module")
def wave(speech_file) -> torch.Tensor:
    return torch.cat(list(file_blocks(speech_file, 16000)))


def recognizer(parts, precision: str) -> Recognizer:
    recipe, tokenizer, model = parts
    return Recognizer(recipe, tokenizer, model, precision=precision)


@torch.inference_mode()
def log_probs(recognizer: Recognizer, wave: torch.Tensor) -> torch.Tensor:
    """(N,) -> (T', V) full-context log-probs, through the batch path."""
    return recognizer._log_probs(wave[None], torch.tensor([wave.numel()]), 0, -1)[0][0]


def test_int8_quantizes_every_linear_layer_of_the_encoder_and_head(parts):
    model = parts[2]
    quantized = recognizer(parts, "int8").model
    linears = [name for name, m in model.encoder.named_modules() if isinstance(m, nn.Linear)]
    assert len(linears) >= 8  # qkv, proj and two feed-forward layers in each of 2 layers
    for name in linears:
        assert isinstance(quantized.encoder.get_submodule(name), qdynamic.Linear), name
    assert isinstance(quantized.head, qdynamic.Linear)
    # only the front end stays float: streaming calls it once per block of audio
    float_linears = [name for name, m in quantized.named_modules() if type(m) is nn.Linear]
    assert float_linears and all(name.startswith("subsampling.") for name in float_linears)
    assert type(model.head) is nn.Linear  # the caller's model is not changed


@pytest.mark.parametrize("block", [1000, 4000, 37123])
def test_int8_text_does_not_depend_on_the_audio_blocks(parts, wave, block):
    """Full context: the file streamed in blocks of any size gives what one batch gives."""
    rec = recognizer(parts, "int8")
    expected = rec.transcribe_batch([wave])[0]
    blocks = [wave[i : i + block] for i in range(0, wave.numel(), block)]
    final = [e.segment for e in rec.stream(blocks) if e.final]
    assert len(final) == 1 and final[0].text == expected.text and final[0].words == expected.words


def test_int8_quantization_prints_no_warnings(parts, recwarn):
    recognizer(parts, "int8")
    assert not [str(w.message) for w in recwarn]


@pytest.mark.parametrize("precision, tolerance", [("bf16", 0.1), ("int8", 0.25)])
def test_reduced_precision_stays_close_to_fp32(parts, wave, precision, tolerance):
    reference = log_probs(recognizer(parts, "32"), wave)
    reduced = log_probs(recognizer(parts, precision), wave)
    assert reduced.dtype == torch.float32 and reduced.shape == reference.shape
    assert not torch.equal(reduced, reference)  # it did run at another precision
    assert (reduced.exp() - reference.exp()).abs().max() < tolerance
    assert (reduced.argmax(-1) == reference.argmax(-1)).float().mean() >= 0.9


@pytest.mark.parametrize("options", [TranscribeOptions(chunk_ms=160, left_chunks=2), TranscribeOptions()])
def test_bf16_autocast_covers_the_model_calls_only(parts, wave, options):
    """The encoder and head run under autocast; the caller's code between events, and the
    code that produces the blocks, do not."""
    rec = recognizer(parts, "bf16")
    seen = []  # (autocast enabled, dtype) at each head call
    hook = rec.model.head.register_forward_hook(
        lambda module, args, out: seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
    )

    def blocks():
        for start in range(0, wave.numel(), 4000):
            assert not torch.is_autocast_enabled("cpu")
            yield wave[start : start + 4000]

    try:
        events = []
        for event in rec.stream(blocks(), options):
            assert not torch.is_autocast_enabled("cpu")
            events.append(event)
    finally:
        hook.remove()
    assert events[-1].final and events[-1].segment.text
    assert seen and all(enabled and dtype == torch.bfloat16 for enabled, dtype in seen)
    if options.chunk_ms:
        assert sum(not e.final for e in events) >= 10  # a partial result after every chunk
    assert not torch.is_autocast_enabled("cpu")


def test_invalid_precision_is_refused(parts, model_path):
    with pytest.raises(ValueError, match=r"'fp16'.*32, bf16, int8"):
        recognizer(parts, "fp16")
    with pytest.raises(ValueError, match=r"'16'.*32, bf16, int8"):
        load_model(model_path, precision="16")
    recipe, tokenizer, model = parts
    with pytest.raises(ValueError, match="int8 runs on the CPU only"):
        Recognizer(recipe, tokenizer, model, device="cuda", precision="int8")


def run_main(*args, capsys) -> tuple[int, str, str]:
    from asr.cli.transcribe import main

    code = main([str(a) for a in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_transcribe_cli_int8(model_path, speech_file, capsys):
    args = ("--model", model_path, "--precision", "int8")
    code, out, err = run_main(*args, "--format", "json", speech_file, capsys=capsys)
    assert code == 0, err
    result = json.loads(out)
    expected = load_model(model_path, precision="int8").transcribe(speech_file, trace=False)
    assert result["id"] == "fox" and len(result["text"]) > 10
    assert result["text"] == expected.text
    assert [w["word"] for w in result["words"]] == [w.text for w in expected.words]

    # the flag reaches load_model: int8 off the CPU is one clear error line
    code, out, err = run_main(*args, "--device", "cuda", speech_file, capsys=capsys)
    assert code == 2 and not out
    assert err.strip().splitlines() == ["error: precision int8 runs on the CPU only, not on cuda"]


def test_transcribe_cli_rejects_unknown_precision(model_path, speech_file, capsys):
    with pytest.raises(SystemExit) as exit_info:
        run_main("--model", model_path, "--precision", "fp16", speech_file, capsys=capsys)
    assert exit_info.value.code == 2
    assert "invalid choice: 'fp16'" in capsys.readouterr().err


def test_transcribe_cli_bf16_gives_what_fp32_gives(model_path, speech_file, capsys):
    """transcribe.py --precision bf16 on spoken audio: the text of fp32 (within a few
    characters), confidences that moved a little, so bf16 did run; and --help names the
    choices and where they were measured."""
    results = {}
    for precision in ("32", "bf16"):
        args = ("--model", model_path, "--precision", precision, "--format", "json", speech_file)
        code, out, err = run_main(*args, capsys=capsys)
        assert code == 0, err
        results[precision] = json.loads(out)
    fp32, bf16 = results["32"], results["bf16"]
    assert len(fp32["text"]) > 10
    assert difflib.SequenceMatcher(None, fp32["text"], bf16["text"]).ratio() >= 0.9
    assert bf16["text"] == load_model(model_path, precision="bf16").transcribe(speech_file, trace=False).text
    confidences = [[w["confidence"] for w in r["words"]] for r in (fp32, bf16)]
    assert len(confidences[0]) == len(confidences[1]) and confidences[0] != confidences[1]
    assert all(abs(a - b) < 0.05 for a, b in zip(*confidences))

    with pytest.raises(SystemExit) as exit_info:
        run_main("--help", capsys=capsys)
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--precision {32,bf16,int8}" in out and "BENCHMARKS.md" in " ".join(out.split())


def test_depthwise_convolutions_run_in_fp32_under_cpu_autocast():
    """Training's bf16 autocast leaves the depthwise convolutions in fp32 (asr.model.precision):
    their outputs equal the fp32 convolution's, gradients reach input and weights, and the
    parameter names are nn.Conv1d's/nn.Conv2d's (old checkpoints load)."""
    from asr.model.precision import DepthwiseConv1d, DepthwiseConv2d

    torch.manual_seed(0)
    for conv, plain, shape in (
        (DepthwiseConv1d(8, 8, 5, groups=8), nn.Conv1d(8, 8, 5, groups=8), (2, 8, 30)),
        (DepthwiseConv2d(8, 8, 3, stride=2, groups=8), nn.Conv2d(8, 8, 3, stride=2, groups=8), (2, 8, 20, 12)),
    ):
        plain.load_state_dict(conv.state_dict())  # the same names and shapes
        x = torch.randn(*shape, requires_grad=True)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = conv(x.to(torch.bfloat16))  # a bf16 activation, as autocast's matmuls hand it on
            y_plain = plain(x.to(torch.bfloat16))
        assert y.dtype == torch.float32 and y_plain.dtype == torch.bfloat16
        exact = plain(x.to(torch.bfloat16).float())
        assert torch.allclose(y, exact, atol=1e-5)
        y.sum().backward()
        assert x.grad is not None and conv.weight.grad is not None and torch.isfinite(conv.weight.grad).all()
        assert conv(x).dtype == torch.float32  # no autocast: as nn.Conv

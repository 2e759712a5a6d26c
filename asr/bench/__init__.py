"""Benchmarks: ``python -m asr.bench`` (see :mod:`asr.bench.cli`); figures in BENCHMARKS.md."""

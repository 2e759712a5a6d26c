"""Benchmarks: ``python -m asr.bench`` (see :mod:`asr.bench.cli`); figures in BENCHMARKS.md.

May import every room; the shell wrappers in ``bench/`` only call these modules.
"""

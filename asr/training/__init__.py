"""Training: a run as one call (:func:`asr.training.run.fit`), data preparation for a recipe
(:mod:`asr.training.prepare`), the Lightning module (:mod:`asr.training.module`) around one
training step that needs no Lightning (:mod:`asr.training.step`, which the benchmarks time),
the losses, the frozen front's outputs kept across epochs (:mod:`asr.training.frozen_cache`),
callbacks, exporting and averaging checkpoints.

May import every room but :mod:`asr.cli`; nothing outside :mod:`asr.cli` and
:mod:`asr.bench` imports this room.
"""

"""Training: data preparation for a recipe (:mod:`asr.training.prepare`), the Lightning
module (:mod:`asr.training.module`), the frozen front's outputs kept across epochs
(:mod:`asr.training.frozen_cache`), callbacks, exporting and averaging checkpoints.

May import every room but :mod:`asr.cli`; nothing outside :mod:`asr.cli` and
:mod:`asr.bench` imports this room.
"""

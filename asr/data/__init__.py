"""Data: corpora (synthesized here, LibriSpeech downloaded), manifests, typed batches, the
duration-bucketing sampler and the Lightning DataModule that feeds training.

May import: :mod:`asr.config`, :mod:`asr.text`, :mod:`asr.audio`, and the front end's
length arithmetic from :mod:`asr.model`. Never :mod:`asr.training` or :mod:`asr.inference`.
"""

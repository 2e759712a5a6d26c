"""Data: manifests, typed batches, waveform augmentation, the duration-bucketing sampler and
the Lightning DataModule that feeds training. Where the audio comes from (synthesized,
downloaded, imported) is :mod:`asr.corpus`.

May import: :mod:`asr.config`, :mod:`asr.text`, :mod:`asr.audio`, and the front end's
length arithmetic from :mod:`asr.model`. Never :mod:`asr.corpus`, :mod:`asr.training` or
:mod:`asr.inference`.
"""

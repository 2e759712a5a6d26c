"""Serving: streaming recognition over WebSocket for many clients at once.

:mod:`asr.serving.protocol` (the messages and their checks), :mod:`asr.serving.session`
(one client's stream, computed off the event loop), :mod:`asr.serving.server` (the
WebSocket server and its limits) and :mod:`asr.serving.client` (a client that streams a
waveform and collects the answers with their arrival times).

May import: config, text, audio, model, decoding, inference; ``websockets`` and ``numpy``.
Never training, bench or cli.
"""

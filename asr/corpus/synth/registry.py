"""The engines by name, each imported only when it is made, and :func:`load_engines`: those
that can run here, persona-speaking where asked (:mod:`asr.corpus.synth.personas`)."""

from __future__ import annotations

import importlib
from typing import Callable, Iterable

from asr.corpus.synth.base import Engine
from asr.corpus.synth.personas import PersonaEngine


def _lazy(module: str, cls: str) -> Callable[[], Engine]:
    """A factory that imports the engine's module only when called (no heavy imports here)."""

    def make() -> Engine:
        return getattr(importlib.import_module(f"asr.corpus.synth.{module}"), cls)()

    make.__name__ = f"make_{cls}"
    return make


ENGINES: dict[str, Callable[[], Engine]] = {
    "espeak": _lazy("espeak", "EspeakEngine"),
    "mbrola": _lazy("espeak", "MbrolaEngine"),
    "pico": _lazy("pico", "PicoEngine"),
    "piper": _lazy("piper", "PiperEngine"),
    "hibari": _lazy("hibari", "HibariEngine"),
}


def load_engines(
    names: Iterable[str], registry: dict[str, Callable[[], Engine]] | None = None, personas: Iterable[str] = ()
) -> dict[str, Engine]:
    """The named engines that can run here -> {name: engine}; each other one is named on one
    printed line with the reason. Engines named in ``personas`` also speak every voice as
    each persona (:class:`asr.corpus.synth.personas.PersonaEngine`). An unknown name is an error."""
    registry = ENGINES if registry is None else registry
    names, personas = list(names), set(personas)
    if personas - set(names):
        raise ValueError(f"corpus.personas names {', '.join(sorted(personas - set(names)))}, not in corpus.engines")
    engines = {}
    for name in names:
        if name not in registry:
            raise ValueError(f"unknown synthesis engine {name!r}; known: {', '.join(registry)}")
        engine = registry[name]()
        engine = PersonaEngine(engine) if name in personas else engine
        reason = engine.unavailable()
        if reason is None and not engine.voices():
            reason = "no voices installed"
        if reason is not None:
            print(f"synth: skipping engine {name}: {reason}")
            continue
        engines[name] = engine
    return engines

"""Command-line entry points; each module has ``main(argv=None)`` and only parses
arguments, calls the rooms and writes. May import every room."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Sequence


def recipe_or_report(config: Path, overrides: Sequence[str]):
    """The recipe, or None after one ``error:`` line on stderr naming what is wrong."""
    from asr.config import ConfigError, load_recipe

    try:
        return load_recipe(config, overrides)
    except ConfigError as err:
        print(f"error: {err}", file=sys.stderr)
        return None

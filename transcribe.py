#!/usr/bin/env python3
"""Transcribe audio files. See ``asr/cli/transcribe.py`` or ``python transcribe.py --help``."""

import sys

from asr.cli.transcribe import main

if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Train a recipe. See ``asr/cli/train.py`` or ``python train.py --help``."""

import sys

from asr.cli.train import main

if __name__ == "__main__":
    sys.exit(main())

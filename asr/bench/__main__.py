import sys

from asr.bench.cli import main

sys.exit(main())

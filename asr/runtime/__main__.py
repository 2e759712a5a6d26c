import sys

from asr.runtime.transcribe import main

sys.exit(main())

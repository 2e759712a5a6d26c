from asr.corpus.text_sources.report import main

raise SystemExit(main())

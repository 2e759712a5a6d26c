from asr.data.text_sources.report import main

raise SystemExit(main())

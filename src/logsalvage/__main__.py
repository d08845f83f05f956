from logsalvage.cli import main

raise SystemExit(main())

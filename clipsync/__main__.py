from clipsync.cli import main

raise SystemExit(main())

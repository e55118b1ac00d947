from ippmon.cli import main

raise SystemExit(main())

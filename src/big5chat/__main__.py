from big5chat.cli import main

raise SystemExit(main())

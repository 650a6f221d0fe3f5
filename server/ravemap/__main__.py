"""`python -m ravemap` is the same as the `ravemap` command."""

from ravemap.cli import main

raise SystemExit(main())

"""`python -m server` is the same as the `ravemap` command."""

from server.cli import main

raise SystemExit(main())

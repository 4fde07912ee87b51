"""``python -m paperlab`` runs the command line."""

from paperlab.cli import main

raise SystemExit(main())

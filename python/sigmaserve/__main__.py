"""``python -m sigmaserve``: the command line."""

from sigmaserve.cli import main

raise SystemExit(main())

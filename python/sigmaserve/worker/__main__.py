"""``python -m sigmaserve.worker generate|worker ...``: ``sigmaserve generate|worker``."""

from sigmaserve.worker.cli import main

raise SystemExit(main())

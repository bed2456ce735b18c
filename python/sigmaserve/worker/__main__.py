"""``python -m sigmaserve.worker generate|worker ...`` (the same as ``sigmaserve generate|worker``)."""

from sigmaserve.worker.cli import main

raise SystemExit(main())

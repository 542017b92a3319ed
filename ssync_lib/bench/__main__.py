"""``python -m ssync_lib.bench ...``: see ``cli.py``."""
from ssync_lib.bench.cli import main

raise SystemExit(main())

"""``python -m ssync_lib.lab.bench ...``: see ``cli.py``."""
from ssync_lib.lab.bench.cli import main

raise SystemExit(main())

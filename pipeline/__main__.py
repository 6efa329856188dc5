"""`python -m pipeline`: the operator commands (see pipeline/cli.py)."""

from pipeline.cli import main

raise SystemExit(main())

"""`python -m pipeline`: the operator commands (see pipeline/commands/cli.py)."""

from pipeline.commands.cli import main

raise SystemExit(main())

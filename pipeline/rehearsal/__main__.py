"""`python -m pipeline.rehearsal` (`make demo`): see pipeline/rehearsal/command_line.py."""

from pipeline.rehearsal.command_line import main

raise SystemExit(main())

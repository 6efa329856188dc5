"""`python -m pipeline.rehearsal` (what `make demo` runs): see pipeline/rehearsal/run.py."""

from pipeline.rehearsal.run import main

raise SystemExit(main())

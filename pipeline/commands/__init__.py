"""The operator commands, `python -m pipeline <command>`: what a person runs against a deployed
environment. `cli` is the entry point; each command is one module with `add_parser(subparsers)`
and `run(args)`: definition, start, watch, lineage, metrics, approval (approve and reject),
evaluate, validate_data, promote. Shared by several: `common` (exit statuses, errors, options,
printing),
`aws` (sessions, accounts, environments of ARNs, model packages), `run_plan` and `launch`
(checking and starting a run: start and promote), `replay` (promote's plan), `prices`.

Re-exported here: what the local rehearsal reuses to follow its runs and read their loss curves.
"""

from pipeline.commands.metrics import LossCurve, plot_curves, read_loss_curve
from pipeline.commands.watch import poll

__all__ = ["LossCurve", "plot_curves", "poll", "read_loss_curve"]

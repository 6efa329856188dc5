"""Operator commands: `python -m pipeline <command> ...` (`--help` on any command explains it).

The entry point: builds the parser from the command modules and maps the error that ends a
command to its exit status. Each command is one module with `add_parser(subparsers)`, which
declares its arguments, and `run(args) -> int`, which runs it. Exit statuses: 0 success (for
`validate-data`: the data is valid), 1 the command could not do its work or the run/data failed,
2 what was typed is wrong (a usage error, an unknown environment or parameter, a bad value).
Every error is one line on stderr, never a traceback. `--json` prints one JSON document on
stdout for scripts.

Commands:
- `definition [--env NAME]`: the pipeline definition JSON of an environment, with readable
  placeholders (such as "<TrainingRole.Arn>") where deployment fills in ARNs and names.
- `start`, `watch`, `lineage`, `metrics`, `approve`, `reject`: run and iterate (issue 7).
- `evaluate`: score a checkpoint or the base model without training (issue 14).
- `validate-data`: check a dataset on this machine before a run (issue 8).
- `promote`: replay an approved checkpoint's run in the next environment (issue 5).
- `deploy`, `undeploy`, `invoke`: serve a checkpoint on Amazon Bedrock (issue 15).

Commands that call AWS use the standard credential chain (or `--profile`), the environment's
region from cdk.json, and `AWS_ENDPOINT_URL` when it is set (the local rehearsal endpoint).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, ProfileNotFound

from pipeline.commands import (
    approval,
    definition,
    evaluate,
    lineage,
    metrics,
    promote,
    serving,
    start,
    validate_data,
    watch,
)
from pipeline.commands.common import (
    EPILOG_EXIT,
    EXIT_FAILED,
    EXIT_USAGE,
    InputError,
    OperationError,
    Parser,
    UsageError,
)
from pipeline.config import ConfigError

# In the order `--help` lists them (approval adds approve, then reject).
COMMANDS = (
    definition,
    start,
    watch,
    lineage,
    metrics,
    approval,
    evaluate,
    validate_data,
    promote,
    serving,
)


def build_parser() -> argparse.ArgumentParser:
    """The `python -m pipeline` argument parser with every command."""
    parser = Parser(
        prog="python -m pipeline",
        description="Operate the Nova 2 Lite fine-tuning pipeline. "
        "Run `python -m pipeline COMMAND --help` for a command's options.",
        epilog=EPILOG_EXIT,
    )
    subparsers = parser.add_subparsers(
        title="commands", dest="command", metavar="COMMAND", parser_class=Parser
    )
    for command in COMMANDS:
        command.add_parser(subparsers)
    return parser


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return text or type(error).__name__


def _failure(error: BaseException) -> tuple[int, str]:
    """The exit status and the one-line message for an error that ended a command."""
    if isinstance(error, UsageError | InputError | ProfileNotFound):
        return EXIT_USAGE, f"usage error: {_one_line(error)}"
    if isinstance(error, ConfigError | OperationError):
        return EXIT_FAILED, _one_line(error)
    if isinstance(error, NoCredentialsError):
        return (
            EXIT_FAILED,
            "no AWS credentials found: sign in (e.g. `aws sso login`) or pass --profile",
        )
    if isinstance(error, ClientError | BotoCoreError):
        return EXIT_FAILED, f"AWS error: {_one_line(error)}"
    if isinstance(error, KeyboardInterrupt):
        return EXIT_FAILED, "interrupted"
    return EXIT_FAILED, f"{type(error).__name__}: {_one_line(error)}"


def main(argv: Sequence[str] | None = None) -> int:
    """Run one command; returns its exit status (0 ok, 1 failed, 2 usage)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
        if args.command is None:
            raise UsageError(f"give a command (see `{parser.prog} --help`)")
        status: int = args.run(args)
    except (Exception, KeyboardInterrupt) as error:  # noqa: BLE001 (one line, no traceback)
        status, message = _failure(error)
        sys.stderr.write(f"{parser.prog}: {message}\n")
    return status

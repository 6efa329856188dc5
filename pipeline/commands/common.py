"""What every operator command shares on the command line: exit statuses and the errors that
map to them, the parser and the options several commands take, the environment named by
`--env`, and printing.

Three error types end a command with one line on stderr (`cli.main` maps them):
`UsageError` (the command line is wrong) and `InputError` (a value typed is wrong: an unknown
package, a bad parameter) exit 2; `OperationError` (the environment is not in the state the
command needs, or the run failed) exits 1. Every message names the thing and the fix.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

from pipeline.config import CDK_JSON, ConfigError, EnvironmentConfig, ProjectConfig, read_cdk_json

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2

EPILOG_EXIT = "Exit status: 0 done, 1 failed, 2 usage error (bad argument or value)."


class UsageError(Exception):
    """The command line is wrong; the message says how to fix it (exit 2)."""


class InputError(ValueError):
    """What the user typed is wrong (exit 2); the message says how to fix it."""


class OperationError(RuntimeError):
    """The command cannot do its work in this environment (exit 1); the message says why."""


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line and no usage dump."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"{message} (see `{self.prog} --help`)")


# What each command module's `add_parser` receives (argparse's class is generic only to mypy).
Subparsers: TypeAlias = "argparse._SubParsersAction[Parser]"


def add_env_arguments(parser: argparse.ArgumentParser, *, env_help: str = "") -> None:
    parser.add_argument(
        "--env",
        metavar="NAME",
        help=env_help or "environment in cdk.json (default: its default_environment)",
    )
    add_cdk_json(parser)


def add_cdk_json(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--cdk-json",
        metavar="PATH",
        type=Path,
        default=CDK_JSON,
        help="the project's cdk.json (default: %(default)s)",
    )


def add_aws_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--profile",
        metavar="NAME",
        help="AWS profile with credentials for the environment's account (default: the "
        "standard credential chain)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON document for scripts")


def environment(args: argparse.Namespace) -> tuple[ProjectConfig, EnvironmentConfig]:
    """cdk.json (read once per command) and the chosen environment; a bad cdk.json fails (1),
    an unknown name is a usage error (2)."""
    project = read_cdk_json(args.cdk_json)
    name = args.env or project.default_environment
    return project, named_environment(project, name, "--env")


def named_environment(project: ProjectConfig, name: str, option: str) -> EnvironmentConfig:
    try:
        return project.environment(name)
    except ConfigError as error:
        raise UsageError(f"{option}: {error}") from None


def print_text(text: str) -> None:
    sys.stdout.write(text + "\n")


def emit_json(document: Any) -> None:
    print_text(json.dumps(document, indent=2, sort_keys=True, default=str))


def key_values(pairs: Sequence[str] | None, option: str) -> dict[str, str]:
    values: dict[str, str] = {}
    for pair in pairs or ():
        name, sep, value = pair.partition("=")
        name = name.strip()
        if not sep or not name:
            raise UsageError(f"{option} {pair!r}: write NAME=VALUE, e.g. {option} MaxSteps=200")
        if name in values:
            raise UsageError(f"{option} names {name} twice: give each parameter once")
        values[name] = value.strip()
    return values


def add_command(
    subparsers: Subparsers,
    name: str,
    summary: str,
    description: str,
    epilog: str | None = EPILOG_EXIT,
) -> argparse.ArgumentParser:
    """A command's parser: `summary` in the list of commands, `description` and `epilog` (by
    default the exit statuses) in its own `--help`."""
    parser: argparse.ArgumentParser = subparsers.add_parser(
        name, help=summary, description=description, epilog=epilog
    )
    return parser

"""Starting a planned run, shared by `start` and `promote`: the options both take, the plan
printed for the operator, and StartPipelineExecution (or, with `--dry-run`, only the plan).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from pipeline.commands import common
from pipeline.commands.aws import EXECUTION_ARN
from pipeline.commands.prices import PriceTableError, load_prices
from pipeline.commands.run_plan import RunPlan


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--set",
        metavar="NAME=VALUE",
        action="append",
        help="set a pipeline parameter, e.g. --set MaxSteps=200 --set LearningRate=2e-5 "
        "(repeatable; names as in the pipeline definition)",
    )
    parser.add_argument(
        "--prices",
        metavar="FILE.json",
        type=Path,
        help='price table for the estimate: {"<region>": {"<instance type>": <USD per hour>}} '
        "(default: the approximate table in pipeline/commands/prices.py)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="check and print what would run; start nothing"
    )


def add_options(overrides: dict[str, str], *options: tuple[str, str, str | None]) -> dict[str, str]:
    """`overrides` (from --set) with each option given, as (option, parameter, value): an
    option that sets a parameter --set also names is a usage error."""
    for option, name, value in options:
        if value is not None:
            if name in overrides:
                raise common.UsageError(f"{option} and --set {name}=... both given: give one")
            overrides[name] = value
    return overrides


def price_table(args: argparse.Namespace) -> dict[str, dict[str, float]] | None:
    if args.prices is None:
        return None
    try:
        return load_prices(args.prices)
    except PriceTableError as error:
        raise common.UsageError(f"--prices: {error}") from None


def describe_plan(plan: RunPlan, title: str) -> list[str]:
    lines = [f"{title}: environment {plan.env.name}, pipeline {plan.env.pipeline_name}"]
    source = plan.source
    start_from = plan.parameters.get("ModelNameOrPath", "")
    if source is not None:
        lines.append(
            f"Starts from: {source.checkpoint_uri} (v{source.version}, {source.approval_status}, "
            f"{source.model_package_arn})"
        )
    else:
        lines.append(f"Starts from: {start_from}")
    if plan.continuity is not None:
        lines.append(f"Technique check: {plan.continuity.describe()}")
    lines.append("Parameters (* = set for this run):")
    for name in sorted(plan.parameters):
        mark = "*" if name in plan.overrides else " "
        lines.append(f"  {mark} {name} = {_shown(plan.parameters[name])}")
    lines.append(f"Estimate: {plan.estimate.describe()}")
    return lines


def _shown(value: Any) -> str:
    """A parameter value as the pipeline reads it: JSON booleans, quotes around empty text."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return '""' if value == "" else str(value)


def start_run(sm: Any, plan: RunPlan) -> str:
    """Start the planned execution; returns its ARN."""
    request: dict[str, Any] = {
        "PipelineName": plan.env.pipeline_name,
        "PipelineParameters": [{"Name": k, "Value": v} for k, v in sorted(plan.overrides.items())],
        "ClientRequestToken": plan.client_token,
    }
    if plan.description:
        request["PipelineExecutionDescription"] = plan.description
    try:
        response = sm.start_pipeline_execution(**request)
    except ClientError as error:
        raise common.OperationError(
            f"cannot start pipeline {plan.env.pipeline_name}: {error}"
        ) from error
    return str(response["PipelineExecutionArn"])


def console_url(execution_arn: str) -> str:
    """Where the execution is shown in the SageMaker console (address pattern, unverified)."""
    match = EXECUTION_ARN.fullmatch(execution_arn)
    if match is None:
        return ""
    region, _account, pipeline, execution = match.groups()
    return (
        f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
        f"#/pipelines/{pipeline}/executions/{execution}"
    )


def launch(
    args: argparse.Namespace, sm: Any, plan: RunPlan, document: dict[str, Any], *, title: str
) -> int:
    """Print the plan and start it (or, with --dry-run, only print it); `document` is the
    plan's JSON for --json."""
    if args.dry_run:
        if args.json:
            common.emit_json({**document, "started": False})
        else:
            common.print_text(
                "\n".join([*describe_plan(plan, title), "Dry run: nothing was started."])
            )
        return common.EXIT_OK
    if not args.json:
        common.print_text("\n".join(describe_plan(plan, title)))
    arn = start_run(sm, plan)
    url = console_url(arn)
    if args.json:
        common.emit_json({**document, "started": True, "execution_arn": arn, "console_url": url})
    else:
        common.print_text(
            f"Started: {arn}\nConsole: {url}\nFollow it: python -m pipeline watch {arn}"
        )
    return common.EXIT_OK

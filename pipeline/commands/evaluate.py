"""`python -m pipeline evaluate`: score a registered checkpoint or the base model, no training.

Starts the environment's evaluate-only pipeline (`nova-sft-<env>-evaluate`: ValidateData ->
PrepareEvaluation -> Evaluate -> RecordEvaluation). A package's scores are recorded on it; the
base model's scores become the baseline that a first run from the base model is compared with.
What was typed is checked first, then the overrides against the *deployed* evaluate pipeline's
parameters by the service's own rules (`pipeline.overrides`, as `start` does), before anything
starts; the request carries a client token derived from the pipeline, the parameters and the
UTC day, so a retried command starts nothing twice.
"""

from __future__ import annotations

import argparse
import functools
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from lambdas.recipe.spec import BASE_MODEL
from pipeline.commands import common, run_plan
from pipeline.commands.aws import Sessions, describe_package, resolve_package
from pipeline.commands.launch import add_options, console_url, price_table
from pipeline.commands.prices import DEFAULT_PRICES
from pipeline.config import EnvironmentConfig
from pipeline.evaluate_pipeline import evaluate_pipeline_name
from pipeline.overrides import check as check_overrides

_HELP = "score a checkpoint or the base model (no training)"
_DESCRIPTION = (
    "Start the environment's evaluate-only pipeline on a registered checkpoint (--package) "
    "or on the base model (--base-model). A package's scores are recorded on it (lineage and "
    "approve show them); the base model's scores become the baseline a first run is compared "
    "with. Parameters are checked against the deployed evaluate pipeline first."
)
_EPILOG = (
    "Example: python -m pipeline evaluate --env dev --package 3 --task gen_qa "
    "--data s3://bucket/eval/gen_qa.jsonl. " + common.EPILOG_EXIT
)
# Set by --package / --base-model only: what is evaluated and where its scores are recorded.
_TARGET_PARAMETERS = ("ModelNameOrPath", "ModelPackageArn")
# An evaluation job takes about 20 to 30 minutes on one instance (NOVA_FACTS section 7).
EVALUATION_MINUTES = (20, 30)


def add_parser(subparsers: common.Subparsers) -> None:
    parser = common.add_command(subparsers, "evaluate", _HELP, _DESCRIPTION, epilog=_EPILOG)
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument(
        "--package", metavar="ARN|VERSION", help="a registered checkpoint (version with --env)"
    )
    target.add_argument("--base-model", action="store_true", help=f"the base model {BASE_MODEL}")
    parser.add_argument("--task", metavar="TASK", help="EvaluationTask, e.g. gen_qa or mmlu")
    parser.add_argument(
        "--data", metavar="S3_URI", help="EvaluationDataS3Uri: the gen_qa .jsonl (gen_qa only)"
    )
    parser.add_argument("--instance-type", metavar="TYPE", help="EvaluationInstanceType")
    parser.add_argument(
        "--set", metavar="NAME=VALUE", action="append", help="any other parameter (repeatable)"
    )
    parser.add_argument(
        "--prices", metavar="FILE.json", type=Path, help="price table for the estimate"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="check and print what would run; start nothing"
    )
    parser.add_argument("--client-token", metavar="TOKEN", help="idempotency token (32 to 128)")
    common.add_env_arguments(parser)
    common.add_aws_arguments(parser)
    parser.set_defaults(run=run)


def typed_overrides(args: argparse.Namespace) -> dict[str, str]:
    """The overrides typed on the command line, before any AWS call."""
    overrides = add_options(
        common.key_values(args.set, "--set"),
        ("--task", "EvaluationTask", args.task),
        ("--data", "EvaluationDataS3Uri", args.data),
        ("--instance-type", "EvaluationInstanceType", args.instance_type),
    )
    for name in _TARGET_PARAMETERS:
        if name in overrides:
            raise common.UsageError(
                f"--set {name}=... is not accepted by evaluate: name the model with --package "
                "or --base-model"
            )
    if args.client_token is not None and not 32 <= len(args.client_token) <= 128:
        raise common.UsageError("--client-token must be 32 to 128 characters")
    return overrides


def check_evaluation(effective: dict[str, Any]) -> None:
    """The task/data pairing PrepareEvaluation enforces, checked here so that nothing starts:
    gen_qa needs its data, a benchmark brings its own."""
    task = str(effective.get("EvaluationTask", ""))
    data = str(effective.get("EvaluationDataS3Uri", "none"))
    if task == "none":
        raise common.InputError("EvaluationTask is none: give --task (e.g. gen_qa)")
    if task == "gen_qa" and data == "none":
        raise common.InputError("gen_qa scores your own data: give --data s3://.../gen_qa.jsonl")
    if task != "gen_qa" and data != "none":
        raise common.InputError(
            f"{task} is a benchmark with its own data: drop --data, or use --task gen_qa"
        )


def plan(sm: Any, env: EnvironmentConfig, overrides: dict[str, str]) -> dict[str, Any]:
    """Every effective parameter of the evaluation; InputError lists every problem."""
    name = evaluate_pipeline_name(env)
    try:
        described = sm.describe_pipeline(PipelineName=name)
    except ClientError as error:
        raise common.OperationError(
            f"pipeline {name} does not exist or cannot be read in environment {env.name} "
            f"({error}); deploy the environment's stacks first (cdk deploy)"
        ) from error
    declared = {
        p["Name"]: p for p in json.loads(described["PipelineDefinition"]).get("Parameters", [])
    }
    _, problems = check_overrides(declared, overrides.items())
    if problems:
        raise common.InputError(
            f"{len(problems)} parameter problem(s), nothing was started:\n- "
            + "\n- ".join(problems)
        )
    effective = {n: p["DefaultValue"] for n, p in declared.items() if "DefaultValue" in p}
    effective.update(overrides)
    check_evaluation(effective)
    return effective


def cost_line(env: EnvironmentConfig, instance_type: str, prices: Any) -> str:
    rate = (prices if prices is not None else DEFAULT_PRICES).get(env.region, {}).get(instance_type)
    low, high = EVALUATION_MINUTES
    money = (
        f", about ${rate * low / 60:,.2f} to ${rate * high / 60:,.2f}"
        if rate is not None
        else ", no price known for it"
    )
    return (
        f"Estimate: about {low} to {high} minutes on 1 x {instance_type}{money} "
        "(an estimate from AWS's samples, not a bound)"
    )


def run(args: argparse.Namespace) -> int:
    project, env = common.environment(args)
    overrides = typed_overrides(args)
    prices = price_table(args)
    sessions = Sessions()
    sm = sessions.connect(args.profile, env).client("sagemaker")
    if args.package is not None:
        account = functools.partial(sessions.account, args.profile, env.region)
        ref = resolve_package(project, args.package, env, account)
        record = describe_package(sm, ref)
        overrides.update(ModelNameOrPath=record.checkpoint_uri, ModelPackageArn=ref.arn)
        target = f"v{record.version} {record.checkpoint_uri} ({ref.arn})"
    else:
        overrides.update(ModelNameOrPath=BASE_MODEL, ModelPackageArn="none")
        target = f"the base model {BASE_MODEL} (its scores become the baseline)"
    effective = plan(sm, env, overrides)
    name = evaluate_pipeline_name(env)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    token = args.client_token or run_plan.client_token(name, overrides, day)
    document = {
        "environment": env.name,
        "pipeline": name,
        "evaluates": target,
        "parameters": dict(sorted(effective.items())),
        "overrides": dict(sorted(overrides.items())),
        "client_token": token,
    }
    lines = [f"Evaluation: environment {env.name}, pipeline {name}", f"Evaluates: {target}"]
    lines += [f"  {'*' if k in overrides else ' '} {k} = {v}" for k, v in sorted(effective.items())]
    lines.append(cost_line(env, str(effective.get("EvaluationInstanceType", "")), prices))
    if args.dry_run:
        if args.json:
            common.emit_json({**document, "started": False})
        else:
            common.print_text("\n".join([*lines, "Dry run: nothing was started."]))
        return common.EXIT_OK
    try:
        arn = str(
            sm.start_pipeline_execution(
                PipelineName=name,
                PipelineParameters=[{"Name": k, "Value": v} for k, v in sorted(overrides.items())],
                ClientRequestToken=token,
                PipelineExecutionDescription=f"Started by `python -m pipeline evaluate`: {target}"[
                    :3072
                ],
            )["PipelineExecutionArn"]
        )
    except ClientError as error:
        raise common.OperationError(f"cannot start pipeline {name}: {error}") from error
    if args.json:
        common.emit_json({**document, "started": True, "execution_arn": arn})
    else:
        lines += [f"Started: {arn}", f"Console: {console_url(arn)}"]
        lines.append(f"Follow it: python -m pipeline watch {arn}")
        common.print_text("\n".join(lines))
    return common.EXIT_OK

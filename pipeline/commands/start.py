"""`python -m pipeline start`: start one run of an environment's pipeline, checked first.

Everything that checks what was typed comes before the first AWS call; the run is then checked
against the deployed pipeline and the checkpoint's technique (`run_plan`) and started
(`launch`).
"""

from __future__ import annotations

import argparse

from pipeline.commands import common, run_plan
from pipeline.commands.aws import Sessions
from pipeline.commands.launch import add_options, add_run_arguments, launch, price_table

_HELP = "start a training run (checked locally first)"
_DESCRIPTION = (
    "Start one execution of an environment's pipeline. The parameters are checked "
    "first against the deployed pipeline and with the same code the PrepareRecipe step "
    "runs, so a typo fails here rather than after instances started. Prints what will "
    "run, the prior checkpoint, and an upper-bound estimate of instance-hours and cost. "
    "The request carries a client token derived from the pipeline, the parameters and "
    "the UTC day, so that SageMaker treats a retried command as the same request; pass "
    "--client-token to start an identical run again on the same day."
)
_EPILOG = (
    "Example: python -m pipeline start --env dev --train s3://bucket/data/train.jsonl "
    "--from latest-approved --set MaxSteps=200. " + common.EPILOG_EXIT
)


def add_parser(subparsers: common.Subparsers) -> None:
    parser = common.add_command(subparsers, "start", _HELP, _DESCRIPTION, epilog=_EPILOG)
    common.add_env_arguments(parser)
    common.add_aws_arguments(parser)
    parser.add_argument(
        "--train", metavar="S3_URI", help="training data: s3://bucket/key.jsonl (or a folder/)"
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        help="what to train from: base (the base model), latest (newest checkpoint not rejected), "
        "latest-approved (newest approved checkpoint: the usual way to iterate) or an s3:// "
        "checkpoint URI (default: the pipeline's default, the base model)",
    )
    parser.add_argument("--technique", choices=("LoRA", "FullRank"), help="default: LoRA")
    parser.add_argument(
        "--client-token",
        metavar="TOKEN",
        help="idempotency token (32 to 128 characters); default: derived from the pipeline, "
        "the parameters and the UTC day",
    )
    add_run_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Everything that checks what was typed comes before the first AWS call.
    _, env = common.environment(args)
    overrides = add_options(
        common.key_values(args.set, "--set"),
        ("--train", "TrainDataS3Uri", args.train),
        ("--technique", "Technique", args.technique),
    )
    run_plan.check_typed_overrides(env, overrides)
    prices = price_table(args)
    if args.client_token is not None and not 32 <= len(args.client_token) <= 128:
        raise common.UsageError("--client-token must be 32 to 128 characters")
    if args.source is not None:
        if "ModelNameOrPath" in overrides:
            raise common.UsageError("--from and --set ModelNameOrPath=... both given: give one")
        run_plan.check_source_choice(args.source)
    if "SourceModelPackageArn" in overrides:
        raise common.UsageError(
            "--set SourceModelPackageArn=... is not accepted by start: it records what a replay "
            "replays, and only promote sets it"
        )
    sm = Sessions().connect(args.profile, env).client("sagemaker")
    source = None
    if args.source is not None:
        overrides["ModelNameOrPath"], source = run_plan.resolve_source(sm, env, args.source)
    plan = run_plan.plan_run(
        sm,
        env,
        overrides=overrides,
        source=source,
        prices=prices,
        description="Started by `python -m pipeline start` from "
        + overrides.get("ModelNameOrPath", "the pipeline's default model"),
        token=args.client_token,
    )
    return launch(args, sm, plan, plan.to_dict(), title="Run")

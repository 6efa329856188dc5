"""`python -m pipeline promote`: replay an approved checkpoint's run in the next environment.

The command checks what was typed, resolves the package in its own account and the target in
its own (`--source-profile`, `--profile`), and starts the replay that `replay.plan_replay`
plans (the module docstring there says what is replayed and how provenance is recorded).
"""

from __future__ import annotations

import argparse
import functools

from pipeline.commands import common
from pipeline.commands.aws import Sessions, resolve_package
from pipeline.commands.launch import add_options, add_run_arguments, launch, price_table
from pipeline.commands.replay import plan_replay
from pipeline.commands.run_plan import check_source_choice, check_typed_overrides
from pipeline.config import EnvironmentConfig, read_cdk_json

_HELP = "replay an approved checkpoint's run in the next environment"
_DESCRIPTION = (
    "Promote an approved checkpoint to another environment. A checkpoint never leaves "
    "the account that trained it, so this starts a new run in the target environment's "
    "pipeline with the recorded inputs of the approved run (technique, hyperparameters, "
    "instance count, data URIs; parameters the registry does not record take the "
    "target's defaults and are listed), and records the source package ARN in the "
    "execution's description as provenance. If the approved run continued from an "
    "earlier checkpoint, the replay continues from the target's replay of that "
    "checkpoint, so promote a chain oldest first. The target's role must be able to "
    "read the recorded data URIs, or pass --train with the target's copy; recorded "
    "validation data must be given as --validation (the target's copy, or none). The "
    "replay's technique is checked against its starting checkpoint's."
)
_EPILOG = (
    "Example: python -m pipeline promote <dev package ARN> --to staging "
    "--source-profile dev --profile staging. " + common.EPILOG_EXIT
)


def add_parser(subparsers: common.Subparsers) -> None:
    parser = common.add_command(subparsers, "promote", _HELP, _DESCRIPTION, epilog=_EPILOG)
    parser.add_argument(
        "package", metavar="PACKAGE", help="approved model package ARN (or version with --env)"
    )
    parser.add_argument("--to", required=True, metavar="ENV", help="target environment")
    common.add_env_arguments(parser, env_help="source environment of a version number")
    common.add_aws_arguments(parser)
    parser.add_argument(
        "--source-profile",
        metavar="NAME",
        help="AWS profile for the source environment's account (default: --profile's)",
    )
    parser.add_argument("--train", metavar="S3_URI", help="training data to use instead")
    parser.add_argument(
        "--validation",
        metavar="S3_URI",
        help="validation data to use instead: the target's copy, or none to replay without "
        "validation data (required when the source run had validation data)",
    )
    parser.add_argument(
        "--from",
        dest="source",
        metavar="SOURCE",
        help="start from this instead of the mapped parent: base, latest, latest-approved or "
        "an s3:// checkpoint of the target environment",
    )
    parser.add_argument(
        "--again", action="store_true", help="start another replay even if one already ran"
    )
    add_run_arguments(parser)
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    # Everything that checks what was typed comes before the first AWS call.
    project = read_cdk_json(args.cdk_json)
    target = common.named_environment(project, args.to, "--to")
    source_env = common.named_environment(project, args.env, "--env") if args.env else None
    overrides = common.key_values(args.set, "--set")
    if "ModelNameOrPath" in overrides:
        raise common.UsageError(
            "--set ModelNameOrPath=... is not accepted by promote: the checkpoint comes from "
            "--from (default: the target's replay of the source's parent); use --from instead"
        )
    if "SourceModelPackageArn" in overrides:
        raise common.UsageError(
            "--set SourceModelPackageArn=... is not accepted by promote: it is the package "
            "being promoted"
        )
    add_options(
        overrides,
        ("--train", "TrainDataS3Uri", args.train),
        ("--validation", "ValidationDataS3Uri", args.validation),
    )
    check_typed_overrides(target, overrides)
    if args.source is not None:
        check_source_choice(args.source)
    prices = price_table(args)
    source_profile = args.source_profile or args.profile
    if source_env is not None:
        _refuse_same_environment(source_env, target)
    sessions = Sessions()
    region = (source_env or target).region
    ref = resolve_package(
        project,
        args.package,
        source_env,
        functools.partial(sessions.account, source_profile, region),
    )
    _refuse_same_environment(ref.env, target)
    source_sm = sessions.connect(source_profile, ref.env).client("sagemaker")
    target_sm = sessions.connect(args.profile, target).client("sagemaker")
    plan = plan_replay(
        source_sm,
        target_sm,
        ref,
        target,
        overrides=overrides,
        from_choice=args.source or "",
        again=args.again,
        prices=prices,
    )
    if not args.json:
        common.print_text(
            f"Replaying {plan.source.model_package_arn} ({ref.env.name} -> {target.name})"
        )
        if plan.unrecorded:
            common.print_text(
                "Not recorded by the source package, so the target's defaults apply: "
                + ", ".join(plan.unrecorded)
            )
    return launch(args, target_sm, plan.run, plan.to_dict(), title="Replay")


def _refuse_same_environment(source: EnvironmentConfig, target: EnvironmentConfig) -> None:
    if source.name == target.name:
        raise common.UsageError(
            f"--to {target.name} is the package's own environment: pick another"
        )

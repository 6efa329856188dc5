"""`python -m pipeline approve` and `reject`: set a checkpoint's approval status.

The status goes through `lambdas.registry.set_approval`, which sends the package's metadata
back with it (AWS keeps unnamed fields on UpdateModelPackage; the local endpoint clears them).
"""

from __future__ import annotations

import argparse
import functools
from typing import Any

from botocore.exceptions import ClientError

from lambdas.registry import CheckpointRecord, set_approval
from pipeline.commands import aws, common
from pipeline.config import read_cdk_json


def add_parser(subparsers: common.Subparsers) -> None:
    """`approve`, then `reject`."""
    for status in ("Approved", "Rejected"):
        _add_parser(subparsers, status)


def _add_parser(subparsers: common.Subparsers, status: str) -> None:
    command = "approve" if status == "Approved" else "reject"
    description = (
        f"Set a checkpoint's approval status to {status}, keeping the metadata it records. "
        + (
            "An approved checkpoint is what `start --from latest-approved` continues from "
            "and what `promote` replays in the next environment."
            if status == "Approved"
            else "A rejected checkpoint is never chosen by --from latest-approved or promote."
        )
    )
    parser = common.add_command(subparsers, command, f"mark a checkpoint {status}", description)
    parser.add_argument(
        "package", metavar="PACKAGE", help="model package ARN, or version number with --env"
    )
    parser.add_argument(
        "--reason",
        required=status == "Rejected",
        metavar="TEXT",
        help="why (recorded as the approval description)"
        + ("; required" if status == "Rejected" else ""),
    )
    common.add_env_arguments(parser, env_help="environment of a version number")
    common.add_aws_arguments(parser)
    parser.set_defaults(run=run, status=status)


def run(args: argparse.Namespace) -> int:
    project = read_cdk_json(args.cdk_json)
    env = common.named_environment(project, args.env, "--env") if args.env else None
    if args.reason is not None and not args.reason.strip():
        raise common.UsageError("--reason must not be empty")
    default_env = env or common.named_environment(project, project.default_environment, "--env")
    sessions = aws.Sessions()
    account = functools.partial(sessions.account, args.profile, default_env.region)
    ref = aws.resolve_package(project, args.package, env, account)
    sm = sessions.connect(args.profile, ref.env).client("sagemaker")
    record = change_approval(sm, ref, args.status, (args.reason or "").strip())
    if args.json:
        common.emit_json(aws.record_dict(record))
    else:
        common.print_text(f"{record.model_package_arn}: {record.approval_status}")
    return common.EXIT_OK


def change_approval(sm: Any, ref: aws.PackageRef, status: str, reason: str) -> CheckpointRecord:
    """Approve or reject a checkpoint, keeping its metadata (lambdas.registry.set_approval)."""
    aws.describe_package(sm, ref)
    try:
        return set_approval(sm, ref.arn, status, reason=reason)
    except ClientError as error:
        raise common.OperationError(f"cannot update {ref.arn}: {error}") from error

"""`python -m pipeline approve` and `reject`: set a checkpoint's approval status.

The status goes through `lambdas.registry.set_approval`, which sends the package's metadata
back with it (AWS keeps unnamed fields on UpdateModelPackage; the local endpoint clears them).
Both show the checkpoint's score and its gate's verdict (lambdas.evaluation.scorecard_of).
`approve` refuses a checkpoint that failed its quality gate or has no score, unless
`--override-gate REASON` is given; the reason is recorded in the approval description.
"""

from __future__ import annotations

import argparse
import functools
from typing import Any

from botocore.exceptions import ClientError

from lambdas.evaluation import ScoreCard, scorecard_of
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
            "and what `promote` replays in the next environment. A checkpoint without a "
            "score, or that failed its quality gate, needs --override-gate REASON."
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
    if status == "Approved":
        parser.add_argument(
            "--override-gate",
            metavar="REASON",
            help="approve a checkpoint that failed its quality gate or has no score; the "
            "reason is recorded in the approval description",
        )
    common.add_env_arguments(parser, env_help="environment of a version number")
    common.add_aws_arguments(parser)
    parser.set_defaults(run=run, status=status, override_gate=None)


def run(args: argparse.Namespace) -> int:
    project = read_cdk_json(args.cdk_json)
    env = common.named_environment(project, args.env, "--env") if args.env else None
    if args.reason is not None and not args.reason.strip():
        raise common.UsageError("--reason must not be empty")
    if args.override_gate is not None and not args.override_gate.strip():
        raise common.UsageError('--override-gate needs a reason, e.g. --override-gate "..."')
    default_env = env or common.named_environment(project, project.default_environment, "--env")
    sessions = aws.Sessions()
    account = functools.partial(sessions.account, args.profile, default_env.region)
    ref = aws.resolve_package(project, args.package, env, account)
    sm = sessions.connect(args.profile, ref.env).client("sagemaker")
    reason = (args.reason or "").strip()
    override = (args.override_gate or "").strip()
    record = change_approval(sm, ref, args.status, reason, override_gate=override)
    card = scorecard_of(record.metadata)
    if args.json:
        common.emit_json({**aws.record_dict(record), "gate_overridden": override or None})
    else:
        lines = [f"{record.model_package_arn}: {record.approval_status}"]
        if card is not None or override:
            lines.append(score_line(card))
        if override:
            lines.append(f"Gate overridden: {override}")
        common.print_text("\n".join(lines))
    return common.EXIT_OK


def score_line(card: ScoreCard | None) -> str:
    """The score and the gate's verdict, as approve and reject print them."""
    if card is None:
        return "Score: none (never evaluated)"
    return f"Score: {card.describe()}; gate: {card.verdict or 'none'}"


def gate_refusal(record: CheckpointRecord) -> str:
    """Why approving `record` needs --override-gate ("" when it does not)."""
    card = scorecard_of(record.metadata)
    name = f"v{record.version} ({record.model_package_arn})"
    if card is None or card.score is None:
        return f"{name} has no score: evaluate it first (python -m pipeline evaluate --package ...)"
    if card.verdict.startswith("rejected"):
        return f"{name} failed its quality gate: {card.verdict}"
    return ""


def change_approval(
    sm: Any, ref: aws.PackageRef, status: str, reason: str, *, override_gate: str = ""
) -> CheckpointRecord:
    """Approve or reject a checkpoint, keeping its metadata (lambdas.registry.set_approval).
    Approving a checkpoint without a score or that failed its gate needs `override_gate`."""
    record = aws.describe_package(sm, ref)
    if status == "Approved":
        refusal = gate_refusal(record)
        if refusal and not override_gate:
            raise common.OperationError(
                f"{refusal}; nothing was changed. To approve it anyway, give the reason: "
                '--override-gate "..."'
            )
        if refusal:
            overridden = f"Gate overridden: {override_gate} ({refusal})"
            reason = f"{reason}. {overridden}" if reason else overridden
    try:
        return set_approval(sm, ref.arn, status, reason=reason)
    except ClientError as error:
        raise common.OperationError(f"cannot update {ref.arn}: {error}") from error

"""`python -m pipeline watch`: follow an execution until it ends.

`poll` looks at an execution once: its status, its steps (ListPipelineExecutionSteps) and a
training step's job status (DescribeTrainingJob); the local endpoint does not list steps, and
then only the status is reported. The checkpoint of a succeeded run is found by the
`PipelineExecutionArn` its registry metadata records, which works on both endpoints.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdas.registry import KEY_PIPELINE_EXECUTION, CheckpointRecord, iter_checkpoints
from pipeline.commands import common
from pipeline.commands.aws import Sessions, environment_of_execution, record_dict
from pipeline.config import read_cdk_json

TERMINAL_STATUSES = ("Succeeded", "Failed", "Stopped")


_HELP = "follow an execution until it ends"
_DESCRIPTION = (
    "Follow a pipeline execution: its status, its steps and the training job's status "
    "and secondary status, and the elapsed time, printed whenever they change. Exits 0 "
    "and prints the registered checkpoint when the run succeeds; exits 1 with the "
    "failure reason when it fails or is stopped, or when --timeout passes first."
)


def add_parser(subparsers: common.Subparsers) -> None:
    parser = common.add_command(subparsers, "watch", _HELP, _DESCRIPTION)
    parser.add_argument("execution", metavar="EXECUTION_ARN", help="as printed by `start`")
    common.add_cdk_json(parser)
    common.add_aws_arguments(parser)
    parser.add_argument(
        "--interval", type=_seconds, default=30.0, metavar="SECONDS", help="poll every (30)"
    )
    parser.add_argument(
        "--timeout",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="give up after this long (default 0: wait until the run ends)",
    )
    parser.set_defaults(run=run)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0.0 <= value <= 7 * 24 * 3600:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds from 0 to 604800")
    return value


def _progress_lines(progress: Progress) -> list[str]:
    minutes, seconds = divmod(int(progress.elapsed_seconds), 60)
    lines = [f"[{minutes // 60:02d}:{minutes % 60:02d}:{seconds:02d}] {progress.status}"]
    if progress.steps is None:
        lines.append("  (this endpoint does not list steps: status only)")
    for step in progress.steps or ():
        job = ""
        if step.training_job:
            job = f" job {step.training_job}: {step.job_status} / {step.secondary_status}"
        reason = f" - {step.failure_reason}" if step.failure_reason else ""
        lines.append(f"  {step.name:<24} {step.status}{job}{reason}")
    return lines


def run(args: argparse.Namespace) -> int:
    env = environment_of_execution(read_cdk_json(args.cdk_json), args.execution)
    sm = Sessions().connect(args.profile, env).client("sagemaker")

    def report(progress: Progress) -> None:
        if not args.json:
            common.print_text("\n".join(_progress_lines(progress)))
            sys.stdout.flush()

    progress = watch(
        sm,
        args.execution,
        env.model_package_group_name,
        interval=args.interval,
        timeout=args.timeout,
        sleep=time.sleep,
        report=report,
        clock=time.monotonic,
    )
    if args.json:
        common.emit_json(progress.to_dict())
    if not progress.finished:
        raise common.OperationError(
            f"{args.execution} is still {progress.status} after {args.timeout:g} s: watch it again"
        )
    if progress.status != "Succeeded":
        reason = progress.failure_reason or "no failure reason recorded: see the console"
        raise common.OperationError(f"execution {progress.status}: {reason}")
    if not args.json:
        record = progress.checkpoint
        if record is None:
            common.print_text("Succeeded, but no checkpoint of this execution is in the registry.")
        else:
            loss = f", final loss {record.final_loss:g}" if record.final_loss is not None else ""
            common.print_text(
                f"Registered checkpoint v{record.version} ({record.approval_status}{loss}): "
                f"{record.checkpoint_uri}\n  {record.model_package_arn}"
            )
    return common.EXIT_OK


@dataclass(frozen=True)
class StepState:
    """One step of an execution; the job fields are set for training steps."""

    name: str
    status: str
    failure_reason: str = ""
    training_job: str = ""
    job_status: str = ""
    secondary_status: str = ""

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in self.__dict__.items() if v}


@dataclass(frozen=True)
class Progress:
    """One look at an execution. `steps` is None when the endpoint does not list steps."""

    arn: str
    status: str
    failure_reason: str
    elapsed_seconds: float
    steps: tuple[StepState, ...] | None
    checkpoint: CheckpointRecord | None = None

    @property
    def finished(self) -> bool:
        return self.status in TERMINAL_STATUSES

    def to_dict(self) -> dict[str, Any]:
        return {
            "execution_arn": self.arn,
            "status": self.status,
            "failure_reason": self.failure_reason,
            "elapsed_seconds": round(self.elapsed_seconds, 1),
            "steps": None if self.steps is None else [s.to_dict() for s in self.steps],
            "checkpoint": None if self.checkpoint is None else record_dict(self.checkpoint),
        }


def _steps(sm: Any, arn: str) -> tuple[StepState, ...]:
    states = []
    paginator = sm.get_paginator("list_pipeline_execution_steps")
    for page in paginator.paginate(PipelineExecutionArn=arn, SortOrder="Ascending"):
        for step in page.get("PipelineExecutionSteps", []):
            job_arn = step.get("Metadata", {}).get("TrainingJob", {}).get("Arn", "")
            job = job_arn.rsplit("/", 1)[-1] if job_arn else ""
            job_status = secondary = ""
            if job:
                described = sm.describe_training_job(TrainingJobName=job)
                job_status = str(described.get("TrainingJobStatus", ""))
                secondary = str(described.get("SecondaryStatus", ""))
            states.append(
                StepState(
                    name=str(step.get("StepName", "")),
                    status=str(step.get("StepStatus", "")),
                    failure_reason=str(step.get("FailureReason", "")),
                    training_job=job,
                    job_status=job_status,
                    secondary_status=secondary,
                )
            )
    return tuple(states)


def checkpoint_of_execution(sm: Any, group: str, arn: str) -> CheckpointRecord | None:
    """The checkpoint that the execution registered, found by the metadata it recorded
    (newest first, stopping at the first match)."""
    matches = (
        r for r in iter_checkpoints(sm, group) if r.metadata.get(KEY_PIPELINE_EXECUTION) == arn
    )
    return next(matches, None)


def poll(
    sm: Any,
    arn: str,
    group: str,
    *,
    with_steps: bool = True,
) -> Progress:
    """Look at the execution once (and, when it succeeded, find its checkpoint)."""
    try:
        described = sm.describe_pipeline_execution(PipelineExecutionArn=arn)
    except ClientError as error:
        raise common.OperationError(f"cannot describe execution {arn}: {error}") from error
    status = str(described.get("PipelineExecutionStatus", ""))
    steps: tuple[StepState, ...] | None = None
    if with_steps:
        try:
            steps = _steps(sm, arn)
        except ClientError:
            steps = None  # an endpoint without step listing (the local one): status only
    reason = str(described.get("FailureReason") or "")
    if not reason and steps:
        reason = next((s.failure_reason for s in steps if s.failure_reason), "")
    started = described.get("CreationTime")
    current = datetime.now(UTC)
    elapsed = (current - started).total_seconds() if isinstance(started, datetime) else 0.0
    checkpoint = checkpoint_of_execution(sm, group, arn) if status == "Succeeded" else None
    return Progress(arn, status, reason, max(elapsed, 0.0), steps, checkpoint)


def watch(
    sm: Any,
    arn: str,
    group: str,
    *,
    interval: float,
    timeout: float,
    sleep: Callable[[float], None],
    report: Callable[[Progress], None],
    clock: Callable[[], float],
) -> Progress:
    """Poll every `interval` seconds until the execution ends, or until `timeout` seconds
    (by `clock`) have passed (0 = no limit), reporting every change; returns the last look."""
    deadline = clock() + timeout if timeout else None
    with_steps = True
    last: tuple[Any, ...] | None = None
    while True:
        progress = poll(sm, arn, group, with_steps=with_steps)
        with_steps = progress.steps is not None
        key = (progress.status, progress.steps)
        if key != last:
            report(progress)
            last = key
        if progress.finished or (deadline is not None and clock() >= deadline):
            return progress
        sleep(interval)

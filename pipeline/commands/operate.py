"""What the operator commands do, apart from parsing arguments and printing.

Every function takes its boto3 clients (or a session) as arguments and returns plain data;
`pipeline/commands/cli.py` turns the results into text or JSON. Two error types map to exit
statuses: `InputError` (what the user typed is wrong: exit 2) and `OperationError` (the environment
is not in the state the command needs, or the run failed: exit 1). Both messages name the thing
and the fix.

The pipeline, its parameters and their defaults are read from the *deployed* pipeline
(DescribePipeline), so a command validates against what will run, not against this checkout.
Run parameters are validated with `lambdas.recipe.validate_run`, the code the PrepareRecipe
step runs, so a typo fails before an execution starts.
"""

from __future__ import annotations

import csv
import hashlib
import json
import re
import tarfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, ProfileNotFound

from lambdas.aws_errors import error_code
from lambdas.checkpoint import (
    LOSS_COLUMN,
    MAX_METRICS_BYTES,
    METRICS,
    STEP_COLUMN,
    GunzipStream,
    LossSummary,
    OutputArchiveError,
    summarize_metrics,
)
from lambdas.recipe import (
    RUN_KEYS,
    SAGEMAKER_NAME,
    RecipeValidationError,
    is_s3_uri,
    validate_run,
)
from lambdas.recipe.spec import BASE_MODEL
from lambdas.registry import (
    KEY_PIPELINE_EXECUTION,
    CheckpointRecord,
    describe_checkpoint,
    iter_checkpoints,
    set_approval,
)
from lambdas.registry.continuity import (
    ContinuityCheck,
    RegistryReadError,
    TechniqueMismatchError,
    check_continuity,
)
from pipeline.commands.prices import Estimate, estimate
from pipeline.config import EnvironmentConfig, ProjectConfig
from pipeline.overrides import check as check_overrides

TERMINAL_STATUSES = ("Succeeded", "Failed", "Stopped")
SOURCE_CHOICES = ("base", "latest", "latest-approved")
# Stands in for the RunName the pipeline derives from its execution id, for local validation.
_PREVIEW_RUN_NAME = "preview-run"
_PACKAGE_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):([0-9]{12}):model-package/([A-Za-z0-9-]+)/([0-9]+)"
)
_EXECUTION_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):([0-9]{12}):pipeline/([A-Za-z0-9-]+)/execution/"
    r"([a-z0-9]+)"
)


class InputError(ValueError):
    """What the user typed is wrong (exit 2); the message says how to fix it."""


class OperationError(RuntimeError):
    """The command cannot do its work in this environment (exit 1); the message says why."""


# -- environments, accounts, names ----------------------------------------------------------------


def caller_account(session: Any) -> str:
    """The account of `session`'s credentials (one STS GetCallerIdentity call). A profile that
    does not exist raises ProfileNotFound (what was typed is wrong), any other failure
    OperationError."""
    try:
        return str(session.client("sts").get_caller_identity()["Account"])
    except ProfileNotFound:
        raise
    except (ClientError, BotoCoreError) as error:
        raise OperationError(
            f"cannot identify your AWS credentials ({error}): sign in (e.g. `aws sso login`) "
            "or pass --profile"
        ) from error


def check_account(account: str, env: EnvironmentConfig) -> None:
    """OperationError when `account` (the credentials') is not the environment's account."""
    if env.account is not None and account != env.account:
        raise OperationError(
            f"your credentials are for account {account}, but environment {env.name} is account "
            f"{env.account}: pass --profile with credentials for {env.account}"
        )


def environment_of_group(project: ProjectConfig, group: str) -> EnvironmentConfig:
    """The environment whose model package group is `group`; InputError if none."""
    for env in project.environments.values():
        if env.model_package_group_name == group:
            return env
    known = ", ".join(e.model_package_group_name for e in project.environments.values())
    raise InputError(f"model package group {group} belongs to no environment in cdk.json ({known})")


def environment_of_execution(project: ProjectConfig, arn: str) -> EnvironmentConfig:
    """The environment whose pipeline ran the execution `arn`; InputError if none."""
    match = _EXECUTION_ARN.fullmatch(arn)
    if match is None:
        raise InputError(
            f"{arn!r} is not a pipeline execution ARN "
            "(arn:aws:sagemaker:<region>:<account>:pipeline/<name>/execution/<id>)"
        )
    for env in project.environments.values():
        if env.pipeline_name == match.group(3):
            if env.region != match.group(1):
                raise InputError(
                    f"{arn} is in region {match.group(1)}, but environment {env.name} is in "
                    f"{env.region}"
                )
            return env
    raise InputError(f"pipeline {match.group(3)} belongs to no environment in cdk.json")


@dataclass(frozen=True)
class PackageRef:
    """A model package version named on the command line, with the environment that owns it."""

    env: EnvironmentConfig
    arn: str


def resolve_package(
    project: ProjectConfig, text: str, env: EnvironmentConfig | None, account: Callable[[], str]
) -> PackageRef:
    """A package given as its ARN, or as a version number of `env`'s group.

    `account` gives the caller's account, used only to spell the ARN of a version number.
    """
    match = _PACKAGE_ARN.fullmatch(text)
    if match is not None:
        owner = environment_of_group(project, match.group(3))
        if match.group(1) != owner.region or owner.account not in (None, match.group(2)):
            raise InputError(
                f"{text} is in {match.group(2)}/{match.group(1)}, but environment {owner.name} "
                f"is {owner.account or 'your account'}/{owner.region}"
            )
        if env is not None and env.name != owner.name:
            raise InputError(f"{text} is a package of environment {owner.name}, not {env.name}")
        return PackageRef(owner, text)
    if text.isdigit() and env is not None:
        arn = (
            f"arn:aws:sagemaker:{env.region}:{env.account or account()}:model-package/"
            f"{env.model_package_group_name}/{int(text)}"
        )
        return PackageRef(env, arn)
    if text.isdigit():
        raise InputError(f"version {text}: name the environment with --env, or give the ARN")
    raise InputError(
        f"{text!r} is not a model package: give its ARN "
        "(arn:aws:sagemaker:<region>:<account>:model-package/<group>/<version>) or, with --env, "
        "its version number"
    )


def describe_package(sm: Any, ref: PackageRef) -> CheckpointRecord:
    """The package's record; OperationError when it does not exist or is not a checkpoint."""
    try:
        record = describe_checkpoint(sm, ref.arn)
    except ClientError as error:
        raise OperationError(
            f"cannot describe {ref.arn}: {error}; list the packages with "
            f"`python -m pipeline lineage --env {ref.env.name}`"
        ) from error
    if not record.checkpoint_uri:
        raise OperationError(f"{ref.arn} records no checkpoint: it was not registered by a run")
    return record


# -- start ----------------------------------------------------------------------------------------


def deployed_parameters(sm: Any, env: EnvironmentConfig) -> dict[str, dict[str, Any]]:
    """The deployed pipeline's parameters by name (Type, DefaultValue, EnumValues)."""
    try:
        described = sm.describe_pipeline(PipelineName=env.pipeline_name)
    except ClientError as error:
        if error_code(error) in ("ResourceNotFound", "ValidationException"):
            raise OperationError(
                f"pipeline {env.pipeline_name} does not exist in account/region of environment "
                f"{env.name} ({env.region}): deploy the environment's stacks first (cdk deploy)"
            ) from error
        raise OperationError(f"cannot describe pipeline {env.pipeline_name}: {error}") from error
    definition = json.loads(described["PipelineDefinition"])
    return {p["Name"]: p for p in definition.get("Parameters", [])}


def check_source_choice(choice: str) -> None:
    """InputError unless `choice` is a `--from` value (no AWS call, so it can run first)."""
    if choice in SOURCE_CHOICES:
        return
    if choice.startswith("s3://"):
        if not is_s3_uri(choice, object_key_required=True):
            raise InputError(f"--from {choice!r} is not an s3://bucket/key checkpoint URI")
        return
    raise InputError(
        f"--from {choice!r}: use one of {', '.join(SOURCE_CHOICES)} or an s3:// checkpoint URI"
    )


def resolve_source(
    sm: Any, env: EnvironmentConfig, choice: str
) -> tuple[str, CheckpointRecord | None]:
    """ModelNameOrPath for `--from`: base, latest, latest-approved or an s3:// checkpoint URI."""
    check_source_choice(choice)
    group = env.model_package_group_name
    if choice == "base":
        return BASE_MODEL, None
    if choice in ("latest", "latest-approved"):
        approved = choice == "latest-approved"
        # Newest first, read lazily: stops at the newest approved one, or (latest) the newest
        # one that nobody rejected.
        candidates = iter_checkpoints(sm, group, approved_only=approved)
        try:
            record = next((r for r in candidates if r.approval_status != "Rejected"), None)
        except ClientError as error:
            raise OperationError(f"cannot read model package group {group}: {error}") from error
        if record is None:
            kind = "approved checkpoint" if approved else "checkpoint that is not rejected"
            fix = (
                "approve one with `python -m pipeline approve <package>`"
                if approved
                else "run the pipeline once"
            )
            raise OperationError(
                f"no {kind} in {group} yet: {fix}, or start from the base model with --from base"
            )
        return record.checkpoint_uri, record
    return choice, None


def check_parameters(
    declared: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, str]
) -> dict[str, Any]:
    """Every parameter's effective value; InputError lists every problem at once.

    The overrides must pass the service's own rules (`pipeline.overrides`: declared names,
    non-empty values, EnumValues, literal Integer/Float/Boolean forms, required parameters);
    the run's parameters must pass `validate_run`, and TrainDataS3Uri must be an s3:// object
    or folder.
    """
    typed, problems = check_overrides(
        declared, overrides.items(), hints={"TrainDataS3Uri": "pass --train s3://bucket/key.jsonl"}
    )
    if any(p.startswith("unknown parameter(s)") for p in problems):
        raise InputError(problems[0])
    effective: dict[str, Any] = {
        name: spec["DefaultValue"] for name, spec in declared.items() if "DefaultValue" in spec
    }
    effective.update(overrides)
    # Only overrides that passed the service's rules go on to the recipe's own checks, so one
    # bad value is reported once.
    checked = {k: v for k, v in effective.items() if k not in overrides or k in typed}
    train = str(checked.get("TrainDataS3Uri", ""))
    if train and not is_s3_uri(train, object_key_required=True):
        problems.append(f"TrainDataS3Uri={train!r}: must be an s3://bucket/key URI")
    run = {key: checked[key] for key in RUN_KEYS if key in checked}
    run["RunName"] = _PREVIEW_RUN_NAME
    try:
        validate_run(run)
    except RecipeValidationError as error:
        problems.extend(p for p in error.problems if p not in problems)
    if problems:
        raise InputError(
            f"{len(problems)} parameter problem(s), nothing was started:\n- "
            + "\n- ".join(problems)
        )
    return effective


def client_token(pipeline_name: str, overrides: Mapping[str, str], day: str) -> str:
    """StartPipelineExecution's idempotency token: the same pipeline, parameters and UTC day
    give the same token, so a retried command does not start a second execution."""
    seed = json.dumps([pipeline_name, sorted(overrides.items()), day])
    return hashlib.sha256(seed.encode()).hexdigest()


@dataclass(frozen=True)
class RunPlan:
    """What `start` will run. `overrides` are sent; `parameters` are all effective values."""

    env: EnvironmentConfig
    overrides: dict[str, str]
    parameters: dict[str, Any]
    source: CheckpointRecord | None
    estimate: Estimate
    client_token: str
    description: str
    continuity: ContinuityCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.env.name,
            "pipeline": self.env.pipeline_name,
            "parameters": {k: self.parameters[k] for k in sorted(self.parameters)},
            "overrides": dict(sorted(self.overrides.items())),
            "prior_checkpoint": (
                None
                if self.source is None
                else {
                    "model_package_arn": self.source.model_package_arn,
                    "checkpoint_s3_uri": self.source.checkpoint_uri,
                    "approval_status": self.source.approval_status,
                }
            ),
            "technique_check": None if self.continuity is None else self.continuity.to_dict(),
            "estimate": self.estimate.to_dict(),
            "client_token": self.client_token,
        }


def check_technique(
    sm: Any,
    env: EnvironmentConfig,
    parameters: Mapping[str, Any],
    source: CheckpointRecord | None = None,
) -> ContinuityCheck:
    """The run's Technique against its checkpoint's, as the PrepareRecipe step checks it
    (lambdas.registry.continuity): InputError on a mismatch, OperationError when the registry
    cannot be read. `source` is the checkpoint's record when it is already known (no lookup
    then)."""
    model = str(parameters.get("ModelNameOrPath", ""))
    technique = str(parameters.get("Technique", ""))
    try:
        return check_continuity(sm, env.model_package_group_name, model, technique, known=source)
    except TechniqueMismatchError as error:
        raise InputError(f"{error}; nothing was started") from None
    except RegistryReadError as error:
        raise OperationError(str(error)) from None


def plan_run(
    sm: Any,
    env: EnvironmentConfig,
    *,
    overrides: Mapping[str, str],
    source: CheckpointRecord | None = None,
    prices: dict[str, dict[str, float]] | None = None,
    description: str = "",
    token: str | None = None,
) -> RunPlan:
    """Check the run against the deployed pipeline and its checkpoint's technique, and estimate
    it; starts nothing."""
    declared = deployed_parameters(sm, env)
    effective = check_parameters(declared, overrides)
    continuity = check_technique(sm, env, effective, source)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    return RunPlan(
        env=env,
        overrides=dict(overrides),
        parameters=effective,
        source=source,
        estimate=estimate(
            region=env.region,
            instance_type=str(effective["TrainingInstanceType"]),
            instance_count=int(effective["TrainingInstanceCount"]),
            max_runtime_seconds=int(effective["MaxRuntimeSeconds"]),
            prices=prices,
        ),
        client_token=token or client_token(env.pipeline_name, overrides, day),
        description=description[:3072],
        continuity=continuity,
    )


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
        raise OperationError(f"cannot start pipeline {plan.env.pipeline_name}: {error}") from error
    return str(response["PipelineExecutionArn"])


def console_url(execution_arn: str) -> str:
    """Where the execution is shown in the SageMaker console (address pattern, unverified)."""
    match = _EXECUTION_ARN.fullmatch(execution_arn)
    if match is None:
        return ""
    region, _account, pipeline, execution = match.groups()
    return (
        f"https://{region}.console.aws.amazon.com/sagemaker/home?region={region}"
        f"#/pipelines/{pipeline}/executions/{execution}"
    )


# -- watch ----------------------------------------------------------------------------------------


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
        raise OperationError(f"cannot describe execution {arn}: {error}") from error
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


# -- lineage --------------------------------------------------------------------------------------


def record_dict(record: CheckpointRecord) -> dict[str, Any]:
    """A checkpoint as JSON-ready data."""
    return {
        "model_package_arn": record.model_package_arn,
        "version": record.version,
        "approval_status": record.approval_status,
        "created": record.creation_time.isoformat() if record.creation_time else None,
        "checkpoint_s3_uri": record.checkpoint_uri,
        "parent": record.parent,
        "technique": record.technique,
        "training_job": record.training_job_name,
        "training_steps": record.training_steps,
        "final_training_loss": record.final_loss,
    }


@dataclass
class LineageNode:
    """A checkpoint and the checkpoints trained from it (oldest first)."""

    record: CheckpointRecord
    children: list[LineageNode] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**record_dict(self.record), "children": [c.to_dict() for c in self.children]}


def lineage(records: Sequence[CheckpointRecord], focus: str = "") -> dict[str, list[LineageNode]]:
    """The checkpoints as trees keyed by what their first run started from (the base model,
    or a checkpoint of another group). With `focus` (a package ARN), only its ancestors, itself
    and its descendants are kept."""
    nodes = {r.model_package_arn: LineageNode(r) for r in records}
    by_uri: dict[str, LineageNode] = {}
    for node in sorted(nodes.values(), key=lambda n: n.record.version):
        by_uri.setdefault(node.record.checkpoint_uri, node)
    if focus:
        if focus not in nodes:
            raise OperationError(f"{focus} is not a checkpoint of this environment's group")
        keep = {focus}
        current = nodes[focus].record
        while current.parent in by_uri:
            ancestor = by_uri[current.parent].record
            if ancestor.model_package_arn in keep:
                break  # a cycle in recorded parents; the registry should never hold one
            keep.add(ancestor.model_package_arn)
            current = ancestor
        keep.update(arn for arn, node in nodes.items() if _below(node, focus, by_uri))
        nodes = {arn: node for arn, node in nodes.items() if arn in keep}
    roots: dict[str, list[LineageNode]] = {}
    for node in sorted(nodes.values(), key=lambda n: n.record.version):
        parent = by_uri.get(node.record.parent)
        if parent is not None and parent.record.model_package_arn in nodes and parent is not node:
            parent.children.append(node)
        else:
            roots.setdefault(node.record.parent or "(unknown)", []).append(node)
    return roots


def _below(node: LineageNode, focus: str, by_uri: Mapping[str, LineageNode]) -> bool:
    """True when `focus` is an ancestor of `node`."""
    seen: set[str] = set()
    current = by_uri.get(node.record.parent)
    while current is not None and current.record.model_package_arn not in seen:
        if current.record.model_package_arn == focus:
            return True
        seen.add(current.record.model_package_arn)
        current = by_uri.get(current.record.parent)
    return False


# -- metrics --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LossCurve:
    """A run's training loss by step, read from its step_wise_training_metrics.csv."""

    label: str
    training_job: str
    source: str
    points: tuple[tuple[int, float], ...]
    summary: LossSummary

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": self.label,
            "training_job": self.training_job,
            "source": self.source,
            "steps": self.summary.steps,
            "first_loss": self.summary.first_loss,
            "final_loss": self.summary.final_loss,
            "min_loss": self.summary.min_loss,
            "points": [list(point) for point in self.points],
        }


def output_archive_uri(sm: Any, job: str) -> str:
    """s3://.../<job>/output/output.tar.gz, beside the job's model artifacts."""
    try:
        described = sm.describe_training_job(TrainingJobName=job)
    except ClientError as error:
        raise OperationError(f"cannot describe training job {job}: {error}") from error
    artifacts = str(described.get("ModelArtifacts", {}).get("S3ModelArtifacts", ""))
    if not artifacts.startswith("s3://"):
        status = described.get("TrainingJobStatus", "unknown")
        raise OperationError(f"training job {job} ({status}) has no output to read metrics from")
    return artifacts.rsplit("/", 1)[0] + "/output.tar.gz"


def _metrics_bytes(stream: Any, uri: str) -> bytes:
    gunzip = GunzipStream(stream, source=uri)
    try:
        with tarfile.open(fileobj=gunzip, mode="r|") as archive:  # type: ignore[call-overload]
            for member in archive:
                archive.members.clear()
                if member.name.removeprefix("./") != METRICS:
                    continue
                if not member.isfile() or member.size > MAX_METRICS_BYTES:
                    raise OperationError(
                        f"{METRICS} in {uri} is not a regular file of at most "
                        f"{MAX_METRICS_BYTES} bytes"
                    )
                handle = archive.extractfile(member)
                return b"" if handle is None else bytes(handle.read())
    except tarfile.TarError as error:
        raise OperationError(f"{uri} is not a readable tar archive ({error})") from None
    except OutputArchiveError as error:
        raise OperationError(str(error)) from None
    raise OperationError(f"no {METRICS} in {uri}: the job wrote no training metrics")


def parse_curve(text: str, source: str) -> tuple[tuple[tuple[int, float], ...], LossSummary]:
    """The (step, loss) points, ordered by step, and their summary; OperationError if unusable."""
    lines = text.removeprefix("\ufeff").splitlines()
    summary, problem = summarize_metrics(lines)
    if summary is None:
        raise OperationError(f"{METRICS} in {source}: {problem}")
    rows = csv.reader(lines)
    header = [name.strip() for name in next(rows)]
    step_at, loss_at = header.index(STEP_COLUMN), header.index(LOSS_COLUMN)
    points = sorted(
        (int(float(row[step_at])), float(row[loss_at]))
        for row in rows
        if any(cell.strip() for cell in row)
    )
    return tuple(points), summary


def read_loss_curve(sm: Any, s3: Any, job: str, label: str) -> LossCurve:
    """Stream the job's output.tar.gz and read its loss curve (only that member is read)."""
    uri = output_archive_uri(sm, job)
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        raise OperationError(f"cannot read {uri}: {error_code(error) or error}") from error
    try:
        data = _metrics_bytes(body, uri)
    finally:
        body.close()
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise OperationError(f"{METRICS} in {uri} is not UTF-8 ({error})") from None
    points, summary = parse_curve(text, uri)
    return LossCurve(label, job, uri, points, summary)


def is_job_name(text: str) -> bool:
    return bool(SAGEMAKER_NAME.fullmatch(text)) and not text.isdigit()


def plot_curves(curves: Iterable[LossCurve], path: Path) -> Path:
    """Training loss against step, one line per run, overlaid, as a PNG at `path`."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(8, 4.5))
    try:
        for curve in curves:
            axes.plot([s for s, _ in curve.points], [v for _, v in curve.points], label=curve.label)
        axes.set_xlabel("training step")
        axes.set_ylabel("training loss")
        axes.set_title("Nova 2 Lite SFT training loss")
        axes.grid(alpha=0.3)
        axes.legend()
        figure.tight_layout()
        path.parent.mkdir(parents=True, exist_ok=True)
        figure.savefig(path, dpi=100)
    finally:
        plt.close(figure)
    return path


# -- approval -------------------------------------------------------------------------------------


def change_approval(sm: Any, ref: PackageRef, status: str, reason: str) -> CheckpointRecord:
    """Approve or reject a checkpoint, keeping its metadata (lambdas.registry.set_approval)."""
    describe_package(sm, ref)
    try:
        return set_approval(sm, ref.arn, status, reason=reason)
    except ClientError as error:
        raise OperationError(f"cannot update {ref.arn}: {error}") from error


# -- validate-data --------------------------------------------------------------------------------


def validate_local_file(
    path: Path,
    *,
    global_batch_size: int,
    reasoning_enabled: bool | None,
    max_findings: int,
    strict: bool = False,
) -> Any:
    """Validate a local JSONL file with the pipeline's own validator; returns its Report.

    `strict` records every warning as an error."""
    from lambdas.dataset.validator import CHUNK_BYTES, Validator

    validator = Validator(
        global_batch_size=global_batch_size,
        reasoning_enabled=reasoning_enabled,
        max_findings=max_findings,
        strict=strict,
    )
    try:
        with path.open("rb") as handle:
            validator.feed_chunks(iter(lambda: handle.read(CHUNK_BYTES), b""), source=str(path))
    except FileNotFoundError:
        raise InputError(f"{path} not found: give a .jsonl file or an s3:// URI") from None
    except IsADirectoryError:
        raise InputError(f"{path} is a folder: give a .jsonl file") from None
    except OSError as error:
        raise OperationError(f"cannot read {path}: {error}") from None
    return validator.finish()

"""The model registry as this pipeline uses it: register a trained checkpoint, read the lineage.

Every function takes its boto3 clients as arguments (`sm` for SageMaker, `s3` for S3).

Registration, `register_checkpoint(sm, s3, request)`: one model package version per training
job in the group, found again (never created twice) for the same `TrainingJobName`. It reads
the run's recipe (for its sha256 and hyperparameters) and streams the job's output.tar.gz
(`lambdas.checkpoint`); any problem raises before anything is created.

Lineage, over the versions that carry `CheckpointS3Uri` metadata (others are ignored):
- `latest_checkpoint(sm, group, approved_only=...)`: the newest (approved) checkpoint, or None;
- `ancestry(sm, group, checkpoint_uri)`: that checkpoint, its parent, the parent's parent, ...;
- `iter_checkpoints(sm, group)`: every checkpoint, newest first, each version described only
  when reached; `list_checkpoints(sm, group)` is the same as a list;
- `find_checkpoint(sm, group, uri)`, `describe_checkpoint(sm, arn)`;
- `set_approval(sm, arn, status)`: approve or reject, keeping the metadata.

What each version records is in CustomerMetadataProperties under the `KEY_*` names and the
knob names of `lambdas.recipe.spec.KNOBS` (docs/decisions/0003-model-package-fields.md);
`CheckpointRecord.replay_parameters()` turns it back into pipeline parameters.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.aws_errors import ACCESS_DENIED, NOT_FOUND, THROTTLED, error_code
from lambdas.checkpoint import JobOutput, ReadAhead, read_job_output
from lambdas.recipe import (
    S3_URI,
    SAGEMAKER_NAME,
    YamlSubsetError,
    applicable_knobs,
    format_float,
    get_path,
    is_s3_uri,
    parse_yaml_subset,
)
from lambdas.recipe.spec import BASE_MODEL, FULL_RANK, KNOBS, LORA, NO_VALIDATION_DATA, TECHNIQUES

# -- CustomerMetadataProperties keys: stable, read by the operator commands and replays --------
KEY_CHECKPOINT = "CheckpointS3Uri"
KEY_PARENT = "ParentModel"
KEY_TRAINING_JOB = "TrainingJobName"
KEY_TECHNIQUE = "Technique"
KEY_RECIPE_URI = "RecipeS3Uri"
KEY_RECIPE_SHA256 = "RecipeSha256"
KEY_PIPELINE_EXECUTION = "PipelineExecutionArn"
KEY_TRAIN_DATA = "TrainDataS3Uri"
KEY_VALIDATION_DATA = "ValidationDataS3Uri"
KEY_INSTANCE_TYPE = "TrainingInstanceType"
KEY_INSTANCE_COUNT = "TrainingInstanceCount"
KEY_RUN_NAME = "RunName"
KEY_TRAINING_STEPS = "TrainingSteps"
KEY_FIRST_LOSS = "FirstTrainingLoss"
KEY_FINAL_LOSS = "FinalTrainingLoss"
KEY_MIN_LOSS = "MinTrainingLoss"
KEY_METRICS_UNAVAILABLE = "MetricsUnavailable"
KEY_RECORD_VERSION = "RecordVersion"
# What a replay needs beyond the recipe: the job's time limit, and the package it replays.
KEY_MAX_RUNTIME = "MaxRuntimeSeconds"
KEY_SOURCE_PACKAGE = "SourceModelPackageArn"
RECORD_VERSION = "1"
# What a pipeline parameter holds for "nothing": "" (older definitions) or the sentinel "none".
NOTHING: tuple[str, ...] = ("", "none")
# Each applicable hyperparameter is recorded under its pipeline parameter name (e.g. MaxSteps).
HYPERPARAMETER_KEYS: tuple[str, ...] = tuple(knob.name for knob in KNOBS)

APPROVAL_STATUSES: tuple[str, ...] = ("PendingManualApproval", "Approved", "Rejected")
DEFAULT_APPROVAL_STATUS = "PendingManualApproval"
# What a run may register: approving is an act of its own (approve, the console), never a
# side effect of starting an execution.
REGISTRATION_STATUSES: tuple[str, ...] = ("PendingManualApproval", "Rejected")

# SageMaker's limits on CustomerMetadataProperties (CreateModelPackage API reference).
MAX_METADATA_ENTRIES = 50
MAX_METADATA_VALUE_CHARS = 256
_METADATA_PUNCTUATION = frozenset("_.:/=+-@")
# A recipe is about 1.5 kB; this bounds what a wrong RecipeS3Uri can make the function read.
MAX_RECIPE_BYTES = 256 * 1024

_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:pipeline/[A-Za-z0-9/_.:=+@-]+")
_JOB_IN_DESCRIPTION = re.compile(r"training job ([a-zA-Z0-9-]+)")
MODEL_PACKAGE_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):([0-9]{12}):model-package/([A-Za-z0-9-]+)/([0-9]+)"
)
# SageMaker's limit on a training job's MaxRuntimeInSeconds (CreateTrainingJob API reference).
MAX_RUNTIME_LIMIT = 2_419_200
_PEFT_TO_TECHNIQUE = {"lora": LORA, "null": FULL_RANK}


class RegistrationError(RuntimeError):
    """Registration could not complete; the message names the object and the fix."""


class CheckpointNotFoundError(LookupError):
    """No version of the group records the checkpoint asked for."""


# -- records ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointRecord:
    """One registered checkpoint: a model package version and the metadata it carries."""

    model_package_arn: str
    version: int
    approval_status: str
    creation_time: datetime | None
    metadata: Mapping[str, str] = field(repr=False)

    @property
    def checkpoint_uri(self) -> str:
        return self.metadata.get(KEY_CHECKPOINT, "")

    @property
    def parent(self) -> str:
        """What the run started from: the base model name or an earlier checkpoint's URI."""
        return self.metadata.get(KEY_PARENT, "")

    @property
    def training_job_name(self) -> str:
        return self.metadata.get(KEY_TRAINING_JOB, "")

    @property
    def technique(self) -> str:
        return self.metadata.get(KEY_TECHNIQUE, "")

    @property
    def source_model_package_arn(self) -> str:
        """The package this run replayed (another environment's), or "" for an original run."""
        return self.metadata.get(KEY_SOURCE_PACKAGE, "")

    @property
    def final_loss(self) -> float | None:
        value = self.metadata.get(KEY_FINAL_LOSS)
        return float(value) if value else None

    @property
    def training_steps(self) -> int | None:
        value = self.metadata.get(KEY_TRAINING_STEPS)
        return int(value) if value else None

    def replay_parameters(self) -> dict[str, str]:
        """The pipeline parameters this run was started with, as far as they were recorded.

        Keys are pipeline parameter names (Technique, ModelNameOrPath, TrainingInstanceType,
        TrainingInstanceCount, MaxRuntimeSeconds, the knobs, TrainDataS3Uri,
        ValidationDataS3Uri). ModelNameOrPath is the parent, which only exists in the account
        that trained it. A recorded "" or "none" means "not given" and is left out, as is the
        package a replay replayed (a replay of this run names this package instead).
        """
        names = {
            KEY_TECHNIQUE: "Technique",
            KEY_PARENT: "ModelNameOrPath",
            KEY_INSTANCE_TYPE: "TrainingInstanceType",
            KEY_INSTANCE_COUNT: "TrainingInstanceCount",
            KEY_MAX_RUNTIME: "MaxRuntimeSeconds",
            KEY_TRAIN_DATA: "TrainDataS3Uri",
            KEY_VALIDATION_DATA: "ValidationDataS3Uri",
            **{key: key for key in HYPERPARAMETER_KEYS},
        }
        return {
            name: self.metadata[key]
            for key, name in names.items()
            if self.metadata.get(key, "") not in NOTHING
        }


def _record(description: Mapping[str, Any]) -> CheckpointRecord:
    return CheckpointRecord(
        model_package_arn=str(description["ModelPackageArn"]),
        version=int(description.get("ModelPackageVersion", 0)),
        approval_status=str(description.get("ModelApprovalStatus", "")),
        creation_time=description.get("CreationTime"),
        metadata=dict(description.get("CustomerMetadataProperties") or {}),
    )


# -- the registration request -------------------------------------------------------------------


@dataclass(frozen=True)
class RegistrationRequest:
    """A register_checkpoint event, checked. Optional values are "" when not given."""

    training_job_name: str
    model_artifacts_uri: str
    group: str
    parent: str
    technique: str
    recipe_uri: str
    approval_status: str = DEFAULT_APPROVAL_STATUS
    pipeline_execution_arn: str = ""
    recipe_sha256: str = ""
    train_data_uri: str = ""
    validation_data_uri: str = ""
    training_instance_type: str = ""
    max_runtime_seconds: str = ""
    source_model_package_arn: str = ""

    @property
    def output_archive_uri(self) -> str:
        """output.tar.gz, which the job writes beside model.tar.gz."""
        return self.model_artifacts_uri.rsplit("/", 1)[0] + "/output.tar.gz"

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> RegistrationRequest:
        """Parse and check an event; ValueError lists every bad or missing input at once."""
        if not isinstance(event, Mapping):
            raise ValueError(f"the event must be a JSON object, got {type(event).__name__}")
        problems: list[str] = []

        def text(key: str, default: str | None = None) -> str:
            value = event.get(key)
            if value is None or value == "":
                if default is None:
                    problems.append(f"{key} is missing: pass it as an input of the register step")
                return default or ""
            if not isinstance(value, str):
                problems.append(f"{key}={value!r} must be text")
                return ""
            return value.strip()

        def check(key: str, value: str, ok: bool, rule: str) -> None:
            if value and not ok:
                problems.append(f"{key}={value[:200]!r}: {rule}")

        job = text("TrainingJobName")
        check(
            "TrainingJobName", job, bool(SAGEMAKER_NAME.fullmatch(job)), "not a training job name"
        )
        artifacts = text("ModelArtifactsS3Uri")
        check(
            "ModelArtifactsS3Uri",
            artifacts,
            bool(S3_URI.fullmatch(artifacts)) and artifacts.endswith("/output/model.tar.gz"),
            "must be the job's s3://.../<job>/output/model.tar.gz",
        )
        group = text("ModelPackageGroupName")
        check(
            "ModelPackageGroupName",
            group,
            bool(SAGEMAKER_NAME.fullmatch(group)),
            "not a group name",
        )
        parent = text("ModelNameOrPath")
        check(
            "ModelNameOrPath",
            parent,
            parent == BASE_MODEL or is_s3_uri(parent),
            f"must be {BASE_MODEL} or an s3:// checkpoint URI",
        )
        technique = text("Technique")
        check("Technique", technique, technique in TECHNIQUES, f"must be one of {TECHNIQUES}")
        recipe = text("RecipeS3Uri")
        check(
            "RecipeS3Uri",
            recipe,
            is_s3_uri(recipe, object_key_required=True),
            "must be the prepare step's s3://... recipe URI",
        )
        status = text("ModelApprovalStatus", DEFAULT_APPROVAL_STATUS)
        check(
            "ModelApprovalStatus",
            status,
            status in REGISTRATION_STATUSES,
            "a run registers its checkpoint PendingManualApproval or Rejected, never approved; "
            "approve it afterwards with `python -m pipeline approve <package>` or in the console"
            if status == "Approved"
            else f"must be one of {', '.join(REGISTRATION_STATUSES)}",
        )
        execution = text("PipelineExecutionArn", "")
        check("PipelineExecutionArn", execution, bool(_ARN.fullmatch(execution)), "not an ARN")
        sha = text("RecipeSha256", "").lower()
        check("RecipeSha256", sha, bool(re.fullmatch(r"[0-9a-f]{64}", sha)), "not a sha256")
        train = text("TrainDataS3Uri", "")
        check("TrainDataS3Uri", train, is_s3_uri(train, object_key_required=True), "not s3://")
        validation = text("ValidationDataS3Uri", "")
        if validation == NO_VALIDATION_DATA:
            validation = ""  # the run had no validation data; nothing to check or record
        check(
            "ValidationDataS3Uri",
            validation,
            is_s3_uri(validation, object_key_required=True),
            "not s3://",
        )
        instance_type = text("TrainingInstanceType", "")
        check(
            "TrainingInstanceType",
            instance_type,
            bool(re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", instance_type)),
            "not an instance type",
        )
        max_runtime = _max_runtime(event.get("MaxRuntimeSeconds"), problems)
        source = text("SourceModelPackageArn", "")
        source = "" if source in NOTHING else source
        check(
            "SourceModelPackageArn",
            source,
            bool(MODEL_PACKAGE_ARN.fullmatch(source)),
            "must be a model package ARN, or none",
        )
        if problems:
            raise ValueError("the register step's inputs are invalid:\n- " + "\n- ".join(problems))
        return cls(
            training_job_name=job,
            model_artifacts_uri=artifacts,
            group=group,
            parent=parent,
            technique=technique,
            recipe_uri=recipe,
            approval_status=status,
            pipeline_execution_arn=execution,
            recipe_sha256=sha,
            train_data_uri=train,
            validation_data_uri=validation,
            training_instance_type=instance_type,
            max_runtime_seconds=max_runtime,
            source_model_package_arn=source,
        )


def _max_runtime(value: object, problems: list[str]) -> str:
    """MaxRuntimeSeconds as recorded text ("" when not given): a pipeline Integer parameter
    reaches the function as a number, or as text."""
    if value is None or value == "":
        return ""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= MAX_RUNTIME_LIMIT:
        problems.append(
            f"MaxRuntimeSeconds={str(value)[:40]!r}: must be a whole number of seconds from 1 "
            f"to {MAX_RUNTIME_LIMIT}"
        )
        return ""
    return str(int(text))


# -- AWS error messages -------------------------------------------------------------------------


def s3_read_error(error: ClientError, uri: str, missing_hint: str) -> RegistrationError:
    code = error_code(error)
    if code in NOT_FOUND:
        return RegistrationError(f"{uri} does not exist: {missing_hint}")
    if code == "NoSuchBucket":
        return RegistrationError(f"{uri}: bucket {uri.split('/')[2]} does not exist")
    if code in ACCESS_DENIED:
        return RegistrationError(
            f"access denied reading {uri}: grant the register function's role s3:GetObject "
            "on it and kms:Decrypt on the bucket's key"
        )
    if code in ("SlowDown", "ServiceUnavailable", "InternalError", "RequestTimeout"):
        return RegistrationError(
            f"cannot read {uri}: {code} after the client's retries: retry the step"
        )
    return RegistrationError(f"cannot read {uri}: {code or 'error'}: {error}")


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


# -- registration -------------------------------------------------------------------------------


def sagemaker_error(error: ClientError, target: str) -> RegistrationError:
    """A failed SageMaker call on `target` (e.g. "model package group g") as a message with the
    fix; the action is the call's own name, so the message says which permission is missing."""
    code = error_code(error)
    action = f"sagemaker:{error.operation_name}"
    if code in ACCESS_DENIED:
        return RegistrationError(
            f"access denied calling {action} on {target}: grant the register function's role "
            f"{action} on it"
        )
    if code in THROTTLED:
        return RegistrationError(
            f"{action} on {target} was throttled after the client's retries: retry the step"
        )
    message = str(error.response.get("Error", {}).get("Message", "")) or str(error)
    return RegistrationError(f"{action} on {target} failed: {code or 'error'}: {message}")


def require_group(sm: Any, group: str) -> None:
    """RegistrationError unless the model package group exists and can be described."""
    try:
        sm.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as error:
        code = error_code(error)
        if code in ("ValidationException", "ResourceNotFound") and "not exist" in str(error):
            raise RegistrationError(
                f"model package group {group} does not exist in this account and region: "
                "deploy the training stack that creates it, or correct ModelPackageGroupName"
            ) from error
        raise sagemaker_error(error, f"model package group {group}") from error


def _versions(sm: Any, group: str, **filters: Any) -> Iterator[dict[str, Any]]:
    """The group's version summaries, newest first."""
    paginator = sm.get_paginator("list_model_packages")
    pages = paginator.paginate(
        ModelPackageGroupName=group,
        SortBy="CreationTime",
        SortOrder="Descending",
        **filters,
    )
    for page in pages:
        yield from page.get("ModelPackageSummaryList", [])


def describe_checkpoint(sm: Any, model_package_arn: str) -> CheckpointRecord:
    """The record of one model package version."""
    return _record(sm.describe_model_package(ModelPackageName=model_package_arn))


def find_registration(sm: Any, group: str, training_job_name: str) -> CheckpointRecord | None:
    """The version already registered for a training job, or None.

    The description names the job, which narrows the search without a describe per version;
    the metadata confirms it.
    """
    for summary in _versions(sm, group):
        named = _JOB_IN_DESCRIPTION.search(summary.get("ModelPackageDescription", ""))
        if named is None or named.group(1) != training_job_name:
            continue
        record = describe_checkpoint(sm, summary["ModelPackageArn"])
        if record.training_job_name == training_job_name:
            return record
    return None


def client_token(group: str, training_job_name: str) -> str:
    """CreateModelPackage's idempotency token for a job: 32 hex characters, stable."""
    return hashlib.sha256(f"{group}/{training_job_name}".encode()).hexdigest()[:32]


def metadata_problem(key: str, value: str) -> str | None:
    """Why SageMaker would refuse a CustomerMetadataProperties entry, or None."""
    if not 1 <= len(value) <= MAX_METADATA_VALUE_CHARS:
        return f"{key} is {len(value)} characters; the registry allows 1 to 256"
    for char in value:
        if unicodedata.category(char)[0] not in "LZN" and char not in _METADATA_PUNCTUATION:
            return (
                f"{key}={value[:80]!r} holds {char!r}; the registry allows only letters, "
                "digits, spaces and _ . : / = + - @"
            )
    return None


def _metadata_text(text: str) -> str:
    """Free text made acceptable as a metadata value (only for messages, never for data)."""
    cleaned = "".join(
        char if unicodedata.category(char)[0] in "LZN" or char in _METADATA_PUNCTUATION else " "
        for char in text
    )
    return " ".join(cleaned.split())[:MAX_METADATA_VALUE_CHARS] or "unavailable"


def _recipe_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return format_float(value)
    return str(value)


@dataclass(frozen=True)
class RecipeFacts:
    """What registration takes from the run's recipe file."""

    sha256: str
    technique: str
    parent: str
    run_name: str
    replicas: int
    validation_data_uri: str
    hyperparameters: dict[str, str]


def read_recipe(s3: Any, uri: str) -> RecipeFacts:
    """Read the run's recipe (at most MAX_RECIPE_BYTES) and take its facts."""
    bucket, key = _split(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        try:
            data = body.read(MAX_RECIPE_BYTES + 1)
        finally:
            body.close()
    except ClientError as error:
        raise s3_read_error(error, uri, "RecipeS3Uri must be the prepare step's output") from error
    if len(data) > MAX_RECIPE_BYTES:
        raise RegistrationError(f"{uri} is over {MAX_RECIPE_BYTES} bytes: it is not a recipe")
    try:
        tree = parse_yaml_subset(data.decode("utf-8"), source=uri)
        scheme = get_path(tree, "training_config.peft.peft_scheme")
        technique = _PEFT_TO_TECHNIQUE[scheme]
        facts = RecipeFacts(
            sha256=hashlib.sha256(data).hexdigest(),
            technique=technique,
            parent=str(get_path(tree, "run.model_name_or_path")),
            run_name=str(get_path(tree, "run.name")),
            replicas=int(get_path(tree, "run.replicas")),
            validation_data_uri=str(get_path(tree, "run.validation_data_s3_path")),
            hyperparameters={
                knob.name: _recipe_value(get_path(tree, knob.path))
                for knob in applicable_knobs(technique)
            },
        )
    except (UnicodeDecodeError, YamlSubsetError, KeyError, TypeError, ValueError) as error:
        raise RegistrationError(
            f"{uri} is not a recipe rendered by the prepare step ({error})"
        ) from error
    return facts


def _check_recipe(request: RegistrationRequest, facts: RecipeFacts) -> None:
    """The recipe must be the one this run trained with; a mismatch is a wiring defect."""
    problems = []
    if request.recipe_sha256 and request.recipe_sha256 != facts.sha256:
        problems.append(f"its sha256 is {facts.sha256}, not RecipeSha256 {request.recipe_sha256}")
    if facts.technique != request.technique:
        problems.append(f"it trains {facts.technique}, not Technique {request.technique}")
    if facts.parent != request.parent:
        problems.append(f"it starts from {facts.parent}, not ModelNameOrPath {request.parent}")
    if request.validation_data_uri and request.validation_data_uri != facts.validation_data_uri:
        problems.append(
            f"its validation data is {facts.validation_data_uri!r}, not ValidationDataS3Uri "
            f"{request.validation_data_uri}"
        )
    if problems:
        raise RegistrationError(
            f"{request.recipe_uri} does not match the register step's inputs: "
            + "; ".join(problems)
            + ". Pass the same run's values to both steps."
        )


def _loss(value: float) -> str:
    return repr(float(value))


def build_metadata(
    request: RegistrationRequest, facts: RecipeFacts, output: JobOutput
) -> dict[str, str]:
    """CustomerMetadataProperties for a checkpoint; RegistrationError if SageMaker would refuse."""
    entries: dict[str, str] = {
        KEY_RECORD_VERSION: RECORD_VERSION,
        KEY_CHECKPOINT: output.checkpoint_uri,
        KEY_PARENT: request.parent,
        KEY_TRAINING_JOB: request.training_job_name,
        KEY_TECHNIQUE: request.technique,
        KEY_RECIPE_URI: request.recipe_uri,
        KEY_RECIPE_SHA256: facts.sha256,
        KEY_PIPELINE_EXECUTION: request.pipeline_execution_arn,
        KEY_RUN_NAME: facts.run_name,
        KEY_INSTANCE_TYPE: request.training_instance_type,
        KEY_INSTANCE_COUNT: str(facts.replicas),
        KEY_MAX_RUNTIME: request.max_runtime_seconds,
        KEY_SOURCE_PACKAGE: request.source_model_package_arn,
        KEY_TRAIN_DATA: request.train_data_uri,
        KEY_VALIDATION_DATA: facts.validation_data_uri,
        **facts.hyperparameters,
    }
    if output.metrics is not None:
        entries[KEY_TRAINING_STEPS] = str(output.metrics.steps)
        entries[KEY_FIRST_LOSS] = _loss(output.metrics.first_loss)
        entries[KEY_FINAL_LOSS] = _loss(output.metrics.final_loss)
        entries[KEY_MIN_LOSS] = _loss(output.metrics.min_loss)
    else:
        entries[KEY_METRICS_UNAVAILABLE] = _metadata_text(output.metrics_problem)
    # Empty values are not allowed by the registry: an input that was not given is left out.
    entries = {key: value for key, value in entries.items() if value}
    problems = [p for key, value in entries.items() if (p := metadata_problem(key, value))]
    if len(entries) > MAX_METADATA_ENTRIES:
        problems.append(f"{len(entries)} entries; the registry allows {MAX_METADATA_ENTRIES}")
    if problems:
        raise RegistrationError(
            "the checkpoint's metadata would be refused by the model registry: "
            + "; ".join(problems)
        )
    return entries


def describe_run(request: RegistrationRequest, output: JobOutput) -> str:
    """The version's description. It names the training job: find_registration relies on it."""
    loss = (
        f"final training loss {_loss(output.metrics.final_loss)} at step {output.metrics.steps}"
        if output.metrics is not None
        else "training metrics unavailable"
    )
    return (
        f"Nova 2 Lite SFT ({request.technique}) checkpoint of training job "
        f"{request.training_job_name}, started from {request.parent}; {loss}."
    )[:1024]


def read_output_archive(s3: Any, request: RegistrationRequest) -> JobOutput:
    """Stream the job's output.tar.gz from S3 and read its manifest and metrics."""
    uri = request.output_archive_uri
    bucket, key = _split(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        raise s3_read_error(
            error,
            uri,
            f"training job {request.training_job_name} left no output archive beside "
            f"{request.model_artifacts_uri}; check that the job completed",
        ) from error
    # Download ahead in a thread while the previous chunks are inflated.
    ahead = ReadAhead(body)
    try:
        return read_job_output(ahead, source=uri)
    except BotoCoreError as error:
        raise RegistrationError(
            f"reading {uri} failed part way ({error}); retry the step"
        ) from error
    finally:
        ahead.close()
        # Closing drops the connection: the rest of the archive is never downloaded.
        body.close()


@dataclass(frozen=True)
class Registered:
    """The outcome of register_checkpoint. `created` is False when the job was registered before."""

    record: CheckpointRecord
    created: bool


def register_checkpoint(sm: Any, s3: Any, request: RegistrationRequest) -> Registered:
    """Register the job's checkpoint as a new version of the group, once per training job.

    Order: the group must exist; a version already registered for the job is returned as it
    is; then the recipe and the output archive are read and checked; only then is the version
    created. Every failure raises RegistrationError or OutputArchiveError, with a message naming
    the object and the fix, before CreateModelPackage, so nothing is registered on error.
    """
    require_group(sm, request.group)
    try:
        existing = find_registration(sm, request.group, request.training_job_name)
    except ClientError as error:
        raise sagemaker_error(error, f"model package group {request.group}") from error
    if existing is not None:
        return Registered(existing, created=False)
    facts = read_recipe(s3, request.recipe_uri)
    _check_recipe(request, facts)
    output = read_output_archive(s3, request)
    metadata = build_metadata(request, facts, output)
    try:
        created = sm.create_model_package(
            ModelPackageGroupName=request.group,
            ModelPackageDescription=describe_run(request, output),
            ModelApprovalStatus=request.approval_status,
            CustomerMetadataProperties=metadata,
            ClientToken=client_token(request.group, request.training_job_name),
        )
    except ClientError as error:
        raise sagemaker_error(
            error,
            f"model package group {request.group} (checkpoint of {request.training_job_name})",
        ) from error
    arn = str(created["ModelPackageArn"])
    version = arn.rsplit("/", 1)[-1]
    record = CheckpointRecord(
        model_package_arn=arn,
        version=int(version) if version.isdigit() else 0,
        approval_status=request.approval_status,
        creation_time=None,
        metadata=metadata,
    )
    return Registered(record, created=True)


# -- lineage ------------------------------------------------------------------------------------


def iter_checkpoints(
    sm: Any, group: str, *, approved_only: bool = False
) -> Iterator[CheckpointRecord]:
    """The group's checkpoints, newest first (only Approved ones if `approved_only`).

    Each version is described only when it is reached, so a caller that stops early pays for
    the versions it read and no more. Versions that record no checkpoint are skipped.
    """
    filters = {"ModelApprovalStatus": "Approved"} if approved_only else {}
    for summary in _versions(sm, group, **filters):
        record = describe_checkpoint(sm, summary["ModelPackageArn"])
        if record.checkpoint_uri:
            yield record


def list_checkpoints(sm: Any, group: str) -> list[CheckpointRecord]:
    """Every checkpoint of the group, newest first (one describe per version)."""
    return list(iter_checkpoints(sm, group))


def latest_checkpoint(sm: Any, group: str, *, approved_only: bool) -> CheckpointRecord | None:
    """The newest checkpoint of the group (only Approved ones if `approved_only`), or None."""
    return next(iter_checkpoints(sm, group, approved_only=approved_only), None)


def find_checkpoint(sm: Any, group: str, checkpoint_uri: str) -> CheckpointRecord | None:
    """The newest version that records `checkpoint_uri`, or None; stops at the first match."""
    matches = (r for r in iter_checkpoints(sm, group) if r.checkpoint_uri == checkpoint_uri)
    return next(matches, None)


def ancestry(sm: Any, group: str, checkpoint_uri: str) -> list[CheckpointRecord]:
    """The checkpoint's record, then its parent's, and so on back to the first run.

    The walk stops at a parent that is not a checkpoint of this group: the base model, or a
    checkpoint registered elsewhere; the last record's `parent` names it. CheckpointNotFoundError
    if the group does not record `checkpoint_uri`.
    """
    by_uri: dict[str, CheckpointRecord] = {}
    for record in list_checkpoints(sm, group):
        by_uri.setdefault(record.checkpoint_uri, record)  # newest first: keep the newest
    current = by_uri.get(checkpoint_uri)
    if current is None:
        raise CheckpointNotFoundError(
            f"no version of model package group {group} records checkpoint {checkpoint_uri}"
        )
    chain = [current]
    seen = {checkpoint_uri}
    while current.parent in by_uri and current.parent not in seen:
        seen.add(current.parent)
        current = by_uri[current.parent]
        chain.append(current)
    return chain


def set_approval(
    sm: Any, model_package_arn: str, status: str, *, reason: str = ""
) -> CheckpointRecord:
    """Approve, reject or reset a version, sending its metadata back with the change.

    SageMaker keeps the metadata on its own; resending it also keeps it on local endpoints that
    clear fields an update does not name.
    """
    if status not in APPROVAL_STATUSES:
        raise ValueError(f"approval status {status!r} must be one of {APPROVAL_STATUSES}")
    record = describe_checkpoint(sm, model_package_arn)
    update: dict[str, Any] = {"ModelPackageArn": model_package_arn, "ModelApprovalStatus": status}
    if record.metadata:
        update["CustomerMetadataProperties"] = dict(record.metadata)
    if reason:
        update["ApprovalDescription"] = reason[:1024]
    sm.update_model_package(**update)
    return describe_checkpoint(sm, model_package_arn)

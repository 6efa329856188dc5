"""Registering a trained checkpoint: one model package version per training job.

`register_checkpoint(sm, s3, request)` reads the run's recipe (`recipe_facts`) and streams the
job's output.tar.gz (`lambdas.checkpoint`); any problem raises before anything is created.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.aws_errors import error_code
from lambdas.checkpoint import JobOutput, ReadAhead, read_job_output
from lambdas.registry.errors import RegistrationError, s3_read_error, sagemaker_error, split_s3_uri
from lambdas.registry.lineage import find_registration
from lambdas.registry.metadata import build_metadata, loss_text
from lambdas.registry.recipe_facts import check_recipe, read_recipe
from lambdas.registry.records import CheckpointRecord
from lambdas.registry.request import RegistrationRequest

T = TypeVar("T")


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


def client_token(group: str, training_job_name: str) -> str:
    """CreateModelPackage's idempotency token for a job: 32 hex characters, stable."""
    return hashlib.sha256(f"{group}/{training_job_name}".encode()).hexdigest()[:32]


def describe_run(request: RegistrationRequest, output: JobOutput) -> str:
    """The version's description. It names the training job: find_registration relies on it."""
    loss = (
        f"final training loss {loss_text(output.metrics.final_loss)} at step {output.metrics.steps}"
        if output.metrics is not None
        else "training metrics unavailable"
    )
    return (
        f"Nova 2 Lite SFT ({request.technique}) checkpoint of training job "
        f"{request.training_job_name}, started from {request.parent}; {loss}."
    )[:1024]


def read_s3_archive(s3: Any, uri: str, *, missing: str, read: Callable[[ReadAhead], T]) -> T:
    """`read` applied to the S3 object `uri`, streamed with download ahead in a thread while
    the previous chunks are inflated. A missing or unreadable object raises RegistrationError
    with `missing` as its fix; so does a read that fails part way."""
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        raise s3_read_error(error, uri, missing) from error
    ahead = ReadAhead(body)
    try:
        return read(ahead)
    except BotoCoreError as error:
        raise RegistrationError(
            f"reading {uri} failed part way ({error}); retry the step"
        ) from error
    finally:
        ahead.close()
        # Closing drops the connection: the rest of the archive is never downloaded.
        body.close()


def read_output_archive(s3: Any, request: RegistrationRequest) -> JobOutput:
    """Stream the job's output.tar.gz from S3 and read its manifest and metrics."""
    uri = request.output_archive_uri
    return read_s3_archive(
        s3,
        uri,
        missing=(
            f"training job {request.training_job_name} left no output archive beside "
            f"{request.model_artifacts_uri}; check that the job completed"
        ),
        read=lambda stream: read_job_output(stream, source=uri),
    )


@dataclass(frozen=True)
class Registered:
    """The outcome of register_checkpoint. `created` is False when the job was registered before."""

    record: CheckpointRecord
    created: bool


@dataclass(frozen=True)
class PackageExtras:
    """What a caller adds to a new version (the evaluation's scores, lambdas.evaluation): more
    metadata, ModelMetrics, the status to create it with, and a sentence appended to its
    description (CreateModelPackage takes no ApprovalDescription; only an update does)."""

    approval_status: str
    metadata: Mapping[str, str] = field(default_factory=dict)
    model_metrics: Mapping[str, Any] | None = None
    description_note: str = ""


# Given the checkpoint URI and the version's metadata, returns what to add; called after every
# read and check of registration, right before CreateModelPackage, and may raise.
ExtrasHook = Callable[[str, Mapping[str, str]], PackageExtras]


def register_checkpoint(
    sm: Any, s3: Any, request: RegistrationRequest, *, extras: ExtrasHook | None = None
) -> Registered:
    """Register the job's checkpoint as a new version of the group, once per training job.

    Order: the group must exist; a version already registered for the job is returned as it
    is; then the recipe and the output archive are read and checked, and `extras` (if given)
    adds to the version; only then is the version created. Every failure raises
    RegistrationError or OutputArchiveError (or the hook's error), with a message naming the
    object and the fix, before CreateModelPackage, so nothing is registered on error.
    """
    require_group(sm, request.group)
    try:
        existing = find_registration(sm, request.group, request.training_job_name)
    except ClientError as error:
        raise sagemaker_error(error, f"model package group {request.group}") from error
    if existing is not None:
        return Registered(existing, created=False)
    facts = read_recipe(s3, request.recipe_uri)
    check_recipe(request, facts)
    output = read_output_archive(s3, request)
    metadata = build_metadata(request, facts, output)
    added = (
        extras(output.checkpoint_uri, metadata)
        if extras is not None
        else PackageExtras(request.approval_status)
    )
    metadata = {**metadata, **added.metadata}
    # The training job's name comes first: find_registration relies on it.
    description = f"{describe_run(request, output)} {added.description_note}".strip()[:1024]
    optional: dict[str, Any] = {}
    if added.model_metrics is not None:
        optional["ModelMetrics"] = dict(added.model_metrics)
    try:
        created = sm.create_model_package(
            ModelPackageGroupName=request.group,
            ModelPackageDescription=description,
            ModelApprovalStatus=added.approval_status,
            CustomerMetadataProperties=metadata,
            ClientToken=client_token(request.group, request.training_job_name),
            **optional,
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
        approval_status=added.approval_status,
        creation_time=None,
        metadata=metadata,
    )
    return Registered(record, created=True)

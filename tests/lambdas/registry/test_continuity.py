"""The technique check of a run from a checkpoint (lambdas/registry/continuity.py), against moto.

Checkpoints are registered through the real register path; the lookup's cost is counted in
SageMaker requests.
"""

from __future__ import annotations

from typing import Any

import botocore.endpoint
import pytest
from botocore.exceptions import ClientError

from lambdas.recipe.spec import BASE_MODEL, FULL_RANK, LORA
from lambdas.registry import CheckpointRecord, RegistrationRequest, register_checkpoint
from lambdas.registry.continuity import (
    BASE_MODEL_OUTCOME,
    SAME_TECHNIQUE,
    UNREGISTERED,
    RegistryReadError,
    TechniqueMismatchError,
    check_continuity,
    find_checkpoint_record,
    job_names_in,
    registry_read_error,
)
from tests.lambdas.checkpoint.archives import METRICS_CSV, Member, manifest, tar_gz
from tests.lambdas.test_register_checkpoint import ARTIFACTS, GROUP, escrow, stage_run


def run(sm: Any, s3: Any, job: str, technique: str, parent: str = BASE_MODEL) -> CheckpointRecord:
    event = stage_run(s3, job, parent=parent, technique=technique)
    return register_checkpoint(sm, s3, RegistrationRequest.from_event(event)).record


@pytest.fixture
def calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """SageMaker operations sent from now on, in order."""
    sent: list[str] = []
    send = botocore.endpoint.Endpoint.make_request

    def record(self: Any, operation_model: Any, request_dict: Any) -> Any:
        if operation_model.service_model.service_name == "sagemaker":
            sent.append(operation_model.name)
        return send(self, operation_model, request_dict)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", record)
    return sent


def test_the_base_model_needs_no_lookup(calls: list[str]) -> None:
    check = check_continuity(None, GROUP, BASE_MODEL, FULL_RANK)
    assert check.outcome == BASE_MODEL_OUTCOME
    assert calls == []


def test_a_mismatch_names_both_techniques_the_checkpoint_and_the_fix(
    clients: tuple[Any, Any],
) -> None:
    sm, s3 = clients
    lora = run(sm, s3, "job-1", LORA)
    with pytest.raises(TechniqueMismatchError) as caught:
        check_continuity(sm, GROUP, lora.checkpoint_uri, FULL_RANK)
    assert str(caught.value) == (
        f"Technique FullRank cannot continue from checkpoint {escrow('job-1')}: it was trained "
        f"with LoRA ({lora.model_package_arn}), and a run from a checkpoint must use the "
        "technique of the run that produced it. Set Technique to LoRA, or start from the base "
        "model"
    )


def test_a_full_rank_checkpoint_refuses_lora_and_accepts_full_rank(
    clients: tuple[Any, Any],
) -> None:
    sm, s3 = clients
    full = run(sm, s3, "job-1", FULL_RANK)
    with pytest.raises(TechniqueMismatchError, match=r"Technique LoRA .* trained with FullRank"):
        check_continuity(sm, GROUP, full.checkpoint_uri, LORA)
    check = check_continuity(sm, GROUP, full.checkpoint_uri, FULL_RANK)
    assert check.outcome == SAME_TECHNIQUE
    assert check.record is not None
    assert check.record.model_package_arn == full.model_package_arn


def test_the_lookup_describes_only_the_version_that_names_the_checkpoints_job(
    clients: tuple[Any, Any], calls: list[str]
) -> None:
    sm, s3 = clients
    first = run(sm, s3, "job-1", LORA)
    for job in ("job-2", "job-3", "job-4"):
        run(sm, s3, job, LORA)
    calls.clear()
    check = check_continuity(sm, GROUP, first.checkpoint_uri, LORA)
    assert check.outcome == SAME_TECHNIQUE
    assert check.described == 0
    # One listing of the group, one describe: the oldest of four versions is found by its job.
    assert calls == ["ListModelPackages", "DescribeModelPackage"]


def test_an_unknown_checkpoint_is_allowed_after_a_bounded_search(
    clients: tuple[Any, Any], calls: list[str]
) -> None:
    sm, s3 = clients
    for job in ("job-1", "job-2", "job-3"):
        run(sm, s3, job, LORA)
    foreign = "s3://customer-escrow-999999999999-smtj-ffffffff/old-job/step_10"
    calls.clear()
    record, described = find_checkpoint_record(sm, GROUP, foreign, max_described=2)
    assert record is None
    assert described == 2
    assert calls.count("DescribeModelPackage") == 2
    check = check_continuity(sm, GROUP, foreign, FULL_RANK)
    assert check.outcome == UNREGISTERED
    assert check.describe().startswith(f"unregistered: no version of model package group {GROUP}")
    assert "newest 3 versions" in check.describe()


def test_a_uri_that_names_no_job_is_found_by_the_fallback(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    run(sm, s3, "job-1", LORA)
    event = stage_run(s3, "job-2", technique=FULL_RANK)
    # A checkpoint URI of another layout: the job is not one of its path segments.
    other = "s3://customer-escrow-123456789012-smtj-a1b2c3d4/checkpoints/final"
    archive = tar_gz(
        Member("./step_wise_training_metrics.csv", METRICS_CSV),
        Member("./manifest.json", manifest(other)),
    )
    folder = "runs/job-2/training/job-2/output"
    s3.put_object(Bucket=ARTIFACTS, Key=f"{folder}/output.tar.gz", Body=archive)
    register_checkpoint(sm, s3, RegistrationRequest.from_event(event))
    assert job_names_in(other) == ["checkpoints"]
    with pytest.raises(TechniqueMismatchError, match="trained with FullRank"):
        check_continuity(sm, GROUP, other, LORA)


def test_a_known_record_saves_the_lookup(clients: tuple[Any, Any], calls: list[str]) -> None:
    sm, s3 = clients
    lora = run(sm, s3, "job-1", LORA)
    calls.clear()
    with pytest.raises(TechniqueMismatchError):
        check_continuity(sm, GROUP, lora.checkpoint_uri, FULL_RANK, known=lora)
    assert calls == []


def test_a_version_that_records_no_technique_is_allowed_and_said_so(
    clients: tuple[Any, Any],
) -> None:
    sm, _ = clients
    sm.create_model_package(
        ModelPackageGroupName=GROUP,
        ModelPackageDescription="checkpoint of training job old-job, recorded by hand",
        CustomerMetadataProperties={"CheckpointS3Uri": escrow("old-job")},
    )
    check = check_continuity(sm, GROUP, escrow("old-job"), FULL_RANK)
    assert check.outcome == UNREGISTERED
    assert "records no technique" in check.describe()


@pytest.mark.parametrize(
    ("uri", "jobs"),
    [
        ("s3://customer-escrow-1-smtj-ab/my-job-7/step_100", ["my-job-7"]),
        ("s3://bucket/a/b/step_4", ["a", "b"]),
        ("s3://bucket/only", ["only"]),
        ("s3://bucket/", []),
        ("s3://bucket/with_underscore/step_1", []),
    ],
)
def test_job_names_in_a_checkpoint_uri(uri: str, jobs: list[str]) -> None:
    assert job_names_in(uri) == jobs


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDeniedException", "access denied; grant sagemaker:ListModelPackages"),
        ("ThrottlingException", "throttled after the client's retries; retry"),
        ("InternalFailure", "InternalFailure"),
    ],
)
def test_registry_errors_name_the_group_and_the_fix(code: str, expected: str) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "m"}}, "ListModelPackages")
    message = str(registry_read_error(error, GROUP))
    assert message.startswith(f"cannot read model package group {GROUP} to check")
    assert expected in message
    assert isinstance(registry_read_error(error, GROUP), RegistryReadError)

"""`approve` and `reject` change the approval status and keep every other recorded field."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.pipeline.commands.helpers import deploy, environment, register, run_cli


def test_approve_keeps_the_metadata_and_records_the_reason(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # AWS keeps the fields an UpdateModelPackage call does not name; the local endpoint clears
    # them. The command sends the metadata with the change, so both keep it: if it did not,
    # the metadata read back here would be empty.
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    before = register(aws, env, "job-one")
    status, out, err = run_cli(
        capsys,
        "approve",
        before.model_package_arn,
        "--reason",
        "eval passed",
        "--override-gate",
        "scored by hand",
        "--cdk-json",
        str(cdk_json),
        "--json",
    )
    assert (status, err) == (0, "")
    assert json.loads(out)["approval_status"] == "Approved"
    described = aws.client("sagemaker").describe_model_package(
        ModelPackageName=before.model_package_arn
    )
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["CustomerMetadataProperties"] == dict(before.metadata)
    assert described["ApprovalDescription"].startswith(
        "eval passed. Gate overridden: scored by hand (v1 ("
    )


def test_reject_needs_a_reason_and_records_it(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    record = register(aws, env, "job-one")
    common = ("--env", "dev", "--cdk-json", str(cdk_json))
    status, _, err = run_cli(capsys, "reject", "1", *common)
    assert status == 2
    assert "the following arguments are required: --reason" in err

    status, out, _ = run_cli(capsys, "reject", "1", *common, "--reason", "loss diverged")
    assert status == 0
    assert out == f"{record.model_package_arn}: Rejected\n"
    described = aws.client("sagemaker").describe_model_package(
        ModelPackageName=record.model_package_arn
    )
    assert (described["ModelApprovalStatus"], described["ApprovalDescription"]) == (
        "Rejected",
        "loss diverged",
    )
    assert described["CustomerMetadataProperties"]["CheckpointS3Uri"] == record.checkpoint_uri


FAILURES = (
    ("4", 1, "cannot describe arn:aws:sagemaker:us-east-1:123456789012:model-package/"),
    (
        "arn:aws:sagemaker:us-east-1:123456789012:model-package/someone-elses/1",
        2,
        "model package group someone-elses belongs to no environment",
    ),
    (
        "arn:aws:sagemaker:us-east-1:999999999999:model-package/nova-sft-dev-checkpoints/1",
        2,
        "but environment dev is 123456789012/us-east-1",
    ),
    ("latest", 2, "'latest' is not a model package"),
)


def test_approve_failures_name_the_package_and_change_nothing(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    record = register(aws, env, "job-one")
    for package, status, message in FAILURES:
        got, _, err = run_cli(
            capsys, "approve", package, "--env", "dev", "--cdk-json", str(cdk_json)
        )
        assert (got, message in err, "Traceback" in err) == (status, True, False), err
    described = aws.client("sagemaker").describe_model_package(
        ModelPackageName=record.model_package_arn
    )
    assert described["ModelApprovalStatus"] == "PendingManualApproval"

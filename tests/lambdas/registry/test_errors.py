"""AWS errors as registration messages with the fix (lambdas/registry/errors.py). No AWS."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from lambdas.registry import s3_read_error, sagemaker_error


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDenied", "access denied reading s3://b/k: grant the register function's role"),
        ("NoSuchKey", "s3://b/k does not exist: hint"),
        ("NoSuchBucket", "s3://b/k: bucket b does not exist"),
        ("SlowDown", "cannot read s3://b/k: SlowDown after the client's retries: retry the step"),
        ("InvalidObjectState", "cannot read s3://b/k: InvalidObjectState: "),
    ],
)
def test_s3_errors_become_messages_with_the_fix(code: str, expected: str) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "m"}}, "GetObject")
    assert str(s3_read_error(error, "s3://b/k", "hint")).startswith(expected)


@pytest.mark.parametrize(
    ("code", "operation", "expected"),
    [
        (
            "AccessDeniedException",
            "ListModelPackages",
            "access denied calling sagemaker:ListModelPackages on model package group g: "
            "grant the register function's role sagemaker:ListModelPackages on it",
        ),
        (
            "AccessDeniedException",
            "DescribeModelPackageGroup",
            "access denied calling sagemaker:DescribeModelPackageGroup on model package group g",
        ),
        (
            "ThrottlingException",
            "CreateModelPackage",
            "sagemaker:CreateModelPackage on model package group g was throttled after the "
            "client's retries: retry the step",
        ),
        (
            "ValidationException",
            "CreateModelPackage",
            "sagemaker:CreateModelPackage on model package group g failed: ValidationException: m",
        ),
    ],
)
def test_sagemaker_errors_name_the_call_the_group_and_the_fix(
    code: str, operation: str, expected: str
) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "m"}}, operation)
    assert str(sagemaker_error(error, "model package group g")).startswith(expected)

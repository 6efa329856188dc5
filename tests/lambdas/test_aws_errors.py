"""Every handler reads an AWS error code the same way: one set per meaning."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from lambdas.aws_errors import ACCESS_DENIED, NOT_FOUND, error_code
from lambdas.registry import s3_read_error
from lambdas.validate_dataset import _access_error

URI = "s3://data-bucket/train/train.jsonl"


def failed(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "m"}}, "GetObject")


def test_error_code_is_empty_when_the_response_has_none() -> None:
    assert error_code(failed("NoSuchKey")) == "NoSuchKey"
    assert error_code(ClientError({}, "GetObject")) == ""


@pytest.mark.parametrize("code", sorted(ACCESS_DENIED))
def test_every_denial_code_reads_as_access_denied_in_each_handler(code: str) -> None:
    assert "access denied reading" in str(s3_read_error(failed(code), URI, "hint"))
    assert "access denied; grant" in str(_access_error(failed(code), URI, "read", "s3:GetObject"))


@pytest.mark.parametrize("code", sorted(NOT_FOUND))
def test_every_missing_object_code_reads_as_missing_in_each_handler(code: str) -> None:
    assert str(s3_read_error(failed(code), URI, "hint")) == f"{URI} does not exist: hint"
    message = str(_access_error(failed(code), URI, "read", "s3:GetObject"))
    assert "the object does not exist" in message

"""Fault injection on the local endpoint answers like AWS, so client retries absorb it."""

from __future__ import annotations

import os

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeline.rehearsal.endpoint import Faults, LocalEndpoint


@pytest.fixture
def endpoint(local_endpoint: LocalEndpoint) -> LocalEndpoint:
    """The session's endpoint (tests/conftest.py), emptied."""
    local_endpoint.reset()
    return local_endpoint


def client(endpoint: LocalEndpoint, service: str, attempts: int) -> object:
    return boto3.Session(region_name="us-east-1").client(
        service,
        endpoint_url=endpoint.url,
        config=Config(retries={"mode": "standard", "max_attempts": attempts}),
    )


def test_s3_errors_are_retried_to_success(endpoint: LocalEndpoint) -> None:
    s3 = client(endpoint, "s3", attempts=10)
    s3.create_bucket(Bucket="bucket-one")  # type: ignore[attr-defined]
    with endpoint.faults(Faults(s3_error_rate=0.2, seed=3)) as faults:
        for index in range(10):
            s3.put_object(Bucket="bucket-one", Key=f"k{index}", Body=b"x" * 100)  # type: ignore[attr-defined]
        listed = s3.list_objects_v2(Bucket="bucket-one")  # type: ignore[attr-defined]
    assert listed["KeyCount"] == 10
    assert faults.injected["s3"] > 0
    assert faults.seen["s3"] == 11 + faults.injected["s3"]


def test_without_retries_the_error_is_the_one_aws_sends(endpoint: LocalEndpoint) -> None:
    s3 = client(endpoint, "s3", attempts=1)
    s3.create_bucket(Bucket="bucket-one")  # type: ignore[attr-defined]
    with endpoint.faults(Faults(s3_error_rate=0.99)), pytest.raises(ClientError) as err:
        s3.head_bucket(Bucket="bucket-one")  # type: ignore[attr-defined]
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 503


def test_sagemaker_throttling_is_retried(endpoint: LocalEndpoint) -> None:
    sm = client(endpoint, "sagemaker", attempts=10)
    with endpoint.faults(Faults(throttle_rate=0.2, seed=1)) as faults:
        for index in range(6):
            sm.create_model_package_group(ModelPackageGroupName=f"g{index}")  # type: ignore[attr-defined]
    groups = sm.list_model_package_groups()["ModelPackageGroupSummaryList"]  # type: ignore[attr-defined]
    assert len(groups) == 6
    assert faults.injected["sagemaker"] > 0


def test_throttling_surfaces_as_throttling_exception(endpoint: LocalEndpoint) -> None:
    sm = client(endpoint, "sagemaker", attempts=1)
    with endpoint.faults(Faults(throttle_rate=0.99)), pytest.raises(ClientError) as err:
        sm.list_model_package_groups()  # type: ignore[attr-defined]
    assert err.value.response["Error"]["Code"] == "ThrottlingException"


def test_faults_end_with_the_block(endpoint: LocalEndpoint) -> None:
    s3 = client(endpoint, "s3", attempts=1)
    with endpoint.faults(Faults(s3_error_rate=0.99)):
        pass
    s3.create_bucket(Bucket="bucket-one")  # type: ignore[attr-defined]
    assert s3.list_buckets()["Buckets"][0]["Name"] == "bucket-one"  # type: ignore[attr-defined]


@pytest.mark.parametrize("rate", [-0.1, 1.0])
def test_rates_outside_zero_to_one_are_refused(rate: float) -> None:
    with pytest.raises(ValueError, match="fault rate"):
        Faults(s3_error_rate=rate)


def test_endpoint_is_on_loopback(endpoint: LocalEndpoint) -> None:
    assert endpoint.url.startswith("http://127.0.0.1:")
    assert os.environ.get("AWS_ACCESS_KEY_ID") == "testing"

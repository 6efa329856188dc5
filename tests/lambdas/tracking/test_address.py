"""Addressing a SageMaker MLflow tracking server from its ARN (lambdas/tracking/address.py)."""

from __future__ import annotations

import pytest
from botocore.credentials import Credentials

from lambdas.tracking import (
    ARN_HEADER,
    ENDPOINT_OVERRIDE,
    TrackingAddressError,
    sigv4_signer,
    tracking_address,
)

ARN = "arn:aws:sagemaker:us-west-2:123456789012:mlflow-tracking-server/nova-sft-dev"


def test_the_endpoint_is_the_regions_experiments_endpoint() -> None:
    address = tracking_address(ARN)
    assert address.endpoint == "https://us-west-2.experiments.sagemaker.aws"
    assert address.region == "us-west-2"
    assert address.name == "nova-sft-dev"


def test_the_override_replaces_the_endpoint_but_not_the_region() -> None:
    address = tracking_address(ARN, {ENDPOINT_OVERRIDE: "http://127.0.0.1:5000/"})
    assert address.endpoint == "http://127.0.0.1:5000"
    assert address.region == "us-west-2"


@pytest.mark.parametrize(
    "arn",
    [
        "",
        "arn:aws:s3:::bucket",
        "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nova-sft-dev",
        "arn:aws:sagemaker:us-east-1:12345:mlflow-tracking-server/x",
    ],
)
def test_anything_but_a_tracking_server_arn_is_refused(arn: str) -> None:
    with pytest.raises(TrackingAddressError, match="not the ARN of a SageMaker MLflow"):
        tracking_address(arn)


def test_an_override_that_is_not_a_url_is_refused() -> None:
    with pytest.raises(TrackingAddressError, match=ENDPOINT_OVERRIDE):
        tracking_address(ARN, {ENDPOINT_OVERRIDE: "127.0.0.1:5000"})


def test_an_unknown_partition_needs_the_override() -> None:
    china = ARN.replace("arn:aws:", "arn:aws-cn:").replace("us-west-2", "cn-north-1")
    with pytest.raises(TrackingAddressError, match="no known MLflow endpoint"):
        tracking_address(china)
    assert tracking_address(china, {ENDPOINT_OVERRIDE: "https://x.example"}).region == (
        "cn-north-1"
    )


def test_requests_are_signed_for_sagemaker_mlflow_with_the_arn_header() -> None:
    address = tracking_address(ARN)
    sign = sigv4_signer(address, Credentials("AKIDEXAMPLE", "secret", "token"))
    headers = sign(
        "POST",
        f"{address.endpoint}/api/2.0/mlflow/runs/search",
        {"Content-Type": "application/json", ARN_HEADER: ARN},
        b"{}",
    )
    authorization = headers["Authorization"]
    assert "Credential=AKIDEXAMPLE/" in authorization
    assert "/us-west-2/sagemaker-mlflow/aws4_request" in authorization
    assert ARN_HEADER in authorization.split("SignedHeaders=")[1].split(",")[0].split(";")
    assert headers[ARN_HEADER] == ARN
    assert headers["X-Amz-Security-Token"] == "token"

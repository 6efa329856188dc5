"""Fixtures shared by the lambda tests."""

from __future__ import annotations

from typing import Any

import boto3
import pytest

from tests.lambdas.test_register_checkpoint import ARTIFACTS, GROUP


@pytest.fixture
def clients(aws: boto3.Session) -> tuple[Any, Any]:
    """SageMaker and S3 clients on a fresh moto server, with the artifacts bucket and the group."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=ARTIFACTS)
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName=GROUP)
    return sm, s3

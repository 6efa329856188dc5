"""checkov skips land in the resource's Metadata, each with its reason."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Template
from constructs import Construct

from stacks.scan_exceptions import skip_checkov


def test_skips_accumulate_on_the_resource_of_an_l2() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    bucket = s3.Bucket(stack, "B")
    skip_checkov(bucket, "CKV_AWS_18", "first reason")
    skip_checkov(bucket, "CKV_AWS_21", "second reason")
    Template.from_stack(stack).has_resource(
        "AWS::S3::Bucket",
        {
            "Metadata": {
                "checkov": {
                    "skip": [
                        {"id": "CKV_AWS_18", "comment": "first reason"},
                        {"id": "CKV_AWS_21", "comment": "second reason"},
                    ]
                }
            }
        },
    )


def test_a_construct_without_a_resource_is_refused() -> None:
    stack = cdk.Stack(cdk.App(), "S")
    with pytest.raises(TypeError, match="S/Empty is not a CloudFormation resource"):
        skip_checkov(Construct(stack, "Empty"), "CKV_AWS_18", "reason")

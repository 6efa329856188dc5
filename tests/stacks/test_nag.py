"""Finding IDs built for acknowledgments match the way cdk-nag names wildcard resources."""

from __future__ import annotations

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

from stacks.nag import wildcard_resource


@pytest.fixture
def stack() -> cdk.Stack:
    return cdk.Stack(cdk.App(), "S", env=cdk.Environment(region="us-east-1"))


def test_literal_resource(stack: cdk.Stack) -> None:
    assert wildcard_resource(stack, "*") == "AwsSolutions-IAM5[Resource::*]"


def test_pseudo_parameter_becomes_angle_brackets(stack: cdk.Stack) -> None:
    arn = f"arn:aws:s3:::customer-escrow-{stack.account}*"
    expected = "AwsSolutions-IAM5[Resource::arn:aws:s3:::customer-escrow-<AWS::AccountId>*]"
    assert wildcard_resource(stack, arn) == expected


def test_attribute_of_a_resource(stack: cdk.Stack) -> None:
    bucket = s3.Bucket(stack, "B")
    logical_id = stack.get_logical_id(bucket.node.default_child)  # type: ignore[arg-type]
    expected = f"AwsSolutions-IAM5[Resource::<{logical_id}.Arn>/runs/*]"
    assert wildcard_resource(stack, bucket.arn_for_objects("runs/*")) == expected


def test_imported_value_is_its_export_name(stack: cdk.Stack) -> None:
    arn = f"{cdk.Fn.import_value('data:BucketArn')}/*"
    assert wildcard_resource(stack, arn) == "AwsSolutions-IAM5[Resource::data:BucketArn/*]"


def test_a_resource_without_wildcard_has_no_finding(stack: cdk.Stack) -> None:
    with pytest.raises(ValueError, match="has no wildcard"):
        wildcard_resource(stack, "arn:aws:s3:::bucket")

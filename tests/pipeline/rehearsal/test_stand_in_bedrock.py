"""The stand-in Bedrock on the local endpoint: checked requests, statuses over time, Converse."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from pipeline.rehearsal.endpoint import LocalEndpoint
from pipeline.rehearsal.stand_in_bedrock import DEPLOY_SECONDS, IMPORT_SECONDS

CHECKPOINT = "s3://customer-escrow-123456789012-smtj-0a1b2c3d/job/step_100"
# Server-side checks only: botocore checks little (required, minimum lengths) before sending.
UNCHECKED = Config(parameter_validation=False, retries={"max_attempts": 1})


@pytest.fixture
def bedrock(aws: boto3.Session, local_endpoint: LocalEndpoint) -> Any:
    local_endpoint.bedrock.checkpoints = lambda: {CHECKPOINT}
    return aws.client("bedrock", config=UNCHECKED)


@pytest.fixture
def role(aws: boto3.Session) -> str:
    return _role(aws, "import", "bedrock.amazonaws.com")


def _role(aws: boto3.Session, name: str, service: str) -> str:
    document = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
        ],
    }
    return str(
        aws.client("iam").create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(document))[
            "Role"
        ]["Arn"]
    )


def create(bedrock: Any, role: str, **overrides: Any) -> str:
    request = {
        "modelName": "nova-sft-sandbox-v1",
        "roleArn": role,
        "modelSourceConfig": {"s3DataSource": {"s3Uri": CHECKPOINT}},
        "clientRequestToken": "a" * 64,
        **overrides,
    }
    return str(bedrock.create_custom_model(**request)["modelArn"])


def error_of(call: Any) -> tuple[str, str]:
    with pytest.raises(ClientError) as caught:
        call()
    return caught.value.response["Error"]["Code"], caught.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("overrides", "expected"),
    [
        ({"modelName": "n" * 64}, "modelName: length 64"),
        ({"modelName": "two--hyphens"}, "does not match"),
        ({"clientRequestToken": "arn:aws:sagemaker:x"}, "clientRequestToken"),
        ({"roleArn": "import"}, "roleArn"),
        (
            {"modelSourceConfig": {"s3DataSource": {"s3Uri": "s3://my-bucket/ckpt"}}},
            "not a SageMaker escrow checkpoint",
        ),
        ({"modelSourceConfig": {"s3DataSource": {"s3Uri": "https://x/y"}}}, "does not match"),
        ({"modelTags": [{"key": "k"}]}, "missing ['value']"),
    ],
)
def test_requests_outside_the_service_model_are_refused(
    bedrock: Any, role: str, overrides: dict[str, Any], expected: str
) -> None:
    code, message = error_of(lambda: create(bedrock, role, **overrides))
    assert code == "ValidationException"
    assert expected in message


def test_the_role_must_exist_and_trust_bedrock(aws: boto3.Session, bedrock: Any) -> None:
    missing = "arn:aws:iam::123456789012:role/nobody"
    assert "does not exist" in error_of(lambda: create(bedrock, missing))[1]
    lambda_role = _role(aws, "other", "lambda.amazonaws.com")
    assert (
        "does not trust bedrock.amazonaws.com" in error_of(lambda: create(bedrock, lambda_role))[1]
    )


def test_a_model_is_creating_then_active_and_a_token_answers_with_what_it_made(
    bedrock: Any, role: str, local_endpoint: LocalEndpoint
) -> None:
    arn = create(bedrock, role)
    assert arn.startswith("arn:aws:bedrock:us-east-1:123456789012:custom-model/imported/")
    assert bedrock.get_custom_model(modelIdentifier=arn)["modelStatus"] == "Creating"
    assert create(bedrock, role) == arn  # the same token: no second import
    assert len(local_endpoint.bedrock.models) == 1
    conflict = error_of(lambda: create(bedrock, role, clientRequestToken="b" * 64))
    assert conflict[0] == "ConflictException"
    local_endpoint.bedrock.clock.advance(IMPORT_SECONDS)
    model = bedrock.get_custom_model(modelIdentifier="nova-sft-sandbox-v1")
    assert (model["modelArn"], model["modelStatus"]) == (arn, "Active")


def test_an_import_of_an_unknown_checkpoint_fails_with_its_reason(
    bedrock: Any, role: str, local_endpoint: LocalEndpoint
) -> None:
    gone = "s3://customer-escrow-123456789012-smtj-ffffffff/gone/step_1"
    arn = create(bedrock, role, modelSourceConfig={"s3DataSource": {"s3Uri": gone}})
    local_endpoint.bedrock.clock.advance(IMPORT_SECONDS)
    model = bedrock.get_custom_model(modelIdentifier=arn)
    assert model["modelStatus"] == "Failed"
    assert model["failureMessage"] == f"no checkpoint at {gone}"


def test_a_deployment_serves_converse_once_active_and_not_after_deletion(
    aws: boto3.Session, bedrock: Any, role: str, local_endpoint: LocalEndpoint
) -> None:
    model = create(bedrock, role)

    def deploy() -> Any:
        return bedrock.create_custom_model_deployment(
            modelDeploymentName="nova-sft-sandbox-v1", modelArn=model
        )

    assert "is not Active" in error_of(deploy)[1]
    local_endpoint.bedrock.clock.advance(IMPORT_SECONDS)
    arn = deploy()["customModelDeploymentArn"]
    runtime = aws.client("bedrock-runtime")

    def converse() -> Any:
        return runtime.converse(
            modelId=arn, messages=[{"role": "user", "content": [{"text": "Hello there"}]}]
        )

    assert error_of(converse)[0] == "ValidationException"  # still Creating
    local_endpoint.bedrock.clock.advance(DEPLOY_SECONDS)
    answer = converse()["output"]["message"]["content"][0]["text"]
    assert "nova-sft-sandbox-v1" in answer
    assert answer.endswith("You asked: Hello there")
    assert converse()["output"] == converse()["output"]  # deterministic
    bedrock.delete_custom_model_deployment(customModelDeploymentIdentifier=arn)
    assert error_of(converse)[0] == "ResourceNotFoundException"
    assert (
        error_of(
            lambda: bedrock.get_custom_model_deployment(
                customModelDeploymentIdentifier="nova-sft-sandbox-v1"
            )
        )[0]
        == "ResourceNotFoundException"
    )


def test_an_update_keeps_the_fields_it_does_not_name_when_enabled(
    aws: boto3.Session, local_endpoint: LocalEndpoint
) -> None:
    local_endpoint.registry_updates.enabled = True
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="g")
    arn = sm.create_model_package(
        ModelPackageGroupName="g",
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={"CheckpointS3Uri": CHECKPOINT},
    )["ModelPackageArn"]
    sm.update_model_package(
        ModelPackageArn=arn,
        CustomerMetadataProperties={"CheckpointS3Uri": CHECKPOINT, "ServingStatus": "Deployed"},
    )
    package = sm.describe_model_package(ModelPackageName=arn)
    assert package["ModelApprovalStatus"] == "Approved"  # moto alone would clear it
    assert package["CustomerMetadataProperties"]["ServingStatus"] == "Deployed"


def test_by_default_moto_clears_what_an_update_does_not_name(aws: boto3.Session) -> None:
    sm = aws.client("sagemaker")
    sm.create_model_package_group(ModelPackageGroupName="g")
    arn = sm.create_model_package(ModelPackageGroupName="g", ModelApprovalStatus="Approved")[
        "ModelPackageArn"
    ]
    sm.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"a": "b"})
    assert "ModelApprovalStatus" not in sm.describe_model_package(ModelPackageName=arn)

"""The serving state machine's definition (Amazon States Language, JSONPath), as a plain dict.

A pure builder (its state helpers in stacks/serving_asl.py): every input is an argument (CDK
tokens for ARNs are fine inside strings), no AWS call, no CDK import; `stacks/serving.py` turns
it into the deployed definition, and the local rehearsal runs that deployed definition from
cdk.out. The flow (docs/decisions/0019):

    describe the package (its current status, not the event's) ─▶ route
      Approved ─▶ checks (checkpoint recorded, LoRA) ─▶ find or import the custom model
               ─▶ wait until Active (re-checking the approval at each poll)
               ─▶ find or create the deployment ─▶ wait until Active
               ─▶ still approved? record Deployed : take it down
      Rejected (when configured) or an undeploy request ─▶ delete the deployment ─▶ record
      any failure ─▶ record the reason on the package ─▶ publish it to the topic ─▶ fail

Every lookup is by the name derived from the environment and the package version, and every
create sends a client request token derived from the package ARN: a repeated event continues
from what the first one made. AWS SDK integrations call the APIs; Wait states do the waiting.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.serving_config import (
    KEY_SERVING_DEPLOYMENT,
    KEY_SERVING_FAILURE,
    KEY_SERVING_MODEL,
    KEY_SERVING_STATUS,
    REQUEST_UNDEPLOY,
    TAG_CHECKPOINT,
    TAG_PACKAGE,
    ServingConfig,
)
from stacks.serving_asl import (
    NOT_FOUND,
    POLL_SECONDS,
    RETRY_BEDROCK,
    describe,
    equals,
    fail_to,
    failure,
    record,
    record_states,
    task,
)
from stacks.serving_superseded import superseded_states


@dataclass(frozen=True)
class ServingInputs:
    """What the definition names: the environment, its group, the import role, the data key
    (the custom model's key) and the notification topic."""

    environment: str
    group_name: str
    import_role_arn: str
    key_arn: str
    topic_arn: str
    serving: ServingConfig


def _entry_states(inputs: ServingInputs) -> dict[str, Any]:
    take_down = [equals("$.package.Status", "Rejected", "FindDeploymentToDelete")]
    return {
        "DescribePackage": task(
            "sagemaker:describeModelPackage",
            {"ModelPackageName.$": "$.detail.ModelPackageArn"},
            ResultSelector={
                "Arn.$": "$.ModelPackageArn",
                "Version.$": "$.ModelPackageVersion",
                "Group.$": "$.ModelPackageGroupName",
                "Status.$": "$.ModelApprovalStatus",
            },
            ResultPath="$.package",
            Catch=[fail_to("UnreadablePackage")],
            Next="InThisGroup",
        ),
        "UnreadablePackage": {
            "Type": "Pass",
            "Parameters": {
                KEY_SERVING_STATUS: "Failed",
                f"{KEY_SERVING_FAILURE}.$": "States.Format('{}: {}', $.failure.Error, "
                "$.failure.Cause)",
            },
            "ResultPath": "$.record",
            "Next": "Notify",
        },
        "InThisGroup": {
            "Type": "Choice",
            "Choices": [equals("$.package.Group", inputs.group_name, "Names")],
            "Default": "OtherGroup",
        },
        "OtherGroup": {
            "Type": "Fail",
            "Error": "NotThisEnvironment",
            "Cause": f"the package is not in {inputs.group_name}, which this state machine serves",
        },
        "Names": {
            "Type": "Pass",
            "Parameters": {
                "Name.$": f"States.Format('nova-sft-{inputs.environment}-v{{}}', "
                "$.package.Version)",
                # 64 hex digits: Bedrock's token pattern; the same package, the same token.
                "ModelToken.$": "States.Hash($.package.Arn, 'SHA-256')",
                "DeploymentToken.$": "States.Hash(States.Format('{}#deployment', "
                "$.package.Arn), 'SHA-256')",
            },
            "ResultPath": "$.names",
            "Next": "IsRequest",
        },
        "IsRequest": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.detail.Request", "IsPresent": True, "Next": "Request"}],
            "Default": "Route",
        },
        "Request": {
            "Type": "Choice",
            "Choices": [equals("$.detail.Request", REQUEST_UNDEPLOY, "FindDeploymentToDelete")],
            "Default": "Route",
        },
        "Route": {
            "Type": "Choice",
            "Choices": [
                equals("$.package.Status", "Approved", "RefreshForImport"),
                *(take_down if inputs.serving.take_down_rejected else []),
            ],
            "Default": "NothingToDo",
        },
        "NothingToDo": {"Type": "Succeed"},
    }


def _import_states(inputs: ServingInputs) -> dict[str, Any]:
    metadata = "$.current.CustomerMetadataProperties"
    return {
        "RefreshForImport": describe("CheckRecorded"),
        "CheckRecorded": {
            "Type": "Choice",
            "Choices": [
                {
                    "Not": {"Variable": f"{metadata}.CheckpointS3Uri", "IsPresent": True},
                    "Next": "NoCheckpoint",
                },
                {
                    "Not": {"Variable": f"{metadata}.Technique", "IsPresent": True},
                    "Next": "NoCheckpoint",
                },
                equals(f"{metadata}.Technique", "FullRank", "FullRankCheckpoint"),
            ],
            "Default": "FindModel",
        },
        "NoCheckpoint": failure(
            "NoCheckpoint", "the package records no CheckpointS3Uri or Technique to import"
        ),
        # Bedrock documents on-demand inference for Nova checkpoints of SageMaker only for PEFT.
        "FullRankCheckpoint": failure(
            "FullRankNotOnDemand",
            "a full-rank checkpoint cannot be deployed on demand (Bedrock documents on-demand "
            "inference of SageMaker-trained Nova checkpoints for LoRA only)",
        ),
        "FindModel": task(
            "bedrock:getCustomModel",
            {"ModelIdentifier.$": "$.names.Name"},
            ResultPath="$.model",
            Catch=[
                {"ErrorEquals": [NOT_FOUND], "ResultPath": "$.lookup", "Next": "ImportModel"},
                fail_to(),
            ],
            Next="ModelReady",
        ),
        "ImportModel": task(
            "bedrock:createCustomModel",
            {
                "ModelName.$": "$.names.Name",
                "ModelSourceConfig": {"S3DataSource": {"S3Uri.$": f"{metadata}.CheckpointS3Uri"}},
                "RoleArn": inputs.import_role_arn,
                "ModelKmsKeyArn": inputs.key_arn,
                "ClientRequestToken.$": "$.names.ModelToken",
                "ModelTags": [
                    {"Key": TAG_PACKAGE, "Value.$": "$.package.Arn"},
                    {"Key": TAG_CHECKPOINT, "Value.$": f"{metadata}.CheckpointS3Uri"},
                ],
            },
            ResultPath="$.created",
            Catch=[fail_to()],
            Next="PollModel",
        ),
        "WaitForModel": {"Type": "Wait", "Seconds": POLL_SECONDS, "Next": "StillApproved"},
        "StillApproved": describe("ApprovedWhileImporting"),
        "ApprovedWhileImporting": {
            "Type": "Choice",
            "Choices": [equals("$.current.ModelApprovalStatus", "Approved", "PollModelAgain")],
            "Default": "ImportStopped",
        },
        # The import cannot be cancelled: the model is kept (deploying it later needs no import).
        "ImportStopped": record(
            "ImportStopped",
            **{f"{KEY_SERVING_MODEL}.$": "$.model.ModelArn"},
        ),
        "PollModel": task(
            "bedrock:getCustomModel",
            {"ModelIdentifier.$": "$.created.ModelArn"},
            ResultPath="$.model",
            Catch=[fail_to()],
            Next="ModelReady",
        ),
        "PollModelAgain": task(
            "bedrock:getCustomModel",
            {"ModelIdentifier.$": "$.model.ModelArn"},
            ResultPath="$.model",
            Catch=[fail_to()],
            Next="ModelReady",
        ),
        "ModelReady": {
            "Type": "Choice",
            "Choices": [
                equals("$.model.ModelStatus", "Active", "FindDeployment"),
                equals("$.model.ModelStatus", "Failed", "ModelFailed"),
            ],
            "Default": "WaitForModel",
        },
        "ModelFailed": {
            "Type": "Choice",
            "Choices": [
                {"Variable": "$.model.FailureMessage", "IsPresent": True, "Next": "ImportFailed"}
            ],
            "Default": "ImportFailedWithoutReason",
        },
        "ImportFailed": failure(
            "ImportFailed",
            "custom model {} failed: {}",
            "$.model.ModelArn",
            "$.model.FailureMessage",
        ),
        "ImportFailedWithoutReason": failure(
            "ImportFailed", "custom model {} failed (no reason given)", "$.model.ModelArn"
        ),
    }


def _deployment_states() -> dict[str, Any]:
    return {
        "FindDeployment": task(
            "bedrock:getCustomModelDeployment",
            {"CustomModelDeploymentIdentifier.$": "$.names.Name"},
            ResultPath="$.deployment",
            Catch=[
                {"ErrorEquals": [NOT_FOUND], "ResultPath": "$.lookup", "Next": "CreateDeployment"},
                fail_to(),
            ],
            Next="DeploymentReady",
        ),
        "CreateDeployment": task(
            "bedrock:createCustomModelDeployment",
            {
                "ModelDeploymentName.$": "$.names.Name",
                "ModelArn.$": "$.model.ModelArn",
                "Description.$": "States.Format('On-demand deployment of {}', $.package.Arn)",
                "ClientRequestToken.$": "$.names.DeploymentToken",
                "Tags": [{"Key": TAG_PACKAGE, "Value.$": "$.package.Arn"}],
            },
            ResultSelector={
                "CustomModelDeploymentArn.$": "$.CustomModelDeploymentArn",
                "Status": "Creating",
            },
            ResultPath="$.deployment",
            Catch=[fail_to()],
            Next="WaitForDeployment",
        ),
        "WaitForDeployment": {"Type": "Wait", "Seconds": POLL_SECONDS, "Next": "PollDeployment"},
        "PollDeployment": task(
            "bedrock:getCustomModelDeployment",
            {"CustomModelDeploymentIdentifier.$": "$.deployment.CustomModelDeploymentArn"},
            ResultPath="$.deployment",
            Catch=[fail_to()],
            Next="DeploymentReady",
        ),
        "DeploymentReady": {
            "Type": "Choice",
            "Choices": [
                equals("$.deployment.Status", "Active", "ConfirmApproved"),
                equals("$.deployment.Status", "Failed", "DeploymentFailed"),
            ],
            "Default": "WaitForDeployment",
        },
        "DeploymentFailed": failure(
            "DeploymentFailed",
            "deployment {} failed: {}",
            "$.deployment.CustomModelDeploymentArn",
            "States.JsonToString($.deployment)",
        ),
        "ConfirmApproved": describe("ApprovedWhenServing"),
        # Rejected while deploying: nothing stays up without an approval.
        "ApprovedWhenServing": {
            "Type": "Choice",
            "Choices": [equals("$.current.ModelApprovalStatus", "Approved", "Deployed")],
            "Default": "DeleteDeployment",
        },
        "Deployed": record(
            "Deployed",
            "SaveRecord",
            **{
                f"{KEY_SERVING_MODEL}.$": "$.model.ModelArn",
                f"{KEY_SERVING_DEPLOYMENT}.$": "$.deployment.CustomModelDeploymentArn",
            },
        ),
    }


def _take_down_states(inputs: ServingInputs) -> dict[str, Any]:
    after_delete = "DeleteModel" if inputs.serving.delete_custom_model else "TakenDown"
    states: dict[str, Any] = {
        "FindDeploymentToDelete": task(
            "bedrock:getCustomModelDeployment",
            {"CustomModelDeploymentIdentifier.$": "$.names.Name"},
            ResultPath="$.deployment",
            Catch=[
                {"ErrorEquals": [NOT_FOUND], "ResultPath": "$.lookup", "Next": "NothingDeployed"},
                fail_to(),
            ],
            Next="DeleteDeployment",
        ),
        "NothingDeployed": {"Type": "Succeed"},
        "DeleteDeployment": task(
            "bedrock:deleteCustomModelDeployment",
            {"CustomModelDeploymentIdentifier.$": "$.deployment.CustomModelDeploymentArn"},
            ResultPath=None,
            Retry=[
                # A deployment still being created may refuse deletion for a while.
                {
                    "ErrorEquals": ["Bedrock.ConflictException"],
                    "IntervalSeconds": POLL_SECONDS,
                    "BackoffRate": 1.0,
                    "MaxAttempts": 45,
                },
                *RETRY_BEDROCK,
            ],
            Catch=[
                {"ErrorEquals": [NOT_FOUND], "ResultPath": "$.lookup", "Next": after_delete},
                fail_to(),
            ],
            Next=after_delete,
        ),
        "TakenDown": record(
            "TakenDown", **{f"{KEY_SERVING_DEPLOYMENT}.$": "$.deployment.CustomModelDeploymentArn"}
        ),
    }
    if inputs.serving.delete_custom_model:
        states["DeleteModel"] = task(
            "bedrock:deleteCustomModel",
            {"ModelIdentifier.$": "$.names.Name"},
            ResultPath=None,
            Catch=[
                {"ErrorEquals": [NOT_FOUND], "ResultPath": "$.lookup", "Next": "TakenDown"},
                fail_to(),
            ],
            Next="TakenDown",
        )
    return states


def serving_definition(inputs: ServingInputs) -> dict[str, Any]:
    """The state machine's definition for one environment."""
    superseded = inputs.serving.take_down_superseded
    return {
        "Comment": f"Serve approved checkpoints of {inputs.group_name} on Amazon Bedrock",
        "StartAt": "DescribePackage",
        "States": {
            **_entry_states(inputs),
            **_import_states(inputs),
            **_deployment_states(),
            **_take_down_states(inputs),
            **record_states(
                inputs.environment,
                inputs.topic_arn,
                after_deployed="ListDeployments" if superseded else "Done",
            ),
            **(superseded_states(inputs.environment) if superseded else {}),
        },
    }

"""The serving state machine's definition (Amazon States Language, JSONPath), as a plain dict.

A pure builder: every input is an argument (CDK tokens for ARNs are fine inside strings), no AWS
call, no CDK import; `stacks/serving.py` turns it into the deployed definition, and the local
rehearsal runs that deployed definition from cdk.out. The flow (docs/decisions/0019):

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
    KEY_SERVING_TIME,
    REQUEST_UNDEPLOY,
    TAG_CHECKPOINT,
    TAG_PACKAGE,
    ServingConfig,
)

SDK = "arn:aws:states:::aws-sdk:"
NOT_FOUND = "Bedrock.ResourceNotFoundException"
# Import takes about 10 minutes in AWS's samples, a deployment 2 to 45: poll once a minute.
POLL_SECONDS = 60
_RETRY_BEDROCK = [
    {
        "ErrorEquals": ["Bedrock.ThrottlingException", "Bedrock.InternalServerException"],
        "IntervalSeconds": 5,
        "BackoffRate": 2.0,
        "MaxAttempts": 4,
    }
]


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


def _task(action: str, parameters: dict[str, Any], **fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": SDK + action, "Parameters": parameters}
    if action.startswith("bedrock:"):
        state["Retry"] = _RETRY_BEDROCK
    state.update(fields)
    return state


def _fail_to(next_state: str = "RecordFailure") -> dict[str, Any]:
    return {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": next_state}


def _failure(error: str, cause_format: str, *paths: str) -> dict[str, Any]:
    """A Pass state that sets $.failure like a Catch would, for failures a Choice detects."""
    cause: dict[str, Any] = (
        {"Cause.$": f"States.Format('{cause_format}', {', '.join(paths)})"}
        if paths
        else {"Cause": cause_format}
    )
    return {
        "Type": "Pass",
        "Parameters": {"Error": error, **cause},
        "ResultPath": "$.failure",
        "Next": "RecordFailure",
    }


def _record(status: str, next_state: str = "RefreshPackage", **values: str) -> dict[str, Any]:
    return {
        "Type": "Pass",
        "Parameters": {
            KEY_SERVING_STATUS: status,
            f"{KEY_SERVING_TIME}.$": "$$.State.EnteredTime",
            **values,
        },
        "ResultPath": "$.record",
        "Next": next_state,
    }


def _is(variable: str, value: str, next_state: str) -> dict[str, Any]:
    return {"Variable": variable, "StringEquals": value, "Next": next_state}


def _entry_states(inputs: ServingInputs) -> dict[str, Any]:
    take_down = [_is("$.package.Status", "Rejected", "FindDeploymentToDelete")]
    return {
        "DescribePackage": _task(
            "sagemaker:describeModelPackage",
            {"ModelPackageName.$": "$.detail.ModelPackageArn"},
            ResultSelector={
                "Arn.$": "$.ModelPackageArn",
                "Version.$": "$.ModelPackageVersion",
                "Group.$": "$.ModelPackageGroupName",
                "Status.$": "$.ModelApprovalStatus",
            },
            ResultPath="$.package",
            Catch=[_fail_to("UnreadablePackage")],
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
            "Choices": [_is("$.package.Group", inputs.group_name, "Names")],
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
            "Choices": [_is("$.detail.Request", REQUEST_UNDEPLOY, "FindDeploymentToDelete")],
            "Default": "Route",
        },
        "Route": {
            "Type": "Choice",
            "Choices": [
                _is("$.package.Status", "Approved", "RefreshForImport"),
                *(take_down if inputs.serving.take_down_rejected else []),
            ],
            "Default": "NothingToDo",
        },
        "NothingToDo": {"Type": "Succeed"},
    }


def _import_states(inputs: ServingInputs) -> dict[str, Any]:
    metadata = "$.current.CustomerMetadataProperties"
    return {
        "RefreshForImport": _describe("CheckRecorded"),
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
                _is(f"{metadata}.Technique", "FullRank", "FullRankCheckpoint"),
            ],
            "Default": "FindModel",
        },
        "NoCheckpoint": _failure(
            "NoCheckpoint", "the package records no CheckpointS3Uri or Technique to import"
        ),
        # Bedrock documents on-demand inference for Nova checkpoints of SageMaker only for PEFT.
        "FullRankCheckpoint": _failure(
            "FullRankNotOnDemand",
            "a full-rank checkpoint cannot be deployed on demand (Bedrock documents on-demand "
            "inference of SageMaker-trained Nova checkpoints for LoRA only)",
        ),
        "FindModel": _task(
            "bedrock:getCustomModel",
            {"ModelIdentifier.$": "$.names.Name"},
            ResultPath="$.model",
            Catch=[
                {"ErrorEquals": [NOT_FOUND], "ResultPath": "$.lookup", "Next": "ImportModel"},
                _fail_to(),
            ],
            Next="ModelReady",
        ),
        "ImportModel": _task(
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
            Catch=[_fail_to()],
            Next="PollModel",
        ),
        "WaitForModel": {"Type": "Wait", "Seconds": POLL_SECONDS, "Next": "StillApproved"},
        "StillApproved": _describe("ApprovedWhileImporting"),
        "ApprovedWhileImporting": {
            "Type": "Choice",
            "Choices": [_is("$.current.ModelApprovalStatus", "Approved", "PollModelAgain")],
            "Default": "ImportStopped",
        },
        # The import cannot be cancelled: the model is kept (deploying it later needs no import).
        "ImportStopped": _record(
            "ImportStopped",
            **{f"{KEY_SERVING_MODEL}.$": "$.model.ModelArn"},
        ),
        "PollModel": _task(
            "bedrock:getCustomModel",
            {"ModelIdentifier.$": "$.created.ModelArn"},
            ResultPath="$.model",
            Catch=[_fail_to()],
            Next="ModelReady",
        ),
        "PollModelAgain": _task(
            "bedrock:getCustomModel",
            {"ModelIdentifier.$": "$.model.ModelArn"},
            ResultPath="$.model",
            Catch=[_fail_to()],
            Next="ModelReady",
        ),
        "ModelReady": {
            "Type": "Choice",
            "Choices": [
                _is("$.model.ModelStatus", "Active", "FindDeployment"),
                _is("$.model.ModelStatus", "Failed", "ModelFailed"),
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
        "ImportFailed": _failure(
            "ImportFailed",
            "custom model {} failed: {}",
            "$.model.ModelArn",
            "$.model.FailureMessage",
        ),
        "ImportFailedWithoutReason": _failure(
            "ImportFailed", "custom model {} failed (no reason given)", "$.model.ModelArn"
        ),
    }


def _deployment_states() -> dict[str, Any]:
    return {
        "FindDeployment": _task(
            "bedrock:getCustomModelDeployment",
            {"CustomModelDeploymentIdentifier.$": "$.names.Name"},
            ResultPath="$.deployment",
            Catch=[
                {"ErrorEquals": [NOT_FOUND], "ResultPath": "$.lookup", "Next": "CreateDeployment"},
                _fail_to(),
            ],
            Next="DeploymentReady",
        ),
        "CreateDeployment": _task(
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
            Catch=[_fail_to()],
            Next="WaitForDeployment",
        ),
        "WaitForDeployment": {"Type": "Wait", "Seconds": POLL_SECONDS, "Next": "PollDeployment"},
        "PollDeployment": _task(
            "bedrock:getCustomModelDeployment",
            {"CustomModelDeploymentIdentifier.$": "$.deployment.CustomModelDeploymentArn"},
            ResultPath="$.deployment",
            Catch=[_fail_to()],
            Next="DeploymentReady",
        ),
        "DeploymentReady": {
            "Type": "Choice",
            "Choices": [
                _is("$.deployment.Status", "Active", "ConfirmApproved"),
                _is("$.deployment.Status", "Failed", "DeploymentFailed"),
            ],
            "Default": "WaitForDeployment",
        },
        "DeploymentFailed": _failure(
            "DeploymentFailed",
            "deployment {} failed: {}",
            "$.deployment.CustomModelDeploymentArn",
            "States.JsonToString($.deployment)",
        ),
        "ConfirmApproved": _describe("ApprovedWhenServing"),
        # Rejected while deploying: nothing stays up without an approval.
        "ApprovedWhenServing": {
            "Type": "Choice",
            "Choices": [_is("$.current.ModelApprovalStatus", "Approved", "Deployed")],
            "Default": "DeleteDeployment",
        },
        "Deployed": _record(
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
        "FindDeploymentToDelete": _task(
            "bedrock:getCustomModelDeployment",
            {"CustomModelDeploymentIdentifier.$": "$.names.Name"},
            ResultPath="$.deployment",
            Catch=[
                {"ErrorEquals": [NOT_FOUND], "ResultPath": "$.lookup", "Next": "NothingDeployed"},
                _fail_to(),
            ],
            Next="DeleteDeployment",
        ),
        "NothingDeployed": {"Type": "Succeed"},
        "DeleteDeployment": _task(
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
                *_RETRY_BEDROCK,
            ],
            Catch=[
                {"ErrorEquals": [NOT_FOUND], "ResultPath": "$.lookup", "Next": after_delete},
                _fail_to(),
            ],
            Next=after_delete,
        ),
        "TakenDown": _record(
            "TakenDown", **{f"{KEY_SERVING_DEPLOYMENT}.$": "$.deployment.CustomModelDeploymentArn"}
        ),
    }
    if inputs.serving.delete_custom_model:
        states["DeleteModel"] = _task(
            "bedrock:deleteCustomModel",
            {"ModelIdentifier.$": "$.names.Name"},
            ResultPath=None,
            Catch=[
                {"ErrorEquals": [NOT_FOUND], "ResultPath": "$.lookup", "Next": "TakenDown"},
                _fail_to(),
            ],
            Next="TakenDown",
        )
    return states


def _describe(next_state: str) -> dict[str, Any]:
    return _task(
        "sagemaker:describeModelPackage",
        {"ModelPackageName.$": "$.package.Arn"},
        ResultSelector={
            "ModelApprovalStatus.$": "$.ModelApprovalStatus",
            "CustomerMetadataProperties.$": "$.CustomerMetadataProperties",
        },
        ResultPath="$.current",
        Catch=[_fail_to("RecordUnsaved")],
        Next=next_state,
    )


def _record_states(inputs: ServingInputs) -> dict[str, Any]:
    return {
        "RecordFailure": _record(
            "Failed",
            **{
                f"{KEY_SERVING_FAILURE}.$": "States.Format('{}: {}', $.failure.Error, "
                "$.failure.Cause)"
            },
        ),
        "RefreshPackage": _describe("SaveRecord"),
        # UpdateModelPackage keeps the fields it is not given; the metadata is sent whole, with
        # the record merged in. No approval status is sent (the role may not set Approved).
        "SaveRecord": _task(
            "sagemaker:updateModelPackage",
            {
                "ModelPackageArn.$": "$.package.Arn",
                "CustomerMetadataProperties.$": "States.JsonMerge("
                "$.current.CustomerMetadataProperties, $.record, false)",
            },
            ResultPath=None,
            Catch=[_fail_to("RecordUnsaved")],
            Next="Outcome",
        ),
        "RecordUnsaved": {
            "Type": "Pass",
            "Parameters": {
                KEY_SERVING_STATUS: "Failed",
                f"{KEY_SERVING_FAILURE}.$": "States.Format('the package could not be updated "
                "({}: {})', $.failure.Error, $.failure.Cause)",
            },
            "ResultPath": "$.record",
            "Next": "Notify",
        },
        "Outcome": {
            "Type": "Choice",
            "Choices": [_is(f"$.record.{KEY_SERVING_STATUS}", "Failed", "Notify")],
            "Default": "Done",
        },
        "Done": {"Type": "Succeed"},
        "Notify": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {
                "TopicArn": inputs.topic_arn,
                "Subject": f"nova-sft {inputs.environment}: serving a checkpoint failed",
                "Message.$": f"States.Format('Serving {{}} in {inputs.environment} failed: {{}}', "
                f"$.detail.ModelPackageArn, $.record.{KEY_SERVING_FAILURE})",
            },
            "ResultPath": None,
            "Next": "ServingFailed",
        },
        "ServingFailed": {
            "Type": "Fail",
            "Error": "ServingFailed",
            "CausePath": f"$.record.{KEY_SERVING_FAILURE}",
        },
    }


def serving_definition(inputs: ServingInputs) -> dict[str, Any]:
    """The state machine's definition for one environment."""
    return {
        "Comment": f"Serve approved checkpoints of {inputs.group_name} on Amazon Bedrock",
        "StartAt": "DescribePackage",
        "States": {
            **_entry_states(inputs),
            **_import_states(inputs),
            **_deployment_states(),
            **_take_down_states(inputs),
            **_record_states(inputs),
        },
    }

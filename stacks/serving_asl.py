"""Builders of States Language states for the serving definition (stacks/serving_definition.py):
AWS SDK tasks with Bedrock's retries, catches that record a failure, Pass states that set a
failure or a record, and the package re-read before each record."""

from __future__ import annotations

from typing import Any

from pipeline.serving_config import KEY_SERVING_FAILURE, KEY_SERVING_STATUS, KEY_SERVING_TIME

SDK = "arn:aws:states:::aws-sdk:"
NOT_FOUND = "Bedrock.ResourceNotFoundException"
# Import takes about 10 minutes in AWS's samples, a deployment 2 to 45: poll once a minute.
POLL_SECONDS = 60
RETRY_BEDROCK = [
    {
        "ErrorEquals": ["Bedrock.ThrottlingException", "Bedrock.InternalServerException"],
        "IntervalSeconds": 5,
        "BackoffRate": 2.0,
        "MaxAttempts": 4,
    }
]


def task(action: str, parameters: dict[str, Any], **fields: Any) -> dict[str, Any]:
    state: dict[str, Any] = {"Type": "Task", "Resource": SDK + action, "Parameters": parameters}
    if action.startswith("bedrock:"):
        state["Retry"] = RETRY_BEDROCK
    state.update(fields)
    return state


def fail_to(next_state: str = "RecordFailure") -> dict[str, Any]:
    return {"ErrorEquals": ["States.ALL"], "ResultPath": "$.failure", "Next": next_state}


def failure(error: str, cause_format: str, *paths: str) -> dict[str, Any]:
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


def record(status: str, next_state: str = "RefreshPackage", **values: str) -> dict[str, Any]:
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


def equals(variable: str, value: str, next_state: str) -> dict[str, Any]:
    return {"Variable": variable, "StringEquals": value, "Next": next_state}


def describe(next_state: str) -> dict[str, Any]:
    return task(
        "sagemaker:describeModelPackage",
        {"ModelPackageName.$": "$.package.Arn"},
        ResultSelector={
            "ModelApprovalStatus.$": "$.ModelApprovalStatus",
            "CustomerMetadataProperties.$": "$.CustomerMetadataProperties",
        },
        ResultPath="$.current",
        Catch=[fail_to("RecordUnsaved")],
        Next=next_state,
    )


def record_states(
    environment: str, topic_arn: str, *, after_deployed: str = "Done"
) -> dict[str, Any]:
    """Record `$.record` on the package (merged into its metadata); publish a failure to
    `topic_arn` and fail; go on to `after_deployed` after a Deployed record; else succeed."""
    return {
        "RecordFailure": record(
            "Failed",
            **{
                f"{KEY_SERVING_FAILURE}.$": "States.Format('{}: {}', $.failure.Error, "
                "$.failure.Cause)"
            },
        ),
        "RefreshPackage": describe("SaveRecord"),
        # UpdateModelPackage keeps the fields it is not given; the metadata is sent whole, with
        # the record merged in. No approval status is sent (the role may not set Approved).
        "SaveRecord": task(
            "sagemaker:updateModelPackage",
            {
                "ModelPackageArn.$": "$.package.Arn",
                "CustomerMetadataProperties.$": "States.JsonMerge("
                "$.current.CustomerMetadataProperties, $.record, false)",
            },
            ResultPath=None,
            Catch=[fail_to("RecordUnsaved")],
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
            "Choices": [
                equals(f"$.record.{KEY_SERVING_STATUS}", "Failed", "Notify"),
                equals(f"$.record.{KEY_SERVING_STATUS}", "Deployed", after_deployed),
            ],
            "Default": "Done",
        },
        "Done": {"Type": "Succeed"},
        "Notify": {
            "Type": "Task",
            "Resource": "arn:aws:states:::sns:publish",
            "Parameters": {
                "TopicArn": topic_arn,
                "Subject": f"nova-sft {environment}: serving a checkpoint failed",
                "Message.$": f"States.Format('Serving {{}} in {environment} failed: {{}}', "
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

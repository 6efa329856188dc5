"""Take down superseded checkpoints: after a version is recorded Deployed, delete every other
deployment of this environment and record TakenDown on its package (stacks/serving_definition.py
adds these states when `serving.take_down` names "superseded").

The deployments are listed by their name prefix `nova-sft-<env>-v`; each one's package is read
from its `nova-sft:model-package-arn` tag (CreateDeployment sets it). A deployment without the
tag was not made by this machine and is left alone.
"""

from __future__ import annotations

from typing import Any

from pipeline.serving_config import (
    KEY_SERVING_STATUS,
    KEY_SERVING_TIME,
    TAG_PACKAGE,
)
from stacks.serving_asl import NOT_FOUND, fail_to, task

KEY_SUPERSEDED_BY = "ServingSupersededBy"


def _old_deployment_states() -> dict[str, Any]:
    """One listed deployment: skip the current one, else delete it and record it."""
    return {
        "IsCurrent": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.Name", "StringEqualsPath": "$.Current", "Next": "Keep"}],
            "Default": "OldPackage",
        },
        "Keep": {"Type": "Succeed"},
        "OldPackage": task(
            "bedrock:listTagsForResource",
            {"ResourceARN.$": "$.Arn"},
            ResultSelector={"Packages.$": f"$.Tags[?(@.Key == '{TAG_PACKAGE}')].Value"},
            ResultPath="$.tags",
            Next="CountPackages",
        ),
        "CountPackages": {
            "Type": "Pass",
            "Parameters": {"Count.$": "States.ArrayLength($.tags.Packages)"},
            "ResultPath": "$.count",
            "Next": "Ours",
        },
        "Ours": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.count.Count", "NumericEquals": 1, "Next": "DeleteOld"}],
            "Default": "Keep",
        },
        "DeleteOld": task(
            "bedrock:deleteCustomModelDeployment",
            {"CustomModelDeploymentIdentifier.$": "$.Arn"},
            ResultPath=None,
            Catch=[{"ErrorEquals": [NOT_FOUND], "ResultPath": None, "Next": "DescribeOld"}],
            Next="DescribeOld",
        ),
        "DescribeOld": task(
            "sagemaker:describeModelPackage",
            {"ModelPackageName.$": "States.ArrayGetItem($.tags.Packages, 0)"},
            ResultSelector={"Metadata.$": "$.CustomerMetadataProperties"},
            ResultPath="$.old",
            Next="SupersededRecord",
        ),
        "SupersededRecord": {
            "Type": "Pass",
            "Parameters": {
                KEY_SERVING_STATUS: "TakenDown",
                f"{KEY_SERVING_TIME}.$": "$$.State.EnteredTime",
                f"{KEY_SUPERSEDED_BY}.$": "$.Current",
            },
            "ResultPath": "$.superseded",
            "Next": "RecordOld",
        },
        "RecordOld": task(
            "sagemaker:updateModelPackage",
            {
                "ModelPackageArn.$": "States.ArrayGetItem($.tags.Packages, 0)",
                "CustomerMetadataProperties.$": "States.JsonMerge($.old.Metadata, "
                "$.superseded, false)",
            },
            ResultPath=None,
            End=True,
        ),
    }


def superseded_states(environment: str) -> dict[str, Any]:
    """List the environment's deployments and take down every one but `$.names.Name`."""
    return {
        "ListDeployments": task(
            "bedrock:listCustomModelDeployments",
            {"NameContains": f"nova-sft-{environment}-v", "MaxResults": 1000},
            ResultSelector={"Items.$": "$.ModelDeploymentSummaries"},
            ResultPath="$.others",
            Catch=[fail_to("SupersededFailed")],
            Next="TakeDownSuperseded",
        ),
        "TakeDownSuperseded": {
            "Type": "Map",
            "ItemsPath": "$.others.Items",
            "ItemSelector": {
                "Name.$": "$$.Map.Item.Value.CustomModelDeploymentName",
                "Arn.$": "$$.Map.Item.Value.CustomModelDeploymentArn",
                "Current.$": "$.names.Name",
            },
            "MaxConcurrency": 1,
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "IsCurrent",
                "States": _old_deployment_states(),
            },
            "ResultPath": None,
            "Catch": [fail_to("SupersededFailed")],
            "Next": "Done",
        },
        # This version is served and recorded; only the older ones' take-down failed.
        "SupersededFailed": {
            "Type": "Pass",
            "Parameters": {
                "ServingFailure.$": "States.Format('deployed, but superseded deployments "
                "were not all taken down ({}: {})', $.failure.Error, $.failure.Cause)",
            },
            "ResultPath": "$.record",
            "Next": "Notify",
        },
    }

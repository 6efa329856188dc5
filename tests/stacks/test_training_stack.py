"""The TrainingStack: functions, model package group, notifications, pipeline resource, outputs."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk.assertions import Template

from pipeline.config import read_cdk_json
from pipeline.definition_cache import DEFAULT_CACHE_DIR, DEFINITION_CACHE_CONTEXT
from stacks.training_stack import GROUP_DESCRIPTION, definition_cache_dir
from tests.cloud_assembly import ENVIRONMENTS, Assembly
from tests.stacks.conftest import construct_paths

Flat = Callable[[Mapping[str, Any]], dict[str, Any]]

FUNCTIONS = {
    "Functions/ValidateDataset": ("lambdas.validate_dataset.handler", 1769, 600),
    "Functions/PrepareRecipe": ("lambdas.prepare_recipe.handler", 256, 60),
    "Functions/RegisterCheckpoint": ("lambdas.register_checkpoint.handler", 1769, 600),
    "Functions/PrepareEvaluation": ("lambdas.prepare_evaluation.handler", 1769, 600),
    # The evaluate-only pipeline's record step (stacks/evaluate_pipeline.py, decision 0017).
    "Functions/RecordEvaluation": ("lambdas.record_evaluation.handler", 1769, 600),
}


def by_path(template: dict[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    """Resources of one type, keyed by their construct path inside the stack."""
    paths = construct_paths(template)
    return {
        paths[logical_id]: resource
        for logical_id, resource in template["Resources"].items()
        if resource["Type"] == kind
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_functions_share_one_asset_and_are_sized(assembly: Assembly, env: str) -> None:
    functions = by_path(assembly.template_json(env, "Training"), "AWS::Lambda::Function")
    assert set(functions) == set(FUNCTIONS)
    assets = {f["Metadata"]["aws:asset:path"] for f in functions.values()}
    keys = {f["Properties"]["Code"]["S3Key"] for f in functions.values()}
    assert len(assets) == 1
    assert len(keys) == 1
    for path, (handler, memory, timeout) in FUNCTIONS.items():
        properties = functions[path]["Properties"]
        assert properties["Handler"] == handler
        assert properties["Runtime"] == "python3.13"
        assert properties["Architectures"] == ["arm64"]
        assert (properties["MemorySize"], properties["Timeout"]) == (memory, timeout)
        assert "Environment" not in properties  # every input arrives in the step's event


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_function_logs_are_encrypted_kept_and_owned(
    assembly: Assembly, flat: Flat, env: str
) -> None:
    config = read_cdk_json().environment(env)
    template = flat(assembly.template_json(env, "Training"))
    groups = by_path(template, "AWS::Logs::LogGroup")
    functions = by_path(template, "AWS::Lambda::Function")
    policy = "Retain" if config.termination_protection else "Delete"
    for path in FUNCTIONS:
        group = groups[f"{path}Logs"]
        assert group["Properties"] == {
            "KmsKeyId": f"import:nova-sft-{env}-data:DataKeyArn",
            "RetentionInDays": config.log_retention_days,
        }
        assert group["DeletionPolicy"] == policy
        assert functions[path]["Properties"]["LoggingConfig"] == {"LogGroup": f"<{path}Logs>"}


def test_no_custom_resources_or_helper_functions(assembly: Assembly) -> None:
    # Log retention and bucket clean-up helpers would add Lambda functions with broad roles.
    for env in ENVIRONMENTS:
        for stack in ("Data", "Training"):
            kinds = {r["Type"] for r in assembly.template_json(env, stack)["Resources"].values()}
            assert not any(k.startswith("Custom::") for k in kinds)
            assert "AWS::CloudFormation::CustomResource" not in kinds


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_model_package_group_is_named_for_the_environment(assembly: Assembly, env: str) -> None:
    assembly.template(env, "Training").has_resource_properties(
        "AWS::SageMaker::ModelPackageGroup",
        {"ModelPackageGroupName": f"nova-sft-{env}-checkpoints"},
    )


def test_group_description_is_the_same_text_in_every_environment(assembly: Assembly) -> None:
    # CloudFormation replaces a group to change its description, and the group's fixed name is
    # held by the retained old one: the description must not follow configuration.
    descriptions = {
        env: group["Properties"]["ModelPackageGroupDescription"]
        for env in ENVIRONMENTS
        for group in by_path(
            assembly.template_json(env, "Training"), "AWS::SageMaker::ModelPackageGroup"
        ).values()
    }
    assert set(descriptions) == set(ENVIRONMENTS)
    assert set(descriptions.values()) == {GROUP_DESCRIPTION}
    assert not any(env in GROUP_DESCRIPTION for env in ENVIRONMENTS)


def test_state_changes_of_the_group_reach_the_topic(sandbox_training: Template, flat: Flat) -> None:
    template = flat(sandbox_training.to_json())
    rule = by_path(template, "AWS::Events::Rule")["Notifications/StateChangeRule"]
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {"ModelPackageGroupName": ["nova-sft-sandbox-checkpoints"]},
    }
    assert rule["Properties"]["Targets"] == [{"Arn": "<Notifications/Topic>", "Id": "Target0"}]
    assert rule["Properties"]["State"] == "ENABLED"
    # Named, so that the topic's key can name it without a reference loop.
    assert rule["Properties"]["Name"] == "nova-sft-sandbox-checkpoint-changes"


def test_topic_is_encrypted_ssl_only_and_publishable_by_the_rule_only(
    sandbox_training: Template, flat: Flat
) -> None:
    template = flat(sandbox_training.to_json())
    (topic,) = by_path(template, "AWS::SNS::Topic").values()
    assert topic["Properties"]["KmsMasterKeyId"] == "<Notifications/TopicKey.Arn>"
    (policy,) = by_path(template, "AWS::SNS::TopicPolicy").values()
    assert policy["Properties"]["PolicyDocument"]["Statement"] == [
        {
            "Action": "sns:Publish",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": "*",
            "Resource": "<Notifications/Topic>",
            "Sid": "AllowPublishThroughSSLOnly",
        },
        {
            "Action": "sns:Publish",
            "Condition": {"ArnEquals": {"aws:SourceArn": "<Notifications/StateChangeRule.Arn>"}},
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": "<Notifications/Topic>",
            "Sid": "AllowThisRuleToPublish",
        },
    ]


def test_topic_key_lets_eventbridge_encrypt_and_nothing_else(
    sandbox_training: Template, flat: Flat
) -> None:
    template = flat(sandbox_training.to_json())
    key = by_path(template, "AWS::KMS::Key")["Notifications/TopicKey"]
    assert key["Properties"]["EnableKeyRotation"] is True
    assert key["Properties"]["KeyPolicy"]["Statement"] == [
        {
            "Action": "kms:*",
            "Effect": "Allow",
            "Principal": {"AWS": "arn:aws:iam::<AWS::AccountId>:root"},
            "Resource": "*",
        },
        {
            "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
            # Only this rule of this account: no other rule can have SNS use the key for it.
            "Condition": {
                "ArnEquals": {
                    "aws:SourceArn": (
                        "arn:aws:events:us-east-1:<AWS::AccountId>:rule/"
                        "nova-sft-sandbox-checkpoint-changes"
                    )
                },
                "StringEquals": {"aws:SourceAccount": "<AWS::AccountId>"},
            },
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Resource": "*",
            "Sid": "AllowEventBridgeToPublishEncrypted",
        },
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_outputs(assembly: Assembly, flat: Flat, env: str) -> None:
    account = read_cdk_json().environment(env).account or "<AWS::AccountId>"
    outputs = flat(assembly.template_json(env, "Training"))["Outputs"]
    tracking = (
        {"MlflowTrackingServerArn": "<Tracking/Server.TrackingServerArn>"}
        if read_cdk_json().environment(env).creates_tracking_server
        else {}
    )
    assert {name: o["Value"] for name, o in outputs.items()} == {
        "PipelineName": f"nova-sft-{env}",
        "PipelineArn": f"arn:aws:sagemaker:us-east-1:{account}:pipeline/nova-sft-{env}",
        "ModelPackageGroupName": f"nova-sft-{env}-checkpoints",
        "NotificationTopicArn": "<Notifications/Topic>",
        "TrainingRoleArn": "<TrainingJobRole.Arn>",
        **tracking,
    }
    data_outputs = assembly.template_json(env, "Data")["Outputs"]
    assert {"DataBucketName", "ArtifactsBucketName", "AccessLogsBucketName"} <= set(data_outputs)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_pipeline_resource(assembly: Assembly, flat: Flat, env: str) -> None:
    raw = assembly.template_json(env, "Training")
    template = flat(raw)
    # The training pipeline and the evaluate-only pipeline (decision 0017), picked by name.
    pipelines = {
        p["Properties"]["PipelineName"]: p
        for p in by_path(template, "AWS::SageMaker::Pipeline").values()
    }
    assert set(pipelines) == {f"nova-sft-{env}", f"nova-sft-{env}-evaluate"}
    pipeline = pipelines[f"nova-sft-{env}"]
    properties = pipeline["Properties"]
    assert properties["RoleArn"] == "<PipelineRole.Arn>"
    assert set(properties["PipelineDefinition"]) == {"PipelineDefinitionBody"}
    # Created after its role's permissions and the group it registers into.
    paths = construct_paths(raw)
    assert {paths[d] for d in pipeline["DependsOn"]} >= {
        "PipelineRole",
        "PipelineRole/DefaultPolicy",
        "CheckpointsGroup",
    }
    # The evaluate-only pipeline runs with a role of its own, created after its permissions.
    evaluate = pipelines[f"nova-sft-{env}-evaluate"]
    assert evaluate["Properties"]["RoleArn"] == "<EvaluatePipeline/Role.Arn>"
    assert set(evaluate["Properties"]["PipelineDefinition"]) == {"PipelineDefinitionBody"}
    assert {paths[d] for d in evaluate["DependsOn"]} >= {
        "EvaluatePipeline/Role",
        "EvaluatePipeline/Role/DefaultPolicy",
    }


@pytest.mark.parametrize(
    ("context", "expected"),
    [
        ({}, DEFAULT_CACHE_DIR),
        ({DEFINITION_CACHE_CONTEXT: "false"}, None),
        ({DEFINITION_CACHE_CONTEXT: "False"}, None),
        ({DEFINITION_CACHE_CONTEXT: False}, None),
        ({DEFINITION_CACHE_CONTEXT: "/tmp/definitions"}, Path("/tmp/definitions")),
    ],
)
def test_definition_cache_folder_comes_from_context(
    context: dict[str, Any], expected: Path | None
) -> None:
    app = cdk.App(context=context)

    assert definition_cache_dir(cdk.Stack(app, "S")) == expected

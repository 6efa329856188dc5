"""The evaluate-only pipeline's resources (stacks/evaluate_pipeline.py), synthesized in a stack
of their own with cdk-nag: the record function's and the pipeline role's grants, and the
pipeline. (The TrainingStack adds them once the record handler is in the code asset.)"""

from __future__ import annotations

import json
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk.assertions import Match, Template
from cdk_nag import AwsSolutionsChecks

from pipeline.config import read_cdk_json
from stacks.evaluate_pipeline import EvaluatePipeline
from stacks.functions import PipelineFunctions
from tests.stacks.test_iam_conditions import (
    Reference,
    condition_keys,
    privileges,
    reference,
    supports,
)

__all__ = ["reference"]  # the fixture, shared with test_iam_conditions

ACCOUNT = "123456789012"


@pytest.fixture(scope="module")
def template() -> dict[str, Any]:
    config = read_cdk_json().environment("sandbox")
    app = cdk.App()
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    stack = cdk.Stack(app, "Unit", env=cdk.Environment(account=ACCOUNT, region="us-east-1"))
    data = s3.Bucket.from_bucket_name(stack, "Data", "unit-data")
    artifacts = s3.Bucket.from_bucket_name(stack, "Artifacts", "unit-artifacts")
    key = kms.Key.from_key_arn(stack, "Key", f"arn:aws:kms:us-east-1:{ACCOUNT}:key/k")
    functions = PipelineFunctions(
        stack,
        "Functions",
        data_bucket=data,
        artifacts_bucket=artifacts,
        key=key,
        model_package_group_name=config.model_package_group_name,
        log_retention_days=config.log_retention_days,
        retain_logs=False,
    )
    training = iam.Role.from_role_arn(stack, "Training", f"arn:aws:iam::{ACCOUNT}:role/train")
    EvaluatePipeline(
        stack,
        "Evaluate",
        config=config,
        functions=functions,
        training_role=training,
        artifacts_bucket=artifacts,
        key=key,
        cache_dir=None,
    )
    app.synth()  # cdk-nag: an unacknowledged finding fails here
    return dict(Template.from_stack(stack).to_json())


def statements_of(template: dict[str, Any], role_prefix: str) -> list[dict[str, Any]]:
    found = []
    for resource in template["Resources"].values():
        if resource["Type"] != "AWS::IAM::Policy":
            continue
        roles = [r["Ref"] for r in resource["Properties"]["Roles"]]
        if any(r.startswith(role_prefix) for r in roles):
            found.extend(resource["Properties"]["PolicyDocument"]["Statement"])
    return found


def actions(statements: list[dict[str, Any]]) -> set[str]:
    found: set[str] = set()
    for statement in statements:
        action = statement["Action"]
        found.update([action] if isinstance(action, str) else action)
    return found


def test_the_record_function_runs_the_record_handler(template: dict[str, Any]) -> None:
    functions = [
        r["Properties"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::Lambda::Function"
        and r["Properties"]["Handler"] == "lambdas.record_evaluation.handler"
    ]
    assert len(functions) == 1


def test_the_record_function_may_update_packages_but_never_approve(
    template: dict[str, Any],
) -> None:
    statements = statements_of(template, "FunctionsRecordEvaluationRole")
    assert actions(statements) == {
        "s3:ListBucket",
        "s3:GetObject",
        "s3:PutObject",
        "kms:Decrypt",
        "kms:GenerateDataKey",
        "sagemaker:DescribeModelPackage",
        "sagemaker:UpdateModelPackage",
        "sagemaker:ListModelPackages",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }
    (update,) = [s for s in statements if s["Action"] == "sagemaker:UpdateModelPackage"]
    assert update["Condition"] == {
        "StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "Approved"}
    }
    (writes,) = [s for s in statements if "s3:PutObject" in s["Action"]]
    text = json.dumps(writes["Resource"])
    assert "runs/*" in text
    assert "baselines/*" in text


def test_the_pipeline_role_runs_the_jobs_and_these_functions_only(
    template: dict[str, Any],
) -> None:
    statements = statements_of(template, "EvaluateRole")
    assert actions(statements) == {
        "sagemaker:CreateTrainingJob",
        "sagemaker:DescribeTrainingJob",
        "sagemaker:StopTrainingJob",
        "sagemaker:AddTags",
        "iam:PassRole",
        "lambda:InvokeFunction",
    }
    (invoke,) = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert len(invoke["Resource"]) == 3


def test_the_pipeline_is_named_after_the_environment(template: dict[str, Any]) -> None:
    Template.from_json(template).has_resource_properties(
        "AWS::SageMaker::Pipeline",
        {"PipelineName": "nova-sft-sandbox-evaluate", "RoleArn": Match.any_value()},
    )


def test_every_action_and_condition_key_exists_in_aws_reference(
    template: dict[str, Any], reference: Reference
) -> None:
    # The stage's templates are held to the reference in test_iam_conditions; these resources
    # join them once the TrainingStack adds them.
    found = [
        statement
        for resource in template["Resources"].values()
        if resource["Type"] == "AWS::IAM::Policy"
        for statement in resource["Properties"]["PolicyDocument"]["Statement"]
    ]
    for statement in found:
        for action in actions([statement]):
            entries = privileges(reference, action)
            assert entries, action
            service = action.split(":")[0]
            for keys in statement.get("Condition", {}).values():
                for key in keys:
                    known = set().union(*(condition_keys(reference, service, e) for e in entries))
                    assert supports(known, key), (action, key)

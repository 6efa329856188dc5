"""Experiment tracking in the stacks (stacks/tracking.py): the tracking server an environment
creates, who may log to it, and nothing at all where tracking is off."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import aws_cdk as cdk
from aws_cdk.assertions import Match, Template

from pipeline.config import read_cdk_json
from pipeline.step_names import REGISTER_STEPS
from stacks.stage import NovaSftStage
from stacks.tracking import REGISTER_ACTIONS, SERVER_LOGICAL_ID, TRAINING_ACTIONS
from tests.cloud_assembly import CLI_CONTEXT, Assembly, cdk_json_context
from tests.stacks.conftest import construct_paths, flatten
from tests.stacks.test_iam import expand, grants_of

MLFLOW_TYPES = ("AWS::SageMaker::MlflowTrackingServer", "AWS::SageMaker::MlflowApp")


def test_a_sandbox_without_tracking_has_no_server_and_no_mlflow_permission(
    assembly: Assembly,
) -> None:
    template = assembly.template_json("sandbox", "Training")
    text = json.dumps(template)
    assert "sagemaker-mlflow:" not in text
    assert not [r for r in template["Resources"].values() if r["Type"] in MLFLOW_TYPES]
    assert "MlflowTrackingServerArn" not in template.get("Outputs", {})


def test_dev_creates_a_small_retained_tracking_server_storing_under_mlflow(
    assembly: Assembly,
) -> None:
    template = assembly.template("dev", "Training")
    template.resource_count_is("AWS::SageMaker::MlflowTrackingServer", 1)
    servers = template.find_resources("AWS::SageMaker::MlflowTrackingServer")
    assert list(servers) == [SERVER_LOGICAL_ID]
    server = servers[SERVER_LOGICAL_ID]
    assert server["DeletionPolicy"] == server["UpdateReplacePolicy"] == "Retain"
    properties = server["Properties"]
    assert properties["TrackingServerName"] == "nova-sft-dev"
    assert properties["TrackingServerSize"] == "Small"
    assert properties["AutomaticModelRegistration"] is False
    flat = flatten(properties, construct_paths(assembly.template_json("dev", "Training")))
    assert flat["ArtifactStoreUri"] == "s3://import:nova-sft-dev-data:ArtifactsBucketName/mlflow"
    assert flat["RoleArn"] == "<Tracking/Role.Arn>"
    template.has_output("MlflowTrackingServerArn", {"Value": Match.any_value()})


def test_the_servers_role_reads_and_writes_its_prefix_only(assembly: Assembly) -> None:
    raw = assembly.template_json("dev", "Training")
    template = flatten(raw, construct_paths(raw))
    data = "import:nova-sft-dev-data"
    assert grants_of(template, "<Tracking/Role>") == (
        expand(["s3:ListBucket", "s3:GetBucketLocation"], [f"{data}:ArtifactsBucketArn"])
        | expand(
            ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"],
            [f"{data}:ArtifactsBucketArn/mlflow/*"],
        )
        | expand(["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], [f"{data}:DataKeyArn"])
    )
    (role,) = [
        r
        for logical_id, r in template["Resources"].items()
        if r["Type"] == "AWS::IAM::Role" and construct_paths(raw).get(logical_id) == "Tracking/Role"
    ]
    (trust,) = role["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": "111111111111"}}


def test_an_existing_servers_arn_is_granted_and_nothing_is_created(tmp_path: Path) -> None:
    arn = "arn:aws:sagemaker:us-east-1:111111111111:mlflow-tracking-server/team-tracker"
    dev = dataclasses.replace(read_cdk_json().environment("dev"), tracking=arn)
    app = cdk.App(context=cdk_json_context(CLI_CONTEXT), outdir=str(tmp_path))
    stage = NovaSftStage(app, "dev", config=dev)
    template = dict(Template.from_stack(stage.training).to_json())
    assert not [r for r in template["Resources"].values() if r["Type"] in MLFLOW_TYPES]
    flat = flatten(template, construct_paths(template))
    assert {g for g in grants_of(flat, "<TrainingJobRole>") if g[1] == arn} == expand(
        list(TRAINING_ACTIONS), [arn]
    )
    assert {
        g for g in grants_of(flat, "<Functions/RegisterCheckpointRole>") if g[1] == arn
    } == expand(list(REGISTER_ACTIONS), [arn])
    pipelines = {
        r["Properties"]["PipelineName"]: json.dumps(r["Properties"]["PipelineDefinition"])
        for r in template["Resources"].values()
        if r["Type"] == "AWS::SageMaker::Pipeline"
    }
    assert set(pipelines) == {"nova-sft-dev", "nova-sft-dev-evaluate"}
    # The prepare step and every register step (three per job variant, decision 0017).
    assert pipelines["nova-sft-dev"].count(arn) == 1 + len(REGISTER_STEPS) == 13
    # The evaluate-only pipeline and its record function do not log to MLflow.
    assert arn not in pipelines["nova-sft-dev-evaluate"]
    assert {g for g in grants_of(flat, "<Functions/RecordEvaluationRole>") if g[1] == arn} == set()

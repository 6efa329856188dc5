"""`deploy`, `undeploy` and `invoke`, and lineage's DEPLOYED mark, against the local endpoint."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.config import EnvironmentConfig
from pipeline.rehearsal.endpoint import LocalEndpoint
from pipeline.rehearsal.stand_in_bedrock import DEPLOY_SECONDS, IMPORT_SECONDS
from tests.pipeline.commands.helpers import MOTO_ACCOUNT, deploy, environment, register, run_cli


def with_serving_machine(aws: boto3.Session, env: EnvironmentConfig) -> str:
    """The environment's serving state machine, as the stack names it."""
    return str(
        aws.client("stepfunctions").create_state_machine(
            name=f"nova-sft-{env.name}-serving",
            definition=json.dumps({"StartAt": "A", "States": {"A": {"Type": "Succeed"}}}),
            roleArn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/serving",
        )["stateMachineArn"]
    )


def served(aws: boto3.Session, endpoint: LocalEndpoint, checkpoint: str) -> str:
    """An Active deployment of `checkpoint` on the stand-in Bedrock; its ARN."""
    endpoint.bedrock.checkpoints = lambda: {checkpoint}
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "bedrock.amazonaws.com"},
                "Action": "sts:AssumeRole",
            }
        ],
    }
    role = aws.client("iam").create_role(
        RoleName="import", AssumeRolePolicyDocument=json.dumps(trust)
    )["Role"]["Arn"]
    bedrock = aws.client("bedrock")
    model = bedrock.create_custom_model(
        modelName="nova-sft-dev-v1",
        roleArn=role,
        modelSourceConfig={"s3DataSource": {"s3Uri": checkpoint}},
    )["modelArn"]
    endpoint.bedrock.clock.advance(IMPORT_SECONDS)
    arn = bedrock.create_custom_model_deployment(
        modelDeploymentName="nova-sft-dev-v1", modelArn=model
    )["customModelDeploymentArn"]
    endpoint.bedrock.clock.advance(DEPLOY_SECONDS)
    return str(arn)


def record_served(aws: boto3.Session, package: str, deployment: str) -> None:
    sm = aws.client("sagemaker")
    metadata = sm.describe_model_package(ModelPackageName=package)["CustomerMetadataProperties"]
    sm.update_model_package(
        ModelPackageArn=package,
        ModelApprovalStatus="Approved",
        CustomerMetadataProperties={
            **metadata,
            "ServingStatus": "Deployed",
            "ServingDeploymentArn": deployment,
        },
    )


def test_deploy_starts_the_machine_for_an_approved_package_only(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    machine = with_serving_machine(aws, env)
    pending = register(aws, env, "job-one")
    common = ("--cdk-json", str(cdk_json))
    status, _, err = run_cli(capsys, "deploy", pending.model_package_arn, *common)
    assert status == 1
    assert "is PendingManualApproval: only an approved checkpoint is deployed" in err

    approved = register(aws, env, "job-two", approval="Approved")
    status, out, err = run_cli(capsys, "deploy", approved.model_package_arn, *common, "--json")
    assert (status, err) == (0, "")
    started = json.loads(out)["execution_arn"]
    execution = aws.client("stepfunctions").describe_execution(executionArn=started)
    assert execution["stateMachineArn"] == machine
    assert json.loads(execution["input"])["detail"] == {
        "ModelPackageArn": approved.model_package_arn,
        "ModelPackageGroupName": env.model_package_group_name,
        "Request": "deploy",
    }


def test_undeploy_asks_the_machine_to_take_it_down_whatever_its_status(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    with_serving_machine(aws, env)
    record = register(aws, env, "job-one", approval="Rejected")
    status, out, _ = run_cli(capsys, "undeploy", "1", "--env", "dev", "--cdk-json", str(cdk_json))
    assert status == 0
    assert out.startswith("undeploy: started arn:aws:states:us-east-1:123456789012:execution:")
    (listed,) = aws.client("stepfunctions").list_executions(
        stateMachineArn=f"arn:aws:states:us-east-1:{MOTO_ACCOUNT}:stateMachine:nova-sft-dev-serving"
    )["executions"]
    execution = aws.client("stepfunctions").describe_execution(executionArn=listed["executionArn"])
    detail = json.loads(execution["input"])["detail"]
    assert (detail["ModelPackageArn"], detail["Request"]) == (record.model_package_arn, "undeploy")


def test_deploy_without_the_machine_says_what_to_check(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    record = register(aws, env, "job-one", approval="Approved")
    status, _, err = run_cli(
        capsys, "deploy", record.model_package_arn, "--cdk-json", str(cdk_json)
    )
    assert status == 1
    assert "cannot start nova-sft-dev-serving" in err
    assert "is the stage deployed with serving on?" in err


def test_an_environment_that_serves_nothing_says_which_key_to_set(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    document: dict[str, Any] = json.loads(cdk_json.read_text(encoding="utf-8"))
    document["context"]["nova-sft"]["environments"]["dev"]["serving"] = {"deploy": "off"}
    cdk_json.write_text(json.dumps(document), encoding="utf-8")
    status, _, err = run_cli(capsys, "deploy", "1", "--env", "dev", "--cdk-json", str(cdk_json))
    assert status == 1
    assert 'environment dev does not serve checkpoints: set "serving": {"deploy"' in err


def test_invoke_prints_the_deployments_answer_and_lineage_marks_it(
    aws: boto3.Session,
    local_endpoint: LocalEndpoint,
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    record = register(aws, env, "job-one")
    common = ("--env", "dev", "--cdk-json", str(cdk_json))
    status, _, err = run_cli(capsys, "invoke", "1", "Hello", *common)
    assert status == 1
    assert "is not deployed (ServingStatus: none); deploy it with" in err

    record_served(aws, record.model_package_arn, served(aws, local_endpoint, record.checkpoint_uri))
    status, out, err = run_cli(capsys, "invoke", "1", "What are you?", *common)
    assert (status, err) == (0, "")
    assert out == (
        f"[stand-in for nova-sft-dev-v1, from {record.checkpoint_uri}] You asked: What are you?\n"
    )
    status, out, _ = run_cli(capsys, "lineage", *common)
    assert "v1 Approved DEPLOYED LoRA" in out
    status, out, _ = run_cli(capsys, "lineage", *common, "--json")
    (root,) = json.loads(out)["roots"]
    assert root["checkpoints"][0]["deployed"] is True


def test_an_empty_prompt_or_no_tokens_is_a_usage_error(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    register(aws, env, "job-one")
    status, _, err = run_cli(
        capsys, "invoke", "1", "  ", "--env", "dev", "--cdk-json", str(cdk_json)
    )
    assert status == 2
    assert "PROMPT must not be empty" in err
    status, _, err = run_cli(
        capsys,
        "invoke",
        "1",
        "Hi",
        "--max-tokens",
        "0",
        "--env",
        "dev",
        "--cdk-json",
        str(cdk_json),
    )
    assert status == 2
    assert "--max-tokens must be at least 1, got 0" in err

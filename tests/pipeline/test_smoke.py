"""The toolchain's smoke test against a local endpoint: a deployed pipeline passes or fails."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from pipeline.config import EnvironmentConfig, read_cdk_json
from pipeline.definition import build_pipeline, definition_json
from pipeline.smoke import EXIT_FAILED, EXIT_OK, EXIT_USAGE, main, parameter_problems

ENV = "dev"


@pytest.fixture(scope="module")
def dev() -> EnvironmentConfig:
    return read_cdk_json().environment(ENV)


@pytest.fixture(scope="module")
def definition(dev: EnvironmentConfig) -> dict[str, Any]:
    """The definition this commit builds for dev, as the stack would deploy it."""
    account = dev.account
    built = build_pipeline(
        env=dev,
        role_arn=f"arn:aws:iam::{account}:role/pipeline",
        execution_role_arn=f"arn:aws:iam::{account}:role/training",
        validate_function_arn=f"arn:aws:lambda:us-east-1:{account}:function:validate",
        prepare_function_arn=f"arn:aws:lambda:us-east-1:{account}:function:prepare",
        register_function_arn=f"arn:aws:lambda:us-east-1:{account}:function:register",
        prepare_evaluation_function_arn=f"arn:aws:lambda:us-east-1:{account}:function:prep-eval",
        artifacts_bucket="artifacts",
        data_bucket="data",
        kms_key_arn=f"arn:aws:kms:us-east-1:{account}:key/k",
        tracking_arn=f"arn:aws:sagemaker:us-east-1:{account}:mlflow-tracking-server/x"
        if dev.tracking_enabled
        else None,
    )
    return dict(json.loads(definition_json(built)))


def role_arn(dev: EnvironmentConfig) -> str:
    return f"arn:aws:iam::{dev.account}:role/nova-sft-{ENV}-smoke-test"


def dev_session(aws: boto3.Session, dev: EnvironmentConfig) -> boto3.Session:
    """A session in dev's account of the local endpoint (moto keys accounts by credentials)."""
    credentials = aws.client("sts").assume_role(RoleArn=role_arn(dev), RoleSessionName="setup")[
        "Credentials"
    ]
    return boto3.Session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=dev.region,
    )


def deploy(
    session: boto3.Session,
    dev: EnvironmentConfig,
    definition: dict[str, Any],
    *,
    group: bool = True,
    serving: bool = True,
) -> None:
    sm = session.client("sagemaker")
    sm.create_pipeline(
        PipelineName=dev.pipeline_name,
        PipelineDefinition=json.dumps(definition),
        RoleArn=f"arn:aws:iam::{dev.account}:role/pipeline",
    )
    if group:
        sm.create_model_package_group(ModelPackageGroupName=dev.model_package_group_name)
    if serving:
        session.client("stepfunctions").create_state_machine(
            name=f"nova-sft-{ENV}-serving",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}),
            roleArn=f"arn:aws:iam::{dev.account}:role/serving",
        )


def test_this_commits_pipeline_passes(
    aws: boto3.Session,
    dev: EnvironmentConfig,
    definition: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    deploy(dev_session(aws, dev), dev, definition)
    assert main(["--env", ENV, "--role-arn", role_arn(dev)]) == EXIT_OK
    out = capsys.readouterr().out
    assert f"ok: credentials are for account {dev.account}" in out
    assert "ok: pipeline nova-sft-dev exists" in out
    assert f"ok: its {len(definition['Parameters'])} parameters are this commit's" in out
    assert "ok: model package group nova-sft-dev-checkpoints exists" in out
    assert "ok: serving state machine nova-sft-dev-serving exists" in out
    assert out.rstrip().endswith("smoke test of dev: passed")


def test_a_changed_default_fails_and_is_named(
    aws: boto3.Session,
    dev: EnvironmentConfig,
    definition: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    stale = copy.deepcopy(definition)
    for parameter in stale["Parameters"]:
        if parameter["Name"] == "TrainingInstanceCount":
            parameter["DefaultValue"] = dev.training_instance_count * 2
    deploy(dev_session(aws, dev), dev, stale)
    assert main(["--env", ENV, "--role-arn", role_arn(dev)]) == EXIT_FAILED
    err = capsys.readouterr().err
    expected = dev.training_instance_count
    assert (
        f"FAILED: parameter TrainingInstanceCount: DefaultValue is {expected * 2}, "
        f"this commit has {expected}"
    ) in err


def test_a_missing_pipeline_and_group_fail_with_what_to_check(
    aws: boto3.Session, dev: EnvironmentConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["--env", ENV, "--role-arn", role_arn(dev)]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert "pipeline nova-sft-dev not found in account 111111111111, us-east-1" in err
    assert "did stack nova-sft-dev-training deploy?" in err
    assert "model package group nova-sft-dev-checkpoints not found" in err
    assert "serving state machine nova-sft-dev-serving not found in account 111111111111" in err


def test_credentials_of_another_account_are_refused(
    aws: boto3.Session,
    dev: EnvironmentConfig,
    definition: dict[str, Any],
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Deployed in dev's account, but checked with the endpoint's default account.
    deploy(dev_session(aws, dev), dev, definition)
    assert main(["--env", ENV]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert f"but environment dev is in {dev.account}" in err
    assert "--role-arn" in err


def test_an_unknown_environment_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--env", "qa"]) == EXIT_USAGE
    assert "no environment 'qa'" in capsys.readouterr().err


def test_missing_and_unexpected_parameters_are_listed(
    dev: EnvironmentConfig, definition: dict[str, Any]
) -> None:
    deployed = [p for p in definition["Parameters"] if p["Name"] != "MaxSteps"]
    deployed.append({"Name": "Epochs", "Type": "Integer", "DefaultValue": 1})
    assert parameter_problems(deployed, dev) == [
        "parameters missing from the deployed pipeline: MaxSteps",
        "parameters this commit does not define: Epochs",
    ]


def test_changed_allowed_values_are_reported(
    dev: EnvironmentConfig, definition: dict[str, Any]
) -> None:
    deployed = copy.deepcopy(definition["Parameters"])
    for parameter in deployed:
        if parameter["Name"] == "Technique":
            parameter["EnumValues"] = ["LoRA"]
    assert parameter_problems(deployed, dev) == [
        "parameter Technique: EnumValues is ['LoRA'], this commit has ['LoRA', 'FullRank']"
    ]

"""`evaluate` starts the evaluate-only pipeline on a package or the base model, checked first.

The deployed evaluate pipeline is created here with the parameters the contract of issue 14
names (ModelNameOrPath, ModelPackageArn, EvaluationTask, EvaluationDataS3Uri,
EvaluationInstanceType); the command reads them from DescribePipeline as it would in AWS.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.recipe.spec import BASE_MODEL
from tests.pipeline.commands.helpers import deploy, environment, register, run_cli

DATA = "s3://data-dev/eval/gen_qa.jsonl"
PIPELINE = "nova-sft-dev-evaluate"
PARAMETERS = [
    {"Name": "ModelNameOrPath", "Type": "String", "DefaultValue": BASE_MODEL},
    {"Name": "ModelPackageArn", "Type": "String", "DefaultValue": "none"},
    {
        "Name": "EvaluationTask",
        "Type": "String",
        "DefaultValue": "gen_qa",
        "EnumValues": ["gen_qa", "mmlu", "bbh"],
    },
    {"Name": "EvaluationDataS3Uri", "Type": "String", "DefaultValue": "none"},
    {"Name": "EvaluationInstanceType", "Type": "String", "DefaultValue": "ml.p5.48xlarge"},
]


def deploy_evaluate(session: boto3.Session) -> None:
    session.client("sagemaker").create_pipeline(
        PipelineName=PIPELINE,
        PipelineDefinition=json.dumps({"Version": "2020-12-01", "Parameters": PARAMETERS}),
        RoleArn="arn:aws:iam::123456789012:role/pipeline",
    )


def evaluate(
    capsys: pytest.CaptureFixture[str], cdk_json: Path, *extra: str
) -> tuple[int, str, str]:
    return run_cli(capsys, "evaluate", "--env", "dev", "--cdk-json", str(cdk_json), *extra)


def started(session: boto3.Session) -> list[dict[str, str]]:
    sm = session.client("sagemaker")
    found = sm.list_pipeline_executions(PipelineName=PIPELINE)["PipelineExecutionSummaries"]
    return [
        {
            p["Name"]: p["Value"]
            for p in sm.list_pipeline_parameters_for_execution(
                PipelineExecutionArn=e["PipelineExecutionArn"]
            )["PipelineParameters"]
        }
        for e in found
    ]


@pytest.fixture
def deployed(aws: boto3.Session, cdk_json: Path) -> Any:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    deploy_evaluate(aws)
    return register(aws, env, "job-one")


def test_evaluates_a_package_with_exactly_its_checkpoint_and_arn(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str], deployed: Any
) -> None:
    status, out, err = evaluate(capsys, cdk_json, "--package", "1", "--data", DATA)
    assert (status, err) == (0, "")
    assert started(aws) == [
        {
            "EvaluationDataS3Uri": DATA,
            "ModelNameOrPath": deployed.checkpoint_uri,
            "ModelPackageArn": deployed.model_package_arn,
        }
    ]
    assert f"Evaluates: v1 {deployed.checkpoint_uri}" in out
    assert "Estimate: about 20 to 30 minutes on 1 x ml.p5.48xlarge, about $" in out
    assert "Started: arn:aws:sagemaker:us-east-1:123456789012:pipeline/nova-sft-dev-evaluate" in out


def test_evaluates_the_base_model_on_a_benchmark(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str], deployed: Any
) -> None:
    status, out, _ = evaluate(capsys, cdk_json, "--base-model", "--task", "mmlu", "--json")
    assert status == 0
    assert json.loads(out)["started"] is True
    assert started(aws) == [
        {"EvaluationTask": "mmlu", "ModelNameOrPath": BASE_MODEL, "ModelPackageArn": "none"}
    ]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (("--package", "1"), "gen_qa scores your own data: give --data"),
        (("--base-model", "--task", "mmlu", "--data", DATA), "mmlu is a benchmark"),
        (("--base-model", "--task", "hellaswag"), "EvaluationTask"),
        (("--base-model", "--set", "ModelNameOrPath=s3://b/k"), "not accepted by evaluate"),
        (("--base-model", "--package", "1"), "not allowed with argument"),
        (("--base-model", "--task", "gen_qa", "--data", ""), "EvaluationDataS3Uri"),
    ],
)
@pytest.mark.usefixtures("deployed")
def test_bad_requests_start_nothing(
    aws: boto3.Session,
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    expected: str,
) -> None:
    status, _, err = evaluate(capsys, cdk_json, *argv)
    assert status == 2
    assert expected in err
    assert "Traceback" not in err
    assert started(aws) == []


def test_dry_run_starts_nothing(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str], deployed: Any
) -> None:
    status, out, _ = evaluate(capsys, cdk_json, "--base-model", "--data", DATA, "--dry-run")
    assert status == 0
    assert "Dry run: nothing was started." in out
    assert f"* EvaluationDataS3Uri = {DATA}" in out
    assert started(aws) == []


def test_without_the_evaluate_pipeline_says_to_deploy(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    status, _, err = evaluate(capsys, cdk_json, "--base-model", "--data", DATA)
    assert status == 1
    assert "pipeline nova-sft-dev-evaluate does not exist" in err

"""Shared set-up for the operator command tests: a deployed environment in the local endpoint.

`deploy` creates what the training stack would (the pipeline with its real definition, the
model package group, the buckets); `register` leaves a finished training job behind and
registers its checkpoint through `lambdas.registry`, the code the register step runs.
"""

from __future__ import annotations

import functools
import io
import json
import tarfile
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.evaluation import EvaluationInputs, register_evaluated
from lambdas.recipe import render_recipe, validate_run
from lambdas.recipe.spec import BASE_MODEL
from lambdas.registry import (
    CheckpointRecord,
    RegistrationRequest,
    register_checkpoint,
    set_approval,
)
from pipeline.commands.cli import main
from pipeline.config import CDK_JSON, EnvironmentConfig, read_cdk_json

MOTO_ACCOUNT = "123456789012"
OTHER_ACCOUNT = "222222222222"


@functools.lru_cache(maxsize=64)
def client(session: Any, service: str) -> Any:
    """A client of `session`, made once: making one takes tens of milliseconds."""
    return session.client(service)


def write_cdk_json(directory: Path, tracking: str = "off") -> Path:
    """The project's cdk.json with dev in the local endpoint's default account, and dev's
    `tracking` set to `tracking`."""
    document = json.loads(CDK_JSON.read_text(encoding="utf-8"))
    environments = document["context"]["nova-sft"]["environments"]
    environments["dev"]["account"] = MOTO_ACCOUNT
    environments["staging"]["account"] = OTHER_ACCOUNT
    # dev reads no MLflow server unless a test turns it on (tests/pipeline/commands/
    # test_mlflow_runs.py does, with a local one).
    environments["dev"]["tracking"] = tracking
    path = directory / "cdk.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    return path


def environment(cdk_json: Path, name: str) -> EnvironmentConfig:
    return read_cdk_json(cdk_json).environment(name)


def buckets(env: EnvironmentConfig) -> tuple[str, str]:
    """(artifacts, data) bucket names of an environment in these tests."""
    return f"artifacts-{env.name}", f"data-{env.name}"


@functools.cache
def definition_body(env: EnvironmentConfig, account: str) -> str:
    """The environment's real pipeline definition, with resolved names (built once per test run)."""
    from pipeline.definition import build_pipeline, definition_json

    artifacts, data = buckets(env)
    arn = f"arn:aws:lambda:{env.region}:{account}:function:"
    pipeline = build_pipeline(
        env=env,
        role_arn=f"arn:aws:iam::{account}:role/pipeline",
        execution_role_arn=f"arn:aws:iam::{account}:role/training",
        validate_function_arn=arn + "validate",
        prepare_function_arn=arn + "prepare",
        register_function_arn=arn + "register",
        prepare_evaluation_function_arn=arn + "prepare-evaluation",
        artifacts_bucket=artifacts,
        data_bucket=data,
        kms_key_arn=f"arn:aws:kms:{env.region}:{account}:key/test",
        tracking_arn=tracking_arn(env, account),
    )
    return definition_json(pipeline)


def tracking_arn(env: EnvironmentConfig, account: str) -> str | None:
    """The tracking server a tracking environment's stack creates, in these tests' account."""
    if not env.tracking_enabled:
        return None
    return f"arn:aws:sagemaker:{env.region}:{account}:mlflow-tracking-server/{env.pipeline_name}"


def deploy(session: Any, env: EnvironmentConfig) -> None:
    """Create the environment's pipeline, model package group and buckets."""
    account = client(session, "sts").get_caller_identity()["Account"]
    s3 = client(session, "s3")
    for bucket in buckets(env):
        s3.create_bucket(Bucket=bucket)
    sm = client(session, "sagemaker")
    sm.create_pipeline(
        PipelineName=env.pipeline_name,
        PipelineDefinition=definition_body(env, account),
        RoleArn=f"arn:aws:iam::{account}:role/pipeline",
    )
    sm.create_model_package_group(ModelPackageGroupName=env.model_package_group_name)


def tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def metrics_csv(losses: list[float]) -> bytes:
    rows = "".join(f"{step},{loss}\n" for step, loss in enumerate(losses, start=1))
    return ("step_number,training_loss\n" + rows).encode()


def register(
    session: Any,
    env: EnvironmentConfig,
    job: str,
    *,
    parent: str = BASE_MODEL,
    technique: str = "LoRA",
    approval: str = "PendingManualApproval",
    losses: tuple[float, ...] = (2.0, 1.5, 1.2, 1.0),
    execution_arn: str = "",
    train_uri: str = "",
    validation_uri: str = "none",
    max_runtime: int | None = None,
    source_arn: str = "",
    scores: dict[str, float] | None = None,
    gate: dict[str, Any] | None = None,
) -> CheckpointRecord:
    """Leave a finished job's recipe and output behind and register its checkpoint (with the
    optional inputs only when given). With `scores`, an evaluation job's output holding them
    is left too and the checkpoint is registered with them (and `gate`), as the register step
    does after an evaluation."""
    artifacts, data = buckets(env)
    sm, s3 = client(session, "sagemaker"), client(session, "s3")
    count = 4
    settings = validate_run(
        {
            "Technique": technique,
            "ModelNameOrPath": parent,
            "TrainingInstanceType": "ml.p5.48xlarge",
            "TrainingInstanceCount": count,
            "RunName": job,
            "MaxSteps": len(losses) * 10,
            "ValidationDataS3Uri": validation_uri,
        }
    )
    recipe_key = f"runs/{job}/recipe/recipe.yaml"
    s3.put_object(Bucket=artifacts, Key=recipe_key, Body=render_recipe(settings))
    sm.create_training_job(
        TrainingJobName=job,
        AlgorithmSpecification={"TrainingImage": "nova", "TrainingInputMode": "File"},
        RoleArn=f"arn:aws:iam::{MOTO_ACCOUNT}:role/training",
        OutputDataConfig={"S3OutputPath": f"s3://{artifacts}/runs/{job}/training"},
        ResourceConfig={
            "InstanceType": "ml.p5.48xlarge",
            "InstanceCount": count,
            "VolumeSizeInGB": 30,
        },
        StoppingCondition={"MaxRuntimeInSeconds": 3600},
    )
    model = sm.describe_training_job(TrainingJobName=job)["ModelArtifacts"]["S3ModelArtifacts"]
    folder = model.removeprefix(f"s3://{artifacts}/").rsplit("/", 1)[0]
    checkpoint = f"s3://customer-escrow-{MOTO_ACCOUNT}-smtj-test/{job}/step_{len(losses)}"
    s3.put_object(
        Bucket=artifacts,
        Key=f"{folder}/output.tar.gz",
        Body=tar_gz(
            {
                "./manifest.json": json.dumps({"checkpoint_s3_bucket": checkpoint}).encode(),
                "./step_wise_training_metrics.csv": metrics_csv(list(losses)),
            }
        ),
    )
    event = {
        "TrainingJobName": job,
        "ModelArtifactsS3Uri": model,
        "ModelPackageGroupName": env.model_package_group_name,
        "ModelNameOrPath": parent,
        "Technique": technique,
        "RecipeS3Uri": f"s3://{artifacts}/{recipe_key}",
        # A run registers pending (or rejected); approval is an act of its own, done below.
        "ModelApprovalStatus": "PendingManualApproval" if approval == "Approved" else approval,
        "TrainDataS3Uri": train_uri or f"s3://{data}/datasets/train.jsonl",
        "TrainingInstanceType": "ml.p5.48xlarge",
        "PipelineExecutionArn": execution_arn,
        "ValidationDataS3Uri": validation_uri,
        "MaxRuntimeSeconds": max_runtime,
        "SourceModelPackageArn": source_arn,
    }
    if scores is not None:
        event.update(stage_evaluation(s3, artifacts, job, scores, gate or {}))
        request = RegistrationRequest.from_event(event)
        inputs = EvaluationInputs.from_event(event, with_gate=True)
        assert inputs is not None
        record = register_evaluated(sm, s3, request, inputs)[0].record
    else:
        record = register_checkpoint(sm, s3, RegistrationRequest.from_event(event)).record
    if approval == "Approved":
        record = set_approval(sm, record.model_package_arn, "Approved")
    return record


EVALUATION_DATA_SHA256 = "a" * 64


def stage_evaluation(
    s3: Any, artifacts: str, job: str, scores: dict[str, float], gate: dict[str, Any]
) -> dict[str, Any]:
    """An evaluation job's output for `job`'s checkpoint; returns the register step's
    evaluation inputs."""
    folder = f"runs/{job}/evaluation/{job}-eval/output"
    results = json.dumps({"results": {"all": scores}}).encode()
    s3.put_object(Bucket=artifacts, Key=f"{folder}/model.tar.gz", Body=tar_gz({}))
    s3.put_object(
        Bucket=artifacts,
        Key=f"{folder}/output.tar.gz",
        Body=tar_gz(
            {
                "./inference_output.jsonl": b'{"prompt": "q", "inference": "a"}\n',
                "./eval-run/eval_results/results_2026-12-03T10-00-00.json": results,
            }
        ),
    )
    return {
        "EvaluationTask": "gen_qa",
        "EvaluationJobName": f"{job}-eval",
        "EvaluationModelArtifactsS3Uri": f"s3://{artifacts}/{folder}/model.tar.gz",
        "EvaluationDataS3Uri": "s3://data-bucket/eval/gen_qa.jsonl",
        "EvaluationDataSha256": EVALUATION_DATA_SHA256,
        "EvaluationRunName": "eval-run",
        "EvaluationReportS3Uri": f"s3://{artifacts}/runs/{job}/evaluation/statistics.json",
        "BaselineS3Prefix": f"s3://{artifacts}/baselines/",
        "GateMetric": "none",
        **gate,
    }


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """Run `python -m pipeline ...` in process; returns (status, stdout, stderr)."""
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def assume_account(session: boto3.Session, account: str, directory: Path) -> Path:
    """A credentials file with profile `dev` (the default account) and `other` (`account`)."""
    credentials = session.client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/operator", RoleSessionName="operator"
    )["Credentials"]
    path = directory / "credentials"
    path.write_text(
        "[dev]\naws_access_key_id = testing\naws_secret_access_key = testing\n"
        f"[other]\naws_access_key_id = {credentials['AccessKeyId']}\n"
        f"aws_secret_access_key = {credentials['SecretAccessKey']}\n"
        f"aws_session_token = {credentials['SessionToken']}\n",
        encoding="utf-8",
    )
    return path

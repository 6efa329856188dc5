"""The stand-in trainer refuses requests the Nova container could not run, and leaves the
outputs a finished job leaves."""

from __future__ import annotations

import copy
import io
import json
import tarfile
from typing import Any

import boto3
import pytest

from lambdas.recipe import render_recipe, validate_run
from lambdas.recipe.spec import BASE_MODEL, MODEL_TYPE, nova_sft_image_uri
from pipeline.rehearsal.stand_in_trainer import RequestMismatch, StandInTrainer

REGION = "us-east-1"
BUCKET = "artifacts"
CHECKPOINT = "s3://customer-escrow-123456789012-smtj-abc/job/step_100"


VALIDATION = f"s3://{BUCKET}/data/validation.jsonl"


def request_for(
    aws: boto3.Session, source: str = BASE_MODEL, count: int = 4, validation: str = "none"
) -> dict[str, Any]:
    """A request as the pipeline's training step sends it, with its recipe and data in S3."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    settings = validate_run(
        {
            "Technique": "LoRA",
            "ModelNameOrPath": source,
            "TrainingInstanceType": "ml.p5.48xlarge",
            "TrainingInstanceCount": str(count),
            "RunName": "run-1",
            "MaxSteps": "10",
            "ValidationDataS3Uri": validation,
        }
    )
    s3.put_object(Bucket=BUCKET, Key="runs/1/recipe/recipe.yaml", Body=render_recipe(settings))
    s3.put_object(Bucket=BUCKET, Key="data/train.jsonl", Body=b"{}\n")
    s3.put_object(Bucket=BUCKET, Key="data/validation.jsonl", Body=b"{}\n")
    channel = {"S3DataDistributionType": "FullyReplicated"}
    hyperparameter = "base_model_location" if source.startswith("s3://") else "base_model"
    validation_channels = (
        []
        if validation == "none"
        else [
            {
                "ChannelName": "validation",
                "DataSource": {
                    "S3DataSource": {**channel, "S3DataType": "Converse", "S3Uri": validation}
                },
            }
        ]
    )
    return {
        "TrainingJobName": "pipelines-1-Train",
        "AlgorithmSpecification": {
            "TrainingImage": nova_sft_image_uri(REGION),
            "TrainingInputMode": "File",
        },
        "RoleArn": "arn:aws:iam::123456789012:role/training",
        "HyperParameters": {
            hyperparameter: source,
            "model_type": MODEL_TYPE,
            "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml",
        },
        "InputDataConfig": [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {
                        **channel,
                        "S3DataType": "Converse",
                        "S3Uri": f"s3://{BUCKET}/data/train.jsonl",
                    }
                },
            },
            *validation_channels,
            {
                "ChannelName": "recipe",
                "DataSource": {
                    "S3DataSource": {
                        **channel,
                        "S3DataType": "S3Prefix",
                        "S3Uri": f"s3://{BUCKET}/runs/1/recipe/",
                    }
                },
            },
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/runs/1/training/"},
        "ResourceConfig": {
            "InstanceType": "ml.p5.48xlarge",
            "InstanceCount": count,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 86400},
    }


def archive_members(aws: boto3.Session, model_uri: str) -> dict[str, bytes]:
    bucket, _, key = model_uri.removeprefix("s3://").partition("/")
    key = key.rsplit("/", 1)[0] + "/output.tar.gz"
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as archive:
        return {
            m.name: archive.extractfile(m).read()  # type: ignore[union-attr]
            for m in archive.getmembers()
        }


def test_a_good_request_leaves_a_manifest_and_a_falling_loss(aws: boto3.Session) -> None:
    trainer = StandInTrainer(session=aws, region=REGION)

    described = trainer.train(request_for(aws))

    assert described["TrainingJobStatus"] == "Completed"
    members = archive_members(aws, described["ModelArtifacts"]["S3ModelArtifacts"])
    checkpoint = json.loads(members["./manifest.json"])["checkpoint_s3_bucket"]
    assert checkpoint.startswith("s3://customer-escrow-123456789012-smtj-")
    assert checkpoint.endswith("/pipelines-1-Train/step_10")
    rows = members["./step_wise_training_metrics.csv"].decode().splitlines()
    losses = [float(row.split(",")[1]) for row in rows[1:]]
    assert len(losses) == 10
    assert losses[-1] < losses[0]


def test_a_run_from_a_checkpoint_continues_from_its_final_loss(aws: boto3.Session) -> None:
    trainer = StandInTrainer(session=aws, region=REGION)
    trainer.final_loss_by_checkpoint[CHECKPOINT] = 0.5

    described = trainer.train(request_for(aws, source=CHECKPOINT))

    members = archive_members(aws, described["ModelArtifacts"]["S3ModelArtifacts"])
    first = float(
        members["./step_wise_training_metrics.csv"].decode().splitlines()[1].split(",")[1]
    )
    assert first < 0.55


def test_a_failing_job_reports_failed_and_writes_nothing(aws: boto3.Session) -> None:
    trainer = StandInTrainer(session=aws, region=REGION, fail_reason="AlgorithmError: boom")

    described = trainer.train(request_for(aws))

    assert described["TrainingJobStatus"] == "Failed"
    assert described["FailureReason"] == "AlgorithmError: boom"
    listed = aws.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="runs/1/training/")
    assert listed["KeyCount"] == 0


def _wrong_image(request: dict[str, Any]) -> None:
    request["AlgorithmSpecification"]["TrainingImage"] = "123.dkr.ecr.us-east-1.amazonaws.com/x"


def _s3_prefix_train_channel(request: dict[str, Any]) -> None:
    request["InputDataConfig"][0]["DataSource"]["S3DataSource"]["S3DataType"] = "S3Prefix"


def _hyperparameter_disagrees(request: dict[str, Any]) -> None:
    request["HyperParameters"]["base_model"] = "nova-lite-2/other"


def _checkpoint_hyperparameter_for_a_base_model(request: dict[str, Any]) -> None:
    request["HyperParameters"]["base_model_location"] = CHECKPOINT


def _replicas_differ(request: dict[str, Any]) -> None:
    request["ResourceConfig"]["InstanceCount"] = 2


def _recipe_path_outside_the_channel(request: dict[str, Any]) -> None:
    request["HyperParameters"]["sagemaker_recipe_local_path"] = "/tmp/recipe.yaml"


def _recipe_missing(request: dict[str, Any]) -> None:
    request["HyperParameters"]["sagemaker_recipe_local_path"] = (
        "/opt/ml/input/data/recipe/other.yaml"
    )


def _no_recipe_channel(request: dict[str, Any]) -> None:
    del request["InputDataConfig"][1]


def _validation_channel_without_validation_data(request: dict[str, Any]) -> None:
    channel = copy.deepcopy(request["InputDataConfig"][0])
    channel["ChannelName"] = "validation"
    channel["DataSource"]["S3DataSource"]["S3Uri"] = VALIDATION
    request["InputDataConfig"].append(channel)


def test_a_request_with_validation_data_in_channel_and_recipe_runs(aws: boto3.Session) -> None:
    trainer = StandInTrainer(session=aws, region=REGION)
    described = trainer.train(request_for(aws, validation=VALIDATION))
    assert described["TrainingJobStatus"] == "Completed"


def _validation_elsewhere(request: dict[str, Any]) -> None:
    request["InputDataConfig"][1]["DataSource"]["S3DataSource"]["S3Uri"] = (
        f"s3://{BUCKET}/data/train.jsonl"
    )


def _validation_channel_missing(request: dict[str, Any]) -> None:
    del request["InputDataConfig"][1]


def _validation_channel_s3_prefix(request: dict[str, Any]) -> None:
    request["InputDataConfig"][1]["DataSource"]["S3DataSource"]["S3DataType"] = "S3Prefix"


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (_validation_elsewhere, "validation channel .* and recipe .* disagree"),
        (_validation_channel_missing, "the recipe names validation data .* no validation channel"),
        (_validation_channel_s3_prefix, "validation channel must be Converse"),
    ],
)
def test_validation_data_must_reach_the_job_both_ways_or_not_at_all(
    aws: boto3.Session, break_it: Any, message: str
) -> None:
    trainer = StandInTrainer(session=aws, region=REGION)
    request = copy.deepcopy(request_for(aws, validation=VALIDATION))
    break_it(request)
    with pytest.raises(RequestMismatch, match=message):
        trainer.train(request)
    assert aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


@pytest.mark.parametrize(
    ("break_it", "message"),
    [
        (_wrong_image, "not the Nova SFT image"),
        (_s3_prefix_train_channel, "Converse and FullyReplicated"),
        (_hyperparameter_disagrees, "hyperparameters are"),
        (_checkpoint_hyperparameter_for_a_base_model, "hyperparameters are"),
        (_replicas_differ, "run.replicas=4 with 2 instances"),
        (_recipe_path_outside_the_channel, "is not in the channel"),
        (_recipe_missing, "does not exist"),
        (_no_recipe_channel, "expected recipe and train"),
        (_validation_channel_without_validation_data, "disagree"),
    ],
)
def test_a_request_the_container_could_not_run_is_refused(
    aws: boto3.Session, break_it: Any, message: str
) -> None:
    trainer = StandInTrainer(session=aws, region=REGION)
    request = copy.deepcopy(request_for(aws))
    break_it(request)

    with pytest.raises(RequestMismatch, match=message):
        trainer.train(request)
    assert aws.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_a_validation_interval_beyond_the_run_is_refused(aws: boto3.Session) -> None:
    request = request_for(aws, validation=VALIDATION)
    s3 = aws.client("s3")
    recipe = s3.get_object(Bucket=BUCKET, Key="runs/1/recipe/recipe.yaml")["Body"].read()
    assert b"val_check_interval: 2\n" in recipe  # a quarter of MaxSteps 10
    s3.put_object(
        Bucket=BUCKET,
        Key="runs/1/recipe/recipe.yaml",
        Body=recipe.replace(b"val_check_interval: 2\n", b"val_check_interval: 2500\n"),
    )
    with pytest.raises(RequestMismatch, match="validation would never run"):
        StandInTrainer(session=aws, region=REGION).train(request)

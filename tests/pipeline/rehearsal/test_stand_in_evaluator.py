"""The stand-in evaluator refuses requests the Nova evaluation container could not run, and
leaves the results archive a finished evaluation leaves, with scores tied to the checkpoint."""

from __future__ import annotations

import copy
import json
from typing import Any

import boto3
import pytest

from lambdas.recipe.evaluation import nova_evaluation_image_uri, render_evaluation_recipe
from lambdas.recipe.spec import BASE_MODEL, MODEL_TYPE
from pipeline.rehearsal.stand_in_evaluator import (
    JobRunner,
    StandInEvaluator,
    scores,
)
from pipeline.rehearsal.stand_in_trainer import RequestMismatch, StandInTrainer
from tests.pipeline.rehearsal.test_stand_in_trainer import (
    BUCKET,
    CHECKPOINT,
    REGION,
    archive_members,
    request_for,
)

QUESTIONS = b'{"query": "What is 2 + 2?", "response": "4"}\n{"query": "1 + 1?", "response": "2"}\n'


def eval_request(
    aws: boto3.Session, *, task: str = "gen_qa", source: str = CHECKPOINT, data: bool = True
) -> dict[str, Any]:
    """A request as the pipeline's evaluation step sends it, with its recipe and data in S3."""
    s3 = aws.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    recipe = render_evaluation_recipe(task, "nova-sft-run-1-eval", source)
    s3.put_object(Bucket=BUCKET, Key="runs/1/evaluation/recipe/recipe.yaml", Body=recipe)
    s3.put_object(Bucket=BUCKET, Key="runs/1/evaluation/data/gen_qa.jsonl", Body=QUESTIONS)
    channel = {"S3DataDistributionType": "FullyReplicated", "S3DataType": "S3Prefix"}
    data_channels = (
        [
            {
                "ChannelName": "train",
                "DataSource": {
                    "S3DataSource": {**channel, "S3Uri": f"s3://{BUCKET}/runs/1/evaluation/data/"}
                },
            }
        ]
        if data
        else []
    )
    hyperparameter = "base_model_location" if source.startswith("s3://") else "base_model"
    return {
        "TrainingJobName": "pipelines-1-EvalFromBaseModel-abc",
        "AlgorithmSpecification": {
            "TrainingImage": nova_evaluation_image_uri(REGION),
            "TrainingInputMode": "File",
        },
        "RoleArn": "arn:aws:iam::123456789012:role/training",
        "HyperParameters": {
            hyperparameter: source,
            "model_type": MODEL_TYPE,
            "sagemaker_recipe_local_path": "/opt/ml/input/data/recipe/recipe.yaml",
        },
        "InputDataConfig": [
            *data_channels,
            {
                "ChannelName": "recipe",
                "DataSource": {
                    "S3DataSource": {**channel, "S3Uri": f"s3://{BUCKET}/runs/1/evaluation/recipe/"}
                },
            },
        ],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/runs/1/evaluation"},
        "ResourceConfig": {
            "InstanceType": "ml.p5.48xlarge",
            "InstanceCount": 1,
            "VolumeSizeInGB": 30,
        },
        "StoppingCondition": {"MaxRuntimeInSeconds": 21600},
    }


def evaluator(aws: boto3.Session, **options: Any) -> StandInEvaluator:
    trainer = StandInTrainer(session=aws, region=REGION)
    trainer.final_loss_by_checkpoint[CHECKPOINT] = 1.0
    return StandInEvaluator(session=aws, region=REGION, trainer=trainer, **options)


def results_of(aws: boto3.Session, described: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    members = archive_members(aws, described["ModelArtifacts"]["S3ModelArtifacts"])
    (name,) = [m for m in members if "/eval_results/results_" in m]
    assert name.startswith("nova-sft-run-1-eval/eval_results/results_")
    assert name.endswith(".json")
    return json.loads(members[name]), sorted(members)


def test_a_good_request_leaves_results_inference_output_and_details(aws: boto3.Session) -> None:
    described = evaluator(aws).train(eval_request(aws))
    assert described["TrainingJobStatus"] == "Completed"
    document, members = results_of(aws, described)
    assert document["results"]["all"] == scores("gen_qa", 1.0)
    assert document["results"]["all"]["rougeL_stderr"] > 0
    assert "nova-sft-run-1-eval/eval_results/inference_output.jsonl" in members
    assert any("/eval_results/details/" in m for m in members)


def test_a_lower_final_loss_scores_higher_and_low_score_falls_below_the_gate() -> None:
    assert scores("gen_qa", 0.5)["rougeL"] > scores("gen_qa", 1.1)["rougeL"] > 0.4
    assert scores("gen_qa", 0.5, low=True)["rougeL"] < 0.4
    assert scores("gen_qa", 0.7) == scores("gen_qa", 0.7)
    assert set(scores("mmlu", 1.0)) == {"accuracy", "accuracy_stderr"}


def test_a_benchmark_needs_no_data_channel_and_the_base_model_may_be_scored(
    aws: boto3.Session,
) -> None:
    request = eval_request(aws, task="mmlu", source=BASE_MODEL, data=False)
    described = evaluator(aws).train(request)
    document, _ = results_of(aws, described)
    assert "accuracy" in document["results"]["all"]


def test_fail_evaluation_fails_the_job(aws: boto3.Session) -> None:
    described = evaluator(aws, fail_reason="AlgorithmError: asked").train(eval_request(aws))
    assert (described["TrainingJobStatus"], described["FailureReason"]) == (
        "Failed",
        "AlgorithmError: asked",
    )


def _without_train(request: dict[str, Any]) -> None:
    request["InputDataConfig"] = request["InputDataConfig"][1:]


def _wrong_hyperparameter(request: dict[str, Any]) -> None:
    request["HyperParameters"]["base_model_location"] = "s3://other-bucket/x/step_1"


def _two_instances(request: dict[str, Any]) -> None:
    request["ResourceConfig"]["InstanceCount"] = 2


def _training_image(request: dict[str, Any]) -> None:
    request["AlgorithmSpecification"]["TrainingImage"] = "elsewhere/image:1"


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (_without_train, "reads its data from a train channel"),
        (_wrong_hyperparameter, "hyperparameters are"),
        (_two_instances, "exactly one instance"),
        (_training_image, "not the Nova evaluation image"),
    ],
)
def test_a_request_the_container_could_not_run_is_refused(
    aws: boto3.Session, change: Any, words: str
) -> None:
    request = copy.deepcopy(eval_request(aws))
    change(request)
    with pytest.raises(RequestMismatch, match=words):
        evaluator(aws).train(request)


def test_a_checkpoint_no_training_job_made_is_refused(aws: boto3.Session) -> None:
    other = "s3://customer-escrow-123456789012-smtj-abc/other/step_1"
    with pytest.raises(RequestMismatch, match="not a checkpoint a training job"):
        evaluator(aws).train(eval_request(aws, source=other))


def test_the_runner_sends_jobs_by_image(aws: boto3.Session) -> None:
    trainer = StandInTrainer(session=aws, region=REGION)
    runner = JobRunner(
        trainer, StandInEvaluator(session=aws, region=REGION, trainer=trainer), REGION
    )
    trained = runner.train(request_for(aws))
    assert trained["TrainingJobStatus"] == "Completed"
    checkpoint = next(iter(trainer.final_loss_by_checkpoint))
    request = eval_request(aws, source=checkpoint)
    assert runner.train(request)["TrainingJobStatus"] == "Completed"
    assert runner.evaluator.evaluated[0][1] == checkpoint

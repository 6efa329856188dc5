"""The training steps (`pipeline.training_step`): channels, hyperparameters, recipe, output and
retry policy of each job variant."""

from __future__ import annotations

import inspect
from typing import Any

import pytest

from lambdas.recipe.spec import FULL_RANK, nova_sft_image_uri
from pipeline import training_step as training_step_module
from pipeline.definition import (
    JOB_VARIANTS,
    TRAIN_FROM_BASE_MODEL,
    TRAIN_FROM_CHECKPOINT,
)
from tests.pipeline import test_definition as unit


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return unit.built_definition()


def channels_of(definition: dict[str, Any], step: str) -> dict[str, Any]:
    request = unit.steps_by_name(definition)[step]["Arguments"]
    return {c["ChannelName"]: c for c in request["InputDataConfig"]}


@pytest.mark.parametrize("variant", JOB_VARIANTS, ids=lambda v: v.training_step)
def test_only_the_jobs_with_validation_send_the_validation_channel(
    definition: dict[str, Any], variant: Any
) -> None:
    channels = channels_of(definition, variant.training_step)
    if not variant.with_validation:
        # SageMaker refuses a channel with an empty URI: no channel at all without data.
        assert set(channels) == {"train", "recipe"}
        return
    assert set(channels) == {"train", "recipe", "validation"}
    validation, train = channels["validation"], channels["train"]
    assert validation["DataSource"]["S3DataSource"] == {
        **train["DataSource"]["S3DataSource"],
        "S3Uri": {"Get": "Parameters.ValidationDataS3Uri"},
    }
    assert validation["DataSource"]["S3DataSource"]["S3DataType"] == "Converse"
    assert validation["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    # Apart from the channel, the request is the one without validation data.
    without = next(
        v
        for v in JOB_VARIANTS
        if v.hyperparameter == variant.hyperparameter and not v.with_validation
    )
    steps = unit.steps_by_name(definition)
    mine = {**steps[variant.training_step]["Arguments"]}
    mine["InputDataConfig"] = [
        c for c in mine["InputDataConfig"] if c["ChannelName"] != "validation"
    ]
    assert mine == steps[without.training_step]["Arguments"]


def test_each_branch_sets_the_hyperparameter_the_sdk_picks_for_its_source(
    definition: dict[str, Any],
) -> None:
    steps = unit.steps_by_name(definition)
    from_checkpoint = steps[TRAIN_FROM_CHECKPOINT]["Arguments"]["HyperParameters"]
    from_base = steps[TRAIN_FROM_BASE_MODEL]["Arguments"]["HyperParameters"]
    model = {"Get": "Parameters.ModelNameOrPath"}
    assert from_checkpoint["base_model_location"] == model
    assert "base_model" not in from_checkpoint
    assert from_base["base_model"] == model
    assert "base_model_location" not in from_base
    # Apart from that key, the two requests are one.
    strip = {"base_model", "base_model_location"}
    rest = [
        {
            **steps[name]["Arguments"],
            "HyperParameters": {
                k: v
                for k, v in steps[name]["Arguments"]["HyperParameters"].items()
                if k not in strip
            },
        }
        for name in (TRAIN_FROM_CHECKPOINT, TRAIN_FROM_BASE_MODEL)
    ]
    assert rest[0] == rest[1]


def test_the_job_reads_this_runs_recipe_and_writes_under_the_run(
    definition: dict[str, Any],
) -> None:
    request = unit.steps_by_name(definition)[TRAIN_FROM_CHECKPOINT]["Arguments"]
    scope = {
        "Execution.PipelineExecutionId": "abcd1234efgh",
        "Steps.PrepareRecipe.OutputParameters['RecipeS3Prefix']": "s3://from-the-prepare-step/",
    }
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    recipe = channels["recipe"]["DataSource"]["S3DataSource"]
    assert unit.resolve(recipe["S3Uri"], scope) == "s3://from-the-prepare-step/"
    assert request["HyperParameters"]["sagemaker_recipe_local_path"] == (
        "/opt/ml/input/data/recipe/recipe.yaml"
    )
    assert unit.resolve(request["OutputDataConfig"]["S3OutputPath"], scope) == (
        f"s3://{unit.ARTIFACTS}/runs/abcd1234efgh/training"
    )
    assert request["OutputDataConfig"]["KmsKeyId"] == unit.INPUTS["kms_key_arn"]
    assert "VolumeKmsKeyId" not in request["ResourceConfig"]
    assert request["RoleArn"] == unit.INPUTS["execution_role_arn"]
    assert request["AlgorithmSpecification"]["TrainingImage"] == nova_sft_image_uri(unit.ENV.region)


def test_training_retries_capacity_errors_and_lambda_steps_declare_no_policy(
    definition: dict[str, Any],
) -> None:
    from sagemaker.workflow.lambda_step import LambdaStep
    from sagemaker.workflow.retry import SageMakerJobExceptionTypeEnum

    # Decision 0004 rests on this: the SDK's Lambda step takes no retry policy (the API accepts
    # them on job steps only). Revisit the decision if an upgrade adds one.
    assert "retry_policies" not in inspect.signature(LambdaStep).parameters
    for step, _ in unit.flatten(definition["Steps"]):
        if step["Type"] == "Training":
            (policy,) = step["RetryPolicies"]
            assert policy["ExceptionType"] == [SageMakerJobExceptionTypeEnum.CAPACITY_ERROR.value]
            assert policy["MaxAttempts"] > 1
            assert policy["IntervalSeconds"] >= 60
        else:
            # AWS supports retry policies on job steps only; Pipelines retries a Lambda step's
            # throttling by itself (docs/decisions/0004).
            assert "RetryPolicies" not in step


def test_technique_template_handed_to_the_sdk_does_not_change_the_definition(
    definition: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.recipe.spec import TEMPLATE_FILES

    monkeypatch.setattr(training_step_module, "_SYNTH_TECHNIQUE", FULL_RANK)
    assert TEMPLATE_FILES[FULL_RANK].read_text() != TEMPLATE_FILES["LoRA"].read_text()
    assert unit.build() == definition

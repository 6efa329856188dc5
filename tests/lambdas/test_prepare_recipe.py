"""The prepare_recipe step's handler against moto's S3 server over HTTP."""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest
import yaml

from lambdas import prepare_recipe as module
from lambdas.prepare_recipe import RecipeWriteError, handler, prepare_recipe
from lambdas.recipe import MAX_URI_CHARS, RecipeValidationError, render_recipe, validate_run
from lambdas.recipe.spec import BASE_MODEL, FULL_RANK, LORA

ARTIFACTS = "artifacts-bucket"
PREFIX = f"s3://{ARTIFACTS}/runs/exec-1/recipe/"
CHECKPOINT = "s3://customer-escrow-111122223333-smtj-a1b2c3d4/run-1/step_100"
OUTPUT_KEYS = {
    "RecipeS3Uri",
    "RecipeS3Prefix",
    "RecipeSha256",
    "BaseModelHyperparameter",
    "StartsFromCheckpoint",
    "HasValidationData",
    "CheckpointCheck",
}


def event(**overrides: object) -> dict[str, object]:
    body: dict[str, object] = {
        "Technique": LORA,
        "ModelNameOrPath": BASE_MODEL,
        "TrainingInstanceType": "ml.p5.48xlarge",
        "TrainingInstanceCount": "4",
        "MaxSteps": "100",
        "GlobalBatchSize": "32",
        "MaxLength": "32768",
        "LearningRate": "1e-05",
        "WarmupSteps": "15",
        "LoraAlpha": "64",
        "LoraPlusLrRatio": "64.0",
        "ReasoningEnabled": "false",
        "ValidationDataS3Uri": "none",
        "RunName": "exec-1",
        "RecipeS3Prefix": PREFIX,
    }
    body.update(overrides)
    return body


@pytest.fixture
def s3(aws: boto3.Session) -> Any:
    client = aws.client("s3")
    client.create_bucket(Bucket=ARTIFACTS)
    return client


def stored_keys(s3: Any) -> list[str]:
    return [item["Key"] for item in s3.list_objects_v2(Bucket=ARTIFACTS).get("Contents", [])]


def test_writes_the_rendered_recipe_and_returns_string_outputs(s3: Any) -> None:
    outputs = prepare_recipe(s3, event())
    assert set(outputs) == OUTPUT_KEYS
    assert all(isinstance(value, str) for value in outputs.values())
    assert outputs["RecipeS3Uri"] == f"{PREFIX}recipe.yaml"
    assert outputs["RecipeS3Prefix"] == PREFIX
    body = s3.get_object(Bucket=ARTIFACTS, Key="runs/exec-1/recipe/recipe.yaml")["Body"].read()
    settings = validate_run({k: v for k, v in event().items() if k != "RecipeS3Prefix"})
    assert body == render_recipe(settings)
    assert outputs["RecipeSha256"] == hashlib.sha256(body).hexdigest()
    assert outputs["BaseModelHyperparameter"] == "base_model"
    assert outputs["StartsFromCheckpoint"] == "false"
    assert outputs["HasValidationData"] == "false"
    assert outputs["CheckpointCheck"] == (f"base-model: starts from {BASE_MODEL}; nothing to check")
    assert yaml.safe_load(body)["run"]["model_name_or_path"] == BASE_MODEL
    assert yaml.safe_load(body)["run"]["validation_data_s3_path"] == ""
    assert stored_keys(s3) == ["runs/exec-1/recipe/recipe.yaml"]


def test_a_run_from_a_checkpoint_says_so(s3: Any) -> None:
    outputs = prepare_recipe(s3, from_checkpoint(CHECKPOINT, FULL_RANK))
    assert outputs["BaseModelHyperparameter"] == "base_model_location"
    assert outputs["StartsFromCheckpoint"] == "true"
    recipe = yaml.safe_load(
        s3.get_object(Bucket=ARTIFACTS, Key="runs/exec-1/recipe/recipe.yaml")["Body"]
    )
    assert recipe["run"]["model_name_or_path"] == CHECKPOINT
    assert recipe["run"]["replicas"] == 8
    assert recipe["training_config"]["peft"]["peft_scheme"] == "null"


def test_a_run_with_validation_data_says_so_and_its_recipe_names_the_data(s3: Any) -> None:
    uri = "s3://data-bucket/datasets/validation.jsonl"
    outputs = prepare_recipe(s3, event(ValidationDataS3Uri=uri, ValCheckInterval="0"))
    assert outputs["HasValidationData"] == "true"
    recipe = yaml.safe_load(
        s3.get_object(Bucket=ARTIFACTS, Key="runs/exec-1/recipe/recipe.yaml")["Body"]
    )
    assert recipe["run"]["validation_data_s3_path"] == uri
    # A quarter of MaxSteps (100): validation runs within the run, not every 2500 steps.
    assert recipe["training_config"]["val_check_interval"] == 25


@pytest.mark.parametrize(
    ("prefix", "key", "normalised"),
    [
        (f"s3://{ARTIFACTS}/runs/exec-1/recipe", "runs/exec-1/recipe/recipe.yaml", PREFIX),
        (f"s3://{ARTIFACTS}/", "recipe.yaml", f"s3://{ARTIFACTS}/"),
        (f"s3://{ARTIFACTS}", "recipe.yaml", f"s3://{ARTIFACTS}/"),
    ],
)
def test_the_prefix_is_a_folder_with_or_without_a_slash(
    s3: Any, prefix: str, key: str, normalised: str
) -> None:
    outputs = prepare_recipe(s3, event(RecipeS3Prefix=prefix))
    assert outputs["RecipeS3Uri"] == f"s3://{ARTIFACTS}/{key}"
    assert outputs["RecipeS3Prefix"] == normalised
    assert stored_keys(s3) == [key]


def test_running_twice_gives_the_same_bytes_and_outputs(s3: Any) -> None:
    first = prepare_recipe(s3, event())
    body = s3.get_object(Bucket=ARTIFACTS, Key="runs/exec-1/recipe/recipe.yaml")["Body"].read()
    second = prepare_recipe(s3, event())
    again = s3.get_object(Bucket=ARTIFACTS, Key="runs/exec-1/recipe/recipe.yaml")["Body"].read()
    assert first == second
    assert body == again


def test_bad_parameters_and_prefix_fail_together_and_write_nothing(s3: Any) -> None:
    with pytest.raises(RecipeValidationError) as caught:
        prepare_recipe(
            s3,
            event(RecipeS3Prefix="artifacts-bucket/runs/", MaxSteps="1", LoraAlpha="1"),
        )
    problems = caught.value.problems
    assert [line.split("=")[0] for line in problems] == ["RecipeS3Prefix", "MaxSteps", "LoraAlpha"]
    assert "must be an s3://bucket/folder/ URI" in problems[0]
    assert stored_keys(s3) == []


def test_a_prefix_too_long_to_register_is_refused_before_training(s3: Any) -> None:
    # The longest folder whose recipe URI still fits is accepted; one character more is not.
    room = MAX_URI_CHARS - len(f"s3://{ARTIFACTS}/") - len("/recipe.yaml")
    fits = f"s3://{ARTIFACTS}/{'a' * room}/"
    outputs = prepare_recipe(s3, event(RecipeS3Prefix=fits))
    assert len(outputs["RecipeS3Uri"]) == MAX_URI_CHARS
    s3.delete_object(Bucket=ARTIFACTS, Key=f"{'a' * room}/recipe.yaml")
    too_long = f"s3://{ARTIFACTS}/{'a' * (room + 1)}/"
    with pytest.raises(RecipeValidationError) as caught:
        prepare_recipe(s3, event(RecipeS3Prefix=too_long, MaxSteps="1"))
    problems = caught.value.problems
    assert [line.split("=")[0] for line in problems] == ["RecipeS3Prefix", "MaxSteps"]
    assert f"is {MAX_URI_CHARS + 1} characters" in problems[0]
    assert f"over the {MAX_URI_CHARS} character limit of a RecipeS3Uri" in problems[0]
    assert len(problems[0]) < 300
    assert stored_keys(s3) == []


def test_a_missing_prefix_is_reported(s3: Any) -> None:
    body = event()
    del body["RecipeS3Prefix"]
    with pytest.raises(RecipeValidationError, match="RecipeS3Prefix=None"):
        prepare_recipe(s3, body)


def test_an_event_that_is_not_an_object_is_refused(s3: Any) -> None:
    with pytest.raises(RecipeValidationError, match="must be a JSON object, got list"):
        prepare_recipe(s3, [])  # type: ignore[arg-type]


def test_a_missing_bucket_names_the_object_and_the_fix(s3: Any) -> None:
    with pytest.raises(RecipeWriteError) as caught:
        prepare_recipe(s3, event(RecipeS3Prefix="s3://no-such-bucket/runs/exec-1/recipe/"))
    assert str(caught.value) == (
        "cannot write the recipe to s3://no-such-bucket/runs/exec-1/recipe/recipe.yaml: "
        "bucket no-such-bucket does not exist; correct RecipeS3Prefix"
    )


def test_the_handler_builds_its_client_from_the_environment(s3: Any) -> None:
    module._s3_client.cache_clear()
    try:
        outputs = handler(event(RunName="exec-2"), None)
    finally:
        module._s3_client.cache_clear()
    assert outputs["RecipeS3Uri"] == f"{PREFIX}recipe.yaml"
    assert (
        yaml.safe_load(
            s3.get_object(Bucket=ARTIFACTS, Key="runs/exec-1/recipe/recipe.yaml")["Body"]
        )["run"]["name"]
        == "exec-2"
    )


# -- the checkpoint's technique -------------------------------------------------------------------

GROUP = "nova-sft-test-checkpoints"


def registered_checkpoint(sm: Any, s3: Any, job: str, technique: str) -> str:
    """Register a run of `technique` from the base model the way the pipeline does; returns its
    checkpoint URI."""
    from lambdas.registry import RegistrationRequest, register_checkpoint
    from tests.lambdas.test_register_checkpoint import stage_run

    event = stage_run(s3, job, technique=technique)
    return register_checkpoint(sm, s3, RegistrationRequest.from_event(event)).record.checkpoint_uri


def from_checkpoint(checkpoint: str, technique: str = LORA) -> dict[str, object]:
    count = "8" if technique == FULL_RANK else "4"
    return event(
        Technique=technique,
        ModelNameOrPath=checkpoint,
        TrainingInstanceCount=count,
        ModelPackageGroupName=GROUP,
    )


def test_a_checkpoint_of_another_technique_is_refused_before_anything_is_written(
    clients: tuple[Any, Any],
) -> None:
    sm, s3 = clients
    checkpoint = registered_checkpoint(sm, s3, "job-lora", LORA)
    before = stored_keys(s3)
    with pytest.raises(RecipeValidationError) as caught:
        prepare_recipe(s3, from_checkpoint(checkpoint, FULL_RANK), sagemaker=lambda: sm)
    (problem,) = caught.value.problems
    assert problem.startswith(f"Technique FullRank cannot continue from checkpoint {checkpoint}")
    assert "trained with LoRA" in problem
    assert f"{GROUP}/1" in problem
    assert stored_keys(s3) == before  # no recipe for this run


def test_a_checkpoint_of_the_same_technique_is_allowed_and_named(
    clients: tuple[Any, Any],
) -> None:
    sm, s3 = clients
    checkpoint = registered_checkpoint(sm, s3, "job-lora", LORA)
    outputs = prepare_recipe(s3, from_checkpoint(checkpoint), sagemaker=lambda: sm)
    assert outputs["CheckpointCheck"].startswith("same-technique: LoRA, as arn:aws:sagemaker:")
    assert outputs["CheckpointCheck"].endswith(f"{GROUP}/1 records for {checkpoint}")


def test_a_checkpoint_the_registry_does_not_know_is_allowed_and_the_output_says_so(
    clients: tuple[Any, Any],
) -> None:
    sm, s3 = clients
    outputs = prepare_recipe(s3, from_checkpoint(CHECKPOINT), sagemaker=lambda: sm)
    assert outputs["StartsFromCheckpoint"] == "true"
    assert outputs["CheckpointCheck"].startswith(
        f"unregistered: no version of model package group {GROUP} records {CHECKPOINT}"
    )
    assert "was not checked" in outputs["CheckpointCheck"]


def test_a_run_from_the_base_model_never_builds_a_sagemaker_client(s3: Any) -> None:
    def no_client() -> Any:
        raise AssertionError("a run from the base model must not read the registry")

    outputs = prepare_recipe(s3, event(), sagemaker=no_client)
    assert outputs["CheckpointCheck"].startswith("base-model:")


def test_a_run_from_a_checkpoint_needs_the_group(s3: Any) -> None:
    body = from_checkpoint(CHECKPOINT)
    del body["ModelPackageGroupName"]
    with pytest.raises(RecipeValidationError, match="ModelPackageGroupName is missing"):
        prepare_recipe(s3, body, sagemaker=lambda: None)
    with pytest.raises(RecipeValidationError, match="not a model package group name"):
        prepare_recipe(s3, {**body, "ModelPackageGroupName": "a/b"}, sagemaker=lambda: None)
    assert stored_keys(s3) == []


def test_the_handler_checks_the_technique_with_its_own_client(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    checkpoint = registered_checkpoint(sm, s3, "job-lora", LORA)
    module._s3_client.cache_clear()
    module._sagemaker_client.cache_clear()
    try:
        with pytest.raises(RecipeValidationError, match="trained with LoRA"):
            handler(from_checkpoint(checkpoint, FULL_RANK), None)
    finally:
        module._s3_client.cache_clear()
        module._sagemaker_client.cache_clear()

"""The training request of the pipeline equals the reference notebook's, for every kind of run.

For each technique, from the base model and from an s3:// checkpoint, with validation data and
without, the same run values go two ways against the local moto server:

- the notebook's way: `PyTorch(training_recipe=<template>, recipe_overrides=<values>, ...)` and
  `fit(inputs={"train": ..., "validation": ...}, wait=False)` (no "validation" without data; the
  channel as AWS's tooling sends it), whose CreateTrainingJob request is captured from the wire
  with a botocore `before-call` hook;
- the pipeline's way: the definition's PrepareRecipe event is resolved from the same parameters
  and run through the real prepare_recipe core, its StartsFromCheckpoint and HasValidationData
  pick the conditions' branches, and the chosen training step's Arguments are resolved with the
  step's outputs.

The two requests must be equal apart from what the pipeline names differently on purpose: the
recipe channel's S3 folder and the recipe's file name (and the job name, which Pipelines assigns).
The recipe files themselves must hold the same values.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest
import yaml
from botocore.validate import ParamValidator

from lambdas.prepare_recipe import prepare_recipe
from lambdas.recipe import RUN_KEYS, recipe_values, validate_run
from lambdas.recipe.spec import (
    BASE_MODEL,
    FULL_RANK,
    LORA,
    NO_VALIDATION_DATA,
    TEMPLATE_FILES,
    nova_sft_image_uri,
)
from pipeline.definition import CONDITION_STEP, PREPARE_STEP
from tests.pipeline.test_definition import ARTIFACTS, ENV, INPUTS, built_definition, resolve

EXECUTION_ID = "k3x9q2w7e5r1"
NOTEBOOK_BUCKET = "notebook-default-bucket"
CHECKPOINT = "s3://customer-escrow-123456789012-smtj-a1b2c3/nova-run-1/step_100"

# The notebook's values, which the pipeline receives as parameters. None is the parameter's
# default, so a parameter that a step ignored would show up as a difference.
RUN: dict[str, Any] = {
    "TrainDataS3Uri": "s3://unit-data-bucket/datasets/train.jsonl",
    "ValidationDataS3Uri": "s3://unit-data-bucket/datasets/validation.jsonl",
    "TrainingInstanceType": "ml.p5.48xlarge",
    "TrainingInstanceCount": 16,
    "MaxRuntimeSeconds": 432000,
    "MaxSteps": 250,
    "GlobalBatchSize": 64,
    "MaxLength": 16384,
    "LearningRate": 2e-5,
    "WarmupSteps": 10,
    "LoraAlpha": 128,
    "LoraPlusLrRatio": 16.0,
    "ReasoningEnabled": True,
    "ValCheckInterval": 50,
}
OUTPUT_PATH = f"s3://{ARTIFACTS}/runs/{EXECUTION_ID}/training"
RUN_NAME = f"{ENV.pipeline_name}-{EXECUTION_ID}"


@dataclass
class Notebook:
    """The notebook's SDK session on the moto server, and what its client sent."""

    session: Any
    sent: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def notebook_session(_boto_session: boto3.Session) -> Any:
    """A plain SDK session on the moto server, as the notebook makes one (no defaults file)."""
    from sagemaker.session import Session

    session = Session(
        boto_session=_boto_session,
        default_bucket=NOTEBOOK_BUCKET,
        # Given so that no defaults file of this machine is read; cleared below, as the notebook
        # runs with none (and every lookup of a non-empty config costs a schema validation).
        sagemaker_config={"SchemaVersion": "1.0", "SageMaker": {}},
    )
    session.sagemaker_config = {}
    return session


@pytest.fixture
def notebook(
    aws: boto3.Session, notebook_session: Any, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Notebook]:
    """The notebook session on a fresh server, recording every CreateTrainingJob request body
    as sent on the wire. Its telemetry report, which would leave the machine, is not sent."""
    from sagemaker.telemetry import telemetry_logging

    monkeypatch.setattr(telemetry_logging, "_send_telemetry_request", lambda *a, **k: None)
    recorder = Notebook(notebook_session)

    def capture(params: dict[str, Any], **_kwargs: Any) -> None:
        recorder.sent.append(json.loads(params["body"]))

    # A client copies its session's event hooks when it is made: hook the SDK's own client.
    events = notebook_session.sagemaker_client.meta.events
    event = "before-call.sagemaker.CreateTrainingJob"
    events.register(event, capture)
    try:
        yield recorder
    finally:
        events.unregister(event, capture)


def nested(values: dict[str, Any]) -> dict[str, Any]:
    """{"a.b": 1} -> {"a": {"b": 1}}: recipe_overrides take the recipe's shape."""
    tree: dict[str, Any] = {}
    for path, value in values.items():
        *parents, leaf = path.split(".")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def notebook_request(aws: boto3.Session, notebook: Notebook, run: dict[str, Any]) -> dict[str, Any]:
    """What the notebook's estimator.fit() sends for this run's recipe values."""
    from sagemaker.inputs import TrainingInput
    from sagemaker.pytorch.estimator import PyTorch

    settings = validate_run(run)
    overrides = nested(dict(recipe_values(settings)))
    # The notebook's HyperPod-only fields, empty for training jobs.
    overrides["run"].update({"data_s3_path": "", "output_s3_path": ""})
    aws.client("s3").create_bucket(Bucket=NOTEBOOK_BUCKET)
    estimator = PyTorch(
        output_path=OUTPUT_PATH,
        role=INPUTS["execution_role_arn"],
        disable_profiler=True,
        debugger_hook_config=False,
        instance_count=RUN["TrainingInstanceCount"],
        instance_type=RUN["TrainingInstanceType"],
        training_recipe=str(TEMPLATE_FILES[settings.technique]),
        recipe_overrides=overrides,
        max_run=RUN["MaxRuntimeSeconds"],
        sagemaker_session=notebook.session,
        image_uri=nova_sft_image_uri(ENV.region),
        # The project encrypts job output with its own key; the notebook takes the same argument.
        output_kms_key=INPUTS["kms_key_arn"],
    )
    inputs = {
        "train": TrainingInput(
            s3_data=RUN["TrainDataS3Uri"], distribution="FullyReplicated", s3_data_type="Converse"
        )
    }
    if settings.has_validation_data:
        inputs["validation"] = TrainingInput(
            s3_data=settings.validation_data_s3_uri,
            distribution="FullyReplicated",
            s3_data_type="Converse",
        )
    estimator.fit(inputs=inputs, wait=False)
    assert len(notebook.sent) == 1, "fit() should send exactly one CreateTrainingJob"
    return notebook.sent[0]


def pipeline_request(
    aws: boto3.Session, definition: dict[str, Any], parameters: dict[str, Any]
) -> tuple[str, dict[str, Any], dict[str, str]]:
    """(chosen training step, its resolved request, PrepareRecipe's outputs) for one execution."""
    steps = {step["Name"]: step for step in definition["Steps"]}
    scope: dict[str, Any] = {
        f"Parameters.{p['Name']}": p.get("DefaultValue") for p in definition["Parameters"]
    }
    scope.update({f"Parameters.{name}": value for name, value in parameters.items()})
    scope["Execution.PipelineExecutionId"] = EXECUTION_ID
    event = resolve(steps[PREPARE_STEP]["Arguments"], scope)
    aws.client("s3").create_bucket(Bucket=ARTIFACTS)
    outputs = prepare_recipe(aws.client("s3"), event)
    for name, value in outputs.items():
        scope[f"Steps.{PREPARE_STEP}.OutputParameters['{name}']"] = value

    # Follow the conditions, as Pipelines does, down to the one training step that runs.
    chosen = [steps[CONDITION_STEP]]
    while chosen[0]["Type"] == "Condition":
        condition = chosen[0]["Arguments"]
        (check,) = condition["Conditions"]
        assert check["Type"] == "Equals"
        taken = resolve(check["LeftValue"], scope) == check["RightValue"]
        chosen = condition["IfSteps" if taken else "ElseSteps"]
    (training,) = [step for step in chosen if step["Type"] == "Training"]
    return training["Name"], resolve(training["Arguments"], scope), outputs


def recipe_channel(request: dict[str, Any]) -> dict[str, Any]:
    channels: list[dict[str, Any]] = request["InputDataConfig"]
    (channel,) = [c for c in channels if c["ChannelName"] == "recipe"]
    return channel


def without_recipe_location(request: dict[str, Any]) -> dict[str, Any]:
    """The request with the recipe folder, the recipe file name and the job name taken out."""
    copy: dict[str, Any] = json.loads(json.dumps(request))
    copy.pop("TrainingJobName", None)
    recipe_channel(copy)["DataSource"]["S3DataSource"]["S3Uri"] = "<recipe folder>"
    local_path = copy["HyperParameters"]["sagemaker_recipe_local_path"]
    folder, _, _name = local_path.rpartition("/")
    copy["HyperParameters"]["sagemaker_recipe_local_path"] = f"{folder}/<recipe file>"
    return copy


def s3_text(aws: boto3.Session, uri: str) -> str:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    body = aws.client("s3").get_object(Bucket=bucket, Key=key)["Body"].read()
    return str(body.decode("utf-8"))


@dataclass(frozen=True)
class Case:
    technique: str
    source: str
    expected_step: str
    hyperparameter: str
    validation: str = str(RUN["ValidationDataS3Uri"])


CASES = {
    "lora-base": Case(LORA, BASE_MODEL, "TrainFromBaseModelValidating", "base_model"),
    "lora-checkpoint": Case(
        LORA, CHECKPOINT, "TrainFromCheckpointValidating", "base_model_location"
    ),
    "fullrank-base": Case(FULL_RANK, BASE_MODEL, "TrainFromBaseModelValidating", "base_model"),
    "fullrank-checkpoint": Case(
        FULL_RANK, CHECKPOINT, "TrainFromCheckpointValidating", "base_model_location"
    ),
    "lora-base-no-validation": Case(
        LORA, BASE_MODEL, "TrainFromBaseModel", "base_model", NO_VALIDATION_DATA
    ),
    "fullrank-checkpoint-no-validation": Case(
        FULL_RANK, CHECKPOINT, "TrainFromCheckpoint", "base_model_location", NO_VALIDATION_DATA
    ),
}


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_the_pipeline_sends_what_the_notebook_sends(
    aws: boto3.Session, notebook: Notebook, case: Case
) -> None:
    parameters = {
        **RUN,
        "Technique": case.technique,
        "ModelNameOrPath": case.source,
        "ValidationDataS3Uri": case.validation,
    }
    step, pipeline, prepared = pipeline_request(aws, built_definition(), parameters)
    assert step == case.expected_step

    # The notebook names its run itself; it is given the name the pipeline gives this execution.
    run = {key: parameters[key] for key in RUN_KEYS if key in parameters}
    sent = notebook_request(aws, notebook, {**run, "RunName": RUN_NAME})

    # The hyperparameter that carries the source is the one the SDK picks for it.
    assert sent["HyperParameters"][case.hyperparameter] == case.source
    assert without_recipe_location(pipeline) == without_recipe_location(sent)
    # The request is one the real API accepts (Pipelines adds the job name).
    model = aws.client("sagemaker").meta.service_model.operation_model("CreateTrainingJob")
    report = ParamValidator().validate(
        {**pipeline, "TrainingJobName": "named-by-pipelines"}, model.input_shape
    )
    assert not report.has_errors(), report.generate_report()

    # Where the recipes differ: the pipeline's is this run's recipe.yaml, mounted where the
    # hyperparameter says.
    folder = recipe_channel(pipeline)["DataSource"]["S3DataSource"]["S3Uri"]
    assert folder == f"s3://{ARTIFACTS}/runs/{EXECUTION_ID}/recipe/"
    assert pipeline["HyperParameters"]["sagemaker_recipe_local_path"] == (
        "/opt/ml/input/data/recipe/recipe.yaml"
    )
    # ...and the two recipe files hold the same values.
    notebook_folder = recipe_channel(sent)["DataSource"]["S3DataSource"]["S3Uri"]
    notebook_file = sent["HyperParameters"]["sagemaker_recipe_local_path"].rpartition("/")[2]
    notebook_recipe = yaml.safe_load(s3_text(aws, f"{notebook_folder}/{notebook_file}"))
    pipeline_recipe = yaml.safe_load(s3_text(aws, prepared["RecipeS3Uri"]))
    assert pipeline_recipe == notebook_recipe
    assert pipeline_recipe["run"]["model_name_or_path"] == case.source
    # Validation data reaches the job both ways AWS's tooling sends it, or not at all.
    channels = {c["ChannelName"] for c in pipeline["InputDataConfig"]}
    if case.validation == NO_VALIDATION_DATA:
        assert channels == {"train", "recipe"}
        assert pipeline_recipe["run"]["validation_data_s3_path"] == ""
    else:
        assert channels == {"train", "recipe", "validation"}
        assert pipeline_recipe["run"]["validation_data_s3_path"] == case.validation
        assert pipeline_recipe["training_config"]["val_check_interval"] == 50

"""The definition of an environment that tracks experiments (pipeline/step_builder.py), and the
recipe its prepare step then writes (lambdas/prepare_recipe.py, against moto)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import boto3
import pytest
import yaml

from lambdas.prepare_recipe import EXPERIMENT_KEY, TRACKING_ARN_KEY, prepare_recipe
from lambdas.recipe import RecipeValidationError
from lambdas.tracking.registration import ARN_KEY, RUN_NAME_KEY, tracking_target
from pipeline import step_names
from pipeline.definition import DefinitionBuildError, build_pipeline, definition_json
from tests.lambdas.test_prepare_recipe import ARTIFACTS, event, stored_keys
from tests.pipeline import test_definition as unit

ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/nova-sft-unit"
TRACKED = dataclasses.replace(unit.ENV, tracking="create")


@pytest.fixture(scope="module")
def tracked() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        definition_json(build_pipeline(env=TRACKED, **unit.INPUTS, tracking_arn=ARN))
    )
    return document


def scope_of(definition: dict[str, Any]) -> dict[str, Any]:
    scope = {f"Parameters.{p['Name']}": p.get("DefaultValue") for p in definition["Parameters"]}
    scope["Execution.PipelineExecutionId"] = "x1y2z3w4v5u6"
    return scope


def test_the_prepare_step_names_the_server_and_the_experiment(tracked: dict[str, Any]) -> None:
    step = unit.steps_by_name(tracked)[step_names.PREPARE_STEP]
    assert step["Arguments"][TRACKING_ARN_KEY] == ARN
    assert step["Arguments"][EXPERIMENT_KEY] == TRACKED.pipeline_name


@pytest.mark.parametrize("register", [v.register_step for v in step_names.JOB_VARIANTS])
def test_every_register_step_names_the_run_the_recipe_names(
    tracked: dict[str, Any], register: str
) -> None:
    arguments = unit.steps_by_name(tracked)[register]["Arguments"]
    tracking = {key: arguments[key] for key in (ARN_KEY, EXPERIMENT_KEY, RUN_NAME_KEY)}
    target = tracking_target(unit.resolve(tracking, scope_of(tracked)))
    assert target is not None
    assert target.arn == ARN
    assert target.experiment_name == TRACKED.pipeline_name
    # The prepare step's RunName, which the recipe's run.mlflow_run_name is.
    prepare = unit.steps_by_name(tracked)[step_names.PREPARE_STEP]
    run_name = unit.resolve(prepare["Arguments"]["RunName"], scope_of(tracked))
    assert target.run_name == run_name == f"{TRACKED.pipeline_name}-x1y2z3w4v5u6"


def test_without_tracking_no_step_gets_a_tracking_input() -> None:
    text = json.dumps(unit.built_definition())
    for key in (ARN_KEY, EXPERIMENT_KEY, RUN_NAME_KEY):
        assert key not in text


def test_the_tracking_arn_comes_exactly_with_tracking() -> None:
    with pytest.raises(DefinitionBuildError, match="pass tracking_arn exactly"):
        build_pipeline(env=TRACKED, **unit.INPUTS)
    with pytest.raises(DefinitionBuildError, match="pass tracking_arn exactly"):
        build_pipeline(env=unit.ENV, **unit.INPUTS, tracking_arn=ARN)


@pytest.fixture
def s3(aws: boto3.Session) -> Any:
    client = aws.client("s3")
    client.create_bucket(Bucket=ARTIFACTS)
    return client


def recipe_of(s3: Any, uri: str) -> dict[str, Any]:
    body = s3.get_object(Bucket=ARTIFACTS, Key=uri.split("/", 3)[3])["Body"].read()
    return dict(yaml.safe_load(body))


def test_the_recipe_logs_to_the_server_experiment_and_run(s3: Any) -> None:
    outputs = prepare_recipe(s3, event(**{TRACKING_ARN_KEY: ARN, EXPERIMENT_KEY: "nova-sft-unit"}))
    run = recipe_of(s3, outputs["RecipeS3Uri"])["run"]
    assert run["mlflow_tracking_uri"] == ARN
    assert run["mlflow_experiment_name"] == "nova-sft-unit"
    assert run["mlflow_run_name"] == "exec-1"


def test_without_tracking_inputs_the_recipe_does_not_track(s3: Any) -> None:
    run = recipe_of(s3, prepare_recipe(s3, event())["RecipeS3Uri"])["run"]
    assert run["mlflow_tracking_uri"] == ""


def test_bad_tracking_inputs_are_refused_before_anything_is_written(s3: Any) -> None:
    with pytest.raises(RecipeValidationError) as caught:
        prepare_recipe(s3, event(**{TRACKING_ARN_KEY: "arn:aws:s3:::bucket"}))
    message = str(caught.value)
    assert TRACKING_ARN_KEY in message
    assert EXPERIMENT_KEY in message
    assert stored_keys(s3) == []

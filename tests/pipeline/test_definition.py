"""The pipeline definition as a whole (`pipeline.definition`): its references resolve, its inputs
are checked, and it matches the reviewed snapshot. The helpers below serve the tests of the
builder's parts (test_parameters.py, test_step_names.py, test_step_builder.py,
test_training_step.py, test_offline_sdk.py) and the notebook equivalence
(test_definition_equivalence.py).

The snapshot (snapshots/definition.json) is the definition as last reviewed. After an intended
change, regenerate it and review the diff with the change:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest -q tests/pipeline/test_definition.py -k snapshot
"""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.model import ListShape, MapShape, Shape, StructureShape

from pipeline.config import EnvironmentConfig
from pipeline.definition import (
    PREPARE_STEP,
    REGISTER_FROM_CHECKPOINT,
    TRAIN_FROM_BASE_MODEL,
    VALIDATE_STEP,
    DefinitionBuildError,
    build_pipeline,
    definition_json,
)

SNAPSHOT = Path(__file__).parent / "snapshots" / "definition.json"
UPDATE_SNAPSHOTS = "UPDATE_SNAPSHOTS"

# An environment of its own, so that neither cdk.json nor the recipe defaults hide where a
# default comes from: every value differs from the recipe's and the sandbox's.
ENV = EnvironmentConfig(
    name="unit",
    account="123456789012",
    region="us-east-1",
    training_instance_type="ml.p5en.48xlarge",
    training_instance_count=8,
    max_runtime_seconds=7200,
    noncurrent_version_retention_days=7,
    log_retention_days=14,
    termination_protection=False,
)

ARTIFACTS = "unit-artifacts-bucket"
INPUTS: dict[str, str] = {
    "role_arn": "arn:aws:iam::123456789012:role/unit-pipeline",
    "execution_role_arn": "arn:aws:iam::123456789012:role/unit-training",
    "validate_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:unit-validate",
    "prepare_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:unit-prepare",
    "register_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:unit-register",
    "prepare_evaluation_function_arn": (
        "arn:aws:lambda:us-east-1:123456789012:function:unit-prepare-evaluation"
    ),
    "artifacts_bucket": ARTIFACTS,
    "data_bucket": "unit-data-bucket",
    "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}

# The variables a pipeline definition may read anywhere (AWS: "Execution variables").
EXECUTION_VARIABLES = {
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "PipelineName",
    "PipelineArn",
    "StartDateTime",
    "CurrentDateTime",
}


def build(env: EnvironmentConfig = ENV, **overrides: str) -> dict[str, Any]:
    """The definition for `env` built from INPUTS (with overrides), parsed."""
    document: dict[str, Any] = json.loads(
        definition_json(build_pipeline(env=env, **{**INPUTS, **overrides}))
    )
    return document


@functools.cache
def _built_text() -> str:
    return definition_json(build_pipeline(env=ENV, **INPUTS))


def built_definition() -> dict[str, Any]:
    """The definition for ENV and INPUTS, built once per test process (a fresh parsed copy)."""
    document: dict[str, Any] = json.loads(_built_text())
    return document


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return built_definition()


# -- reading a definition ---------------------------------------------------------------------


def flatten(
    steps: list[dict[str, Any]], gates: tuple[str, ...] = ()
) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """Every step with the condition branches it sits in, e.g. ("Cond:if",)."""
    for step in steps:
        yield step, gates
        if step["Type"] == "Condition":
            arguments = step["Arguments"]
            yield from flatten(arguments.get("IfSteps", []), (*gates, f"{step['Name']}:if"))
            yield from flatten(arguments.get("ElseSteps", []), (*gates, f"{step['Name']}:else"))


def steps_by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step, _gates in flatten(document["Steps"])}


def gets(value: Any) -> Iterator[str]:
    """Every `Get` path inside a value (not inside nested branch steps)."""
    if isinstance(value, dict):
        if "Get" in value:
            yield value["Get"]
        for key, item in value.items():
            if key not in ("IfSteps", "ElseSteps"):
                yield from gets(item)
    elif isinstance(value, list):
        for item in value:
            yield from gets(item)


def resolve(value: Any, scope: dict[str, Any]) -> Any:
    """Evaluate Get and Std:Join in a value, from scope {"Parameters.X": ..., "Steps.S.p": ...}."""
    if isinstance(value, list):
        return [resolve(item, scope) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        if value["Get"] not in scope:
            raise KeyError(f"nothing to resolve {value['Get']} with")
        return scope[value["Get"]]
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(resolve(item, scope)) for item in join["Values"])
    assert not any(key.startswith("Std:") for key in value), f"unexpected function in {value}"
    return {key: resolve(item, scope) for key, item in value.items()}


@functools.cache
def describe_training_job_shape() -> StructureShape:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape: StructureShape = model.operation_model("DescribeTrainingJob").output_shape
    return shape


_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']*)'\]")


def response_has_path(shape: Shape, path: str) -> bool:
    """True iff `path` (Properties syntax: a.b[0]['k']) exists in the response shape."""
    position = 0
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None:
            return False
        member, index, key = match.groups()
        if member and isinstance(shape, StructureShape) and member in shape.members:
            shape = shape.members[member]
        elif index and isinstance(shape, ListShape):
            shape = shape.member
        elif key is not None and isinstance(shape, MapShape):
            shape = shape.value
        else:
            return False
        position = match.end()
    return True


def property_problem(source: dict[str, Any], prop: str) -> str | None:
    """Why a property path of an earlier step cannot be read, or None when it can."""
    if source["Type"] == "Lambda":
        declared = {o["OutputName"] for o in source.get("OutputParameters", [])}
        match = re.fullmatch(r"OutputParameters\['([^']+)'\]", prop)
        if match is None or match.group(1) not in declared:
            return "is not a declared output"
        return None
    if source["Type"] == "Training":
        if not response_has_path(describe_training_job_shape(), prop):
            return "is not in DescribeTrainingJob"
        return None
    return f"reads a {source['Type']} step"


def reference_problems(document: dict[str, Any]) -> list[str]:
    """Every Get that is not a declared parameter, an execution variable, or a property of an
    earlier step (on the same branch) that the real response shape or declared outputs have."""
    parameters = {p["Name"] for p in document["Parameters"]}
    placed = list(flatten(document["Steps"]))
    where = {step["Name"]: gates for step, gates in placed}
    kinds = {step["Name"]: step for step, _ in placed}
    problems = []
    for step, gates in placed:
        for path in gets(step.get("Arguments", {})):
            head, _, rest = path.partition(".")
            if head == "Parameters":
                if rest not in parameters:
                    problems.append(f"{step['Name']}: {path} is not a declared parameter")
                continue
            if head == "Execution":
                if rest not in EXECUTION_VARIABLES:
                    problems.append(f"{step['Name']}: {path} is not an execution variable")
                continue
            target, _, prop = rest.partition(".")
            if head != "Steps" or target not in kinds:
                problems.append(f"{step['Name']}: {path} names no step")
                continue
            if target == step["Name"] or where[target] != gates[: len(where[target])]:
                problems.append(f"{step['Name']}: {path} is not an earlier step on its branch")
                continue
            problem = property_problem(kinds[target], prop)
            if problem:
                problems.append(f"{step['Name']}: {path} {problem}")
    return problems


# -- references -------------------------------------------------------------------------------


def test_every_get_resolves_to_something_that_exists(definition: dict[str, Any]) -> None:
    all_gets = [path for step, _ in flatten(definition["Steps"]) for path in gets(step)]
    assert any(path.startswith("Steps.TrainFrom") for path in all_gets)  # the check has work
    assert reference_problems(definition) == []


@pytest.mark.parametrize(
    ("find", "replace", "problem"),
    [
        ("Parameters.Technique", "Parameters.Tecnique", "is not a declared parameter"),
        ("Execution.PipelineExecutionArn", "Execution.TrainingJobName", "not an execution"),
        ("ModelArtifacts.S3ModelArtifacts", "ModelArtifacts.S3ModelArtifact", "DescribeTraining"),
        ("OutputParameters['RecipeS3Uri']", "OutputParameters['RecipeUri']", "declared output"),
        (
            "Steps.TrainFromBaseModel.TrainingJobName",
            "Steps.TrainFromCheckpoint.TrainingJobName",
            "earlier step on its branch",
        ),
    ],
)
def test_the_reference_check_catches_each_kind_of_dangling_get(
    definition: dict[str, Any], find: str, replace: str, problem: str
) -> None:
    text = json.dumps(definition)
    assert find in text
    broken = json.loads(text.replace(find, replace, 1))
    problems = reference_problems(broken)
    assert len(problems) == 1
    assert problem in problems[0]


# -- inputs -----------------------------------------------------------------------------------


def test_cdk_tokens_pass_through_to_the_json() -> None:
    tokens = {name: f"${{Token[TOKEN.{i}]}}" for i, name in enumerate(INPUTS, start=100)}
    document = build(ENV, **tokens)
    steps = steps_by_name(document)
    request = steps[TRAIN_FROM_BASE_MODEL]["Arguments"]
    assert request["RoleArn"] == tokens["execution_role_arn"]
    assert request["OutputDataConfig"]["KmsKeyId"] == tokens["kms_key_arn"]
    assert request["OutputDataConfig"]["S3OutputPath"]["Std:Join"]["Values"][0] == (
        f"s3://{tokens['artifacts_bucket']}/runs/"
    )
    assert steps[VALIDATE_STEP]["FunctionArn"] == tokens["validate_function_arn"]
    assert steps[PREPARE_STEP]["FunctionArn"] == tokens["prepare_function_arn"]
    assert steps[REGISTER_FROM_CHECKPOINT]["FunctionArn"] == tokens["register_function_arn"]
    # The pipeline's own role and the data bucket belong to the stack, not to the body.
    text = json.dumps(document)
    assert tokens["role_arn"] not in text
    assert tokens["data_bucket"] not in text


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_an_empty_input_is_refused_by_name(name: str) -> None:
    with pytest.raises(DefinitionBuildError, match=name):
        build_pipeline(env=ENV, **{**INPUTS, name: ""})


def test_a_region_without_the_nova_image_is_refused() -> None:
    env = EnvironmentConfig(**{**ENV.__dict__, "region": "eu-west-3"})
    with pytest.raises(DefinitionBuildError, match="eu-west-3"):
        build_pipeline(env=env, **INPUTS)


def test_snapshot(definition: dict[str, Any]) -> None:
    """The definition as reviewed. Regenerate: UPDATE_SNAPSHOTS=1 pytest <this file>."""
    text = json.dumps(definition, indent=2, sort_keys=True) + "\n"
    if os.environ.get(UPDATE_SNAPSHOTS) == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.exists(), f"no snapshot yet: run with {UPDATE_SNAPSHOTS}=1 and review it"
    assert text == SNAPSHOT.read_text(encoding="utf-8"), (
        f"the definition changed: review the diff, then regenerate with {UPDATE_SNAPSHOTS}=1"
    )

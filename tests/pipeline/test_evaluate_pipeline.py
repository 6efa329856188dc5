"""The evaluate-only pipeline (`pipeline.evaluate_pipeline`): its parameters, steps and the
record steps' inputs, built offline like the training pipeline."""

from __future__ import annotations

import functools
import json
from typing import Any

import pytest

from lambdas.prepare_evaluation import parse_event
from lambdas.recipe.evaluation_spec import EVALUATION_TASKS
from pipeline.definition import definition_json
from pipeline.evaluate_pipeline import (
    RECORD_OUTPUTS,
    build_evaluate_pipeline,
    evaluate_pipeline_name,
)
from pipeline.step_names import DefinitionBuildError
from tests.pipeline import test_definition as unit

INPUTS = {
    "execution_role_arn": unit.INPUTS["execution_role_arn"],
    "validate_function_arn": unit.INPUTS["validate_function_arn"],
    "prepare_evaluation_function_arn": unit.INPUTS["prepare_evaluation_function_arn"],
    "record_evaluation_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:unit-record",
    "artifacts_bucket": unit.ARTIFACTS,
    "kms_key_arn": unit.INPUTS["kms_key_arn"],
}


@functools.cache
def _text() -> str:
    return definition_json(build_evaluate_pipeline(env=unit.ENV, **INPUTS))


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(_text())
    return document


@pytest.fixture(scope="module")
def steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return unit.steps_by_name(definition)


def test_parameters_score_a_model_on_a_task_without_a_gate(definition: dict[str, Any]) -> None:
    declared = {p["Name"]: p for p in definition["Parameters"]}
    assert list(declared) == [
        "ModelNameOrPath",
        "ModelPackageArn",
        "EvaluationTask",
        "EvaluationDataS3Uri",
        "EvaluationInstanceType",
    ]
    assert declared["ModelNameOrPath"]["DefaultValue"] == "nova-lite-2/prod"
    assert declared["ModelPackageArn"]["DefaultValue"] == "none"
    assert declared["EvaluationTask"]["EnumValues"] == list(EVALUATION_TASKS)


def test_steps_validate_prepare_then_one_of_four_jobs_and_its_record(
    definition: dict[str, Any], steps: dict[str, dict[str, Any]]
) -> None:
    assert [s["Name"] for s in definition["Steps"]] == [
        "ValidateData",
        "PrepareEvaluation",
        "EvaluatesCheckpoint",
    ]
    assert steps["PrepareEvaluation"]["DependsOn"] == ["ValidateData"]
    jobs = {
        name: step["Arguments"]["HyperParameters"]
        for name, step in steps.items()
        if step["Type"] == "Training"
    }
    assert set(jobs) == {"EvalCheckpoint", "BenchCheckpoint", "EvalBaseModel", "BenchBaseModel"}
    for name, hyper in jobs.items():
        key = "base_model_location" if "Checkpoint" in name else "base_model"
        other = "base_model" if key == "base_model_location" else "base_model_location"
        assert key in hyper
        assert other not in hyper
    for record in ("RecordCheckpoint", "RecordBaseModelBenchmarked"):
        step = steps[record]
        assert step["FunctionArn"] == INPUTS["record_evaluation_function_arn"]
        assert [o["OutputName"] for o in step["OutputParameters"]] == list(RECORD_OUTPUTS)
        assert step["Arguments"]["ModelPackageArn"] == {"Get": "Parameters.ModelPackageArn"}
        assert "GateMetric" not in step["Arguments"]


def test_validate_checks_the_evaluation_file_alone(steps: dict[str, dict[str, Any]]) -> None:
    arguments = steps["ValidateData"]["Arguments"]
    assert arguments["EvaluationOnly"] == "true"
    assert "TrainDataS3Uri" not in arguments


def test_prepare_evaluation_gets_the_model_by_name(
    definition: dict[str, Any], steps: dict[str, dict[str, Any]]
) -> None:
    scope = {f"Parameters.{p['Name']}": p.get("DefaultValue") for p in definition["Parameters"]}
    scope["Parameters.EvaluationDataS3Uri"] = "s3://data-bucket/eval/gen_qa.jsonl"
    scope["Execution.PipelineExecutionId"] = "x1y2z3w4v5u6"
    request = parse_event(unit.resolve(steps["PrepareEvaluation"]["Arguments"], scope))
    assert request.model_name_or_path == "nova-lite-2/prod"
    assert request.model_artifacts_uri is None
    assert request.run_name == f"{evaluate_pipeline_name(unit.ENV)}-x1y2z3w4v5u6"


def test_an_empty_input_is_refused() -> None:
    with pytest.raises(DefinitionBuildError, match="record_evaluation_function_arn"):
        build_evaluate_pipeline(env=unit.ENV, **{**INPUTS, "record_evaluation_function_arn": ""})


def test_the_build_is_the_same_bytes_every_time() -> None:
    assert definition_json(build_evaluate_pipeline(env=unit.ENV, **INPUTS)) == _text()

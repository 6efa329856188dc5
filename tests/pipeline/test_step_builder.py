"""The steps the builder wires (`pipeline.step_builder`): their order and branches, and the
Lambda steps' inputs and outputs."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.recipe import RUN_KEYS
from pipeline import step_names
from tests.pipeline import test_definition as unit


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return unit.built_definition()


def _equals_true(output: str) -> list[dict[str, Any]]:
    return [
        {
            "Type": "Equals",
            "LeftValue": {"Get": f"Steps.PrepareRecipe.OutputParameters['{output}']"},
            "RightValue": "true",
        }
    ]


def test_steps_run_validate_prepare_then_one_of_four_jobs(definition: dict[str, Any]) -> None:
    top = [step["Name"] for step in definition["Steps"]]
    assert top == [step_names.VALIDATE_STEP, step_names.PREPARE_STEP, step_names.CONDITION_STEP]
    assert definition["Steps"][1]["DependsOn"] == [step_names.VALIDATE_STEP]
    condition = definition["Steps"][2]["Arguments"]
    assert condition["Conditions"] == _equals_true("StartsFromCheckpoint")
    branches = {}
    for side in ("IfSteps", "ElseSteps"):
        (inner,) = condition[side]
        assert inner["Type"] == "Condition"
        assert inner["Arguments"]["Conditions"] == _equals_true("HasValidationData")
        branches[inner["Name"]] = {
            inner_side: [s["Name"] for s in inner["Arguments"][inner_side]]
            for inner_side in ("IfSteps", "ElseSteps")
        }
    by_training = {v.training_step: v for v in step_names.JOB_VARIANTS}
    assert branches == {
        step_names.CHECKPOINT_VALIDATION_CONDITION: {
            "IfSteps": [
                step_names.TRAIN_FROM_CHECKPOINT_WITH_VALIDATION,
                by_training[step_names.TRAIN_FROM_CHECKPOINT_WITH_VALIDATION].evaluates_condition,
            ],
            "ElseSteps": [
                step_names.TRAIN_FROM_CHECKPOINT,
                by_training[step_names.TRAIN_FROM_CHECKPOINT].evaluates_condition,
            ],
        },
        step_names.BASE_MODEL_VALIDATION_CONDITION: {
            "IfSteps": [
                step_names.TRAIN_FROM_BASE_MODEL_WITH_VALIDATION,
                by_training[step_names.TRAIN_FROM_BASE_MODEL_WITH_VALIDATION].evaluates_condition,
            ],
            "ElseSteps": [
                step_names.TRAIN_FROM_BASE_MODEL,
                by_training[step_names.TRAIN_FROM_BASE_MODEL].evaluates_condition,
            ],
        },
    }
    assert sorted(step_names.TRAINING_STEPS + step_names.EVALUATION_STEPS) == sorted(
        step["Name"] for step, _ in unit.flatten(definition["Steps"]) if step["Type"] == "Training"
    )


def test_validate_step_gets_the_data_the_batch_size_and_its_report_location(
    definition: dict[str, Any],
) -> None:
    step = unit.steps_by_name(definition)[step_names.VALIDATE_STEP]
    assert step["FunctionArn"] == unit.INPUTS["validate_function_arn"]
    assert [o["OutputName"] for o in step["OutputParameters"]] == list(step_names.VALIDATE_OUTPUTS)
    event = unit.resolve(
        step["Arguments"],
        {
            "Parameters.TrainDataS3Uri": "s3://data/train.jsonl",
            "Parameters.ValidationDataS3Uri": "s3://data/validation.jsonl",
            "Parameters.GlobalBatchSize": 64,
            "Parameters.ReasoningEnabled": True,
            "Parameters.EvaluationTask": "gen_qa",
            "Parameters.EvaluationDataS3Uri": "s3://data/eval.jsonl",
            "Execution.PipelineExecutionId": "run1",
        },
    )
    assert event == {
        "TrainDataS3Uri": "s3://data/train.jsonl",
        "ValidationDataS3Uri": "s3://data/validation.jsonl",
        "GlobalBatchSize": 64,
        "ReasoningEnabled": True,
        "ReportS3Uri": f"s3://{unit.ARTIFACTS}/runs/run1/data-validation/report.json",
        "ValidationReportS3Uri": (
            f"s3://{unit.ARTIFACTS}/runs/run1/data-validation/validation-report.json"
        ),
        "EvaluationTask": "gen_qa",
        "EvaluationDataS3Uri": "s3://data/eval.jsonl",
        "EvaluationReportS3Uri": (
            f"s3://{unit.ARTIFACTS}/runs/run1/data-validation/evaluation-report.json"
        ),
    }
    # The validator's own event parser accepts it.
    from lambdas.validate_dataset import parse_event

    request = parse_event(event)
    assert (request.report_bucket, request.report_key) == (
        unit.ARTIFACTS,
        "runs/run1/data-validation/report.json",
    )
    assert request.validation is not None
    assert request.validation.data_uri == "s3://data/validation.jsonl"


def test_prepare_step_sends_exactly_the_keys_the_prepare_function_accepts(
    definition: dict[str, Any],
) -> None:
    from lambdas.prepare_recipe import parse_event

    step = unit.steps_by_name(definition)[step_names.PREPARE_STEP]
    assert step["FunctionArn"] == unit.INPUTS["prepare_function_arn"]
    assert set(step["Arguments"]) == {*RUN_KEYS, "RecipeS3Prefix", "ModelPackageGroupName"}
    assert step["Arguments"]["ModelPackageGroupName"] == unit.ENV.model_package_group_name
    assert [o["OutputName"] for o in step["OutputParameters"]] == list(step_names.PREPARE_OUTPUTS)
    scope = {f"Parameters.{p['Name']}": p.get("DefaultValue") for p in definition["Parameters"]}
    scope["Execution.PipelineExecutionId"] = "x1y2z3w4v5u6"
    settings, (bucket, key, prefix), group = parse_event(unit.resolve(step["Arguments"], scope))
    assert group == unit.ENV.model_package_group_name
    assert settings.run_name == f"{unit.ENV.pipeline_name}-x1y2z3w4v5u6"
    assert settings.training_instance_count == unit.ENV.training_instance_count
    assert (bucket, key) == (unit.ARTIFACTS, "runs/x1y2z3w4v5u6/recipe/recipe.yaml")
    assert prefix == f"s3://{unit.ARTIFACTS}/runs/x1y2z3w4v5u6/recipe/"


@pytest.mark.parametrize(
    ("register", "training"),
    [(variant.register_step, variant.training_step) for variant in step_names.JOB_VARIANTS],
)
def test_register_steps_read_their_own_job_and_the_runs_inputs(
    definition: dict[str, Any], register: str, training: str
) -> None:
    step = unit.steps_by_name(definition)[register]
    assert step["FunctionArn"] == unit.INPUTS["register_function_arn"]
    assert [o["OutputName"] for o in step["OutputParameters"]] == list(step_names.REGISTER_OUTPUTS)
    arguments = step["Arguments"]
    assert arguments["TrainingJobName"] == {"Get": f"Steps.{training}.TrainingJobName"}
    assert arguments["ModelArtifactsS3Uri"] == {
        "Get": f"Steps.{training}.ModelArtifacts.S3ModelArtifacts"
    }
    assert arguments["ModelPackageGroupName"] == unit.ENV.model_package_group_name
    assert arguments["PipelineExecutionArn"] == {"Get": "Execution.PipelineExecutionArn"}
    assert arguments["RecipeS3Uri"] == {
        "Get": "Steps.PrepareRecipe.OutputParameters['RecipeS3Uri']"
    }
    for name in (
        "ModelNameOrPath",
        "Technique",
        "TrainDataS3Uri",
        "ValidationDataS3Uri",
        "TrainingInstanceType",
        "ModelApprovalStatus",
        # What a replay needs, recorded on the package (decision 0003).
        "MaxRuntimeSeconds",
        "SourceModelPackageArn",
    ):
        assert arguments[name] == {"Get": f"Parameters.{name}"}

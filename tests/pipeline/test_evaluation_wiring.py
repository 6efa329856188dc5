"""The evaluation after each training job, as the definition wires it: the condition on
EvaluationTask, PrepareEvaluation's event, the evaluation jobs' requests and the register
steps' evaluation inputs (the contract with the register handler)."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.prepare_evaluation import OUTPUTS as PREPARE_EVALUATION_HANDLER_OUTPUTS
from lambdas.prepare_evaluation import parse_event
from lambdas.recipe.evaluation_spec import nova_evaluation_image_uri
from pipeline import step_names
from pipeline.evaluation_step import EVALUATION_MAX_RUNTIME_SECONDS
from tests.pipeline import test_definition as unit

VARIANTS = step_names.JOB_VARIANTS
CONTRACT = (
    "EvaluationTask",
    "EvaluationJobName",
    "EvaluationModelArtifactsS3Uri",
    "EvaluationDataS3Uri",
    "EvaluationDataSha256",
    "EvaluationRunName",
    "GateMetric",
    "GateThreshold",
    "GateRequiresImprovement",
    "EvaluationReportS3Uri",
    "BaselineS3Prefix",
)


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return unit.built_definition()


@pytest.fixture(scope="module")
def steps(definition: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return unit.steps_by_name(definition)


def test_prepare_evaluation_outputs_are_the_handler_s() -> None:
    assert step_names.PREPARE_EVALUATION_OUTPUTS == PREPARE_EVALUATION_HANDLER_OUTPUTS


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.training_step)
def test_each_job_is_evaluated_unless_the_task_is_none(
    steps: dict[str, dict[str, Any]], variant: step_names.JobVariant
) -> None:
    evaluates = steps[variant.evaluates_condition]
    assert evaluates["DependsOn"] == [variant.training_step]
    arguments = evaluates["Arguments"]
    assert arguments["Conditions"] == [
        {"Type": "Equals", "LeftValue": {"Get": "Parameters.EvaluationTask"}, "RightValue": "none"}
    ]
    assert [s["Name"] for s in arguments["IfSteps"]] == [variant.register_unevaluated_step]
    assert [s["Name"] for s in arguments["ElseSteps"]] == [
        variant.prepare_evaluation_step,
        variant.data_condition,
    ]
    on_data = steps[variant.data_condition]["Arguments"]
    assert on_data["Conditions"][0]["RightValue"] == "gen_qa"
    assert [s["Name"] for s in on_data["IfSteps"]] == [variant.evaluate_step, variant.register_step]
    assert [s["Name"] for s in on_data["ElseSteps"]] == [
        variant.benchmark_step,
        variant.register_benchmarked_step,
    ]


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.training_step)
def test_prepare_evaluation_reads_this_job_and_writes_under_the_run(
    steps: dict[str, dict[str, Any]], variant: step_names.JobVariant
) -> None:
    step = steps[variant.prepare_evaluation_step]
    assert step["FunctionArn"] == unit.INPUTS["prepare_evaluation_function_arn"]
    event = unit.resolve(
        step["Arguments"],
        {
            "Parameters.EvaluationTask": "gen_qa",
            "Parameters.EvaluationDataS3Uri": "s3://data-bucket/eval/gen_qa.jsonl",
            "Execution.PipelineExecutionId": "x1y2z3w4v5u6",
            f"Steps.{variant.training_step}.ModelArtifacts.S3ModelArtifacts": (
                f"s3://{unit.ARTIFACTS}/runs/x1y2z3w4v5u6/training/job/output/model.tar.gz"
            ),
        },
    )
    request = parse_event(event)
    assert (request.bucket, request.folder) == (unit.ARTIFACTS, "runs/x1y2z3w4v5u6/evaluation/")
    assert request.run_name == f"{unit.ENV.pipeline_name}-x1y2z3w4v5u6-eval"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.training_step)
def test_the_evaluation_jobs_score_the_prepared_checkpoint(
    steps: dict[str, dict[str, Any]], variant: step_names.JobVariant
) -> None:
    prepared = f"Steps.{variant.prepare_evaluation_step}.OutputParameters"
    for name, with_data in ((variant.evaluate_step, True), (variant.benchmark_step, False)):
        request = steps[name]["Arguments"]
        assert request["AlgorithmSpecification"]["TrainingImage"] == nova_evaluation_image_uri(
            unit.ENV.region
        )
        assert request["ResourceConfig"]["InstanceCount"] == 1
        assert request["ResourceConfig"]["InstanceType"] == {
            "Get": "Parameters.EvaluationInstanceType"
        }
        assert request["StoppingCondition"] == {
            "MaxRuntimeInSeconds": EVALUATION_MAX_RUNTIME_SECONDS
        }
        hyper = request["HyperParameters"]
        assert "base_model" not in hyper
        assert hyper["base_model_location"] == {
            "Std:Join": {"On": "", "Values": [{"Get": f"{prepared}['ModelNameOrPath']"}]}
        }
        assert hyper["sagemaker_recipe_local_path"] == "/opt/ml/input/data/recipe/recipe.yaml"
        channels = {
            c["ChannelName"]: c["DataSource"]["S3DataSource"] for c in request["InputDataConfig"]
        }
        assert channels["recipe"]["S3Uri"] == {"Get": f"{prepared}['RecipeS3Prefix']"}
        if with_data:
            assert set(channels) == {"train", "recipe"}
            assert channels["train"]["S3DataType"] == "S3Prefix"
            assert channels["train"]["S3Uri"] == {"Get": f"{prepared}['DataS3Prefix']"}
        else:
            assert set(channels) == {"recipe"}
        output = unit.resolve(
            request["OutputDataConfig"]["S3OutputPath"], {"Execution.PipelineExecutionId": "r1"}
        )
        assert output == f"s3://{unit.ARTIFACTS}/runs/r1/evaluation"


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: v.training_step)
def test_every_register_step_sends_the_evaluation_contract(
    steps: dict[str, dict[str, Any]], variant: step_names.JobVariant
) -> None:
    for register, job in (
        (variant.register_step, variant.evaluate_step),
        (variant.register_benchmarked_step, variant.benchmark_step),
        (variant.register_unevaluated_step, None),
    ):
        step = steps[register]
        assert [o["OutputName"] for o in step["OutputParameters"]] == list(
            step_names.REGISTER_OUTPUTS
        )
        arguments = step["Arguments"]
        assert set(CONTRACT) <= set(arguments)
        assert arguments["TrainingJobName"] == {
            "Get": f"Steps.{variant.training_step}.TrainingJobName"
        }
        assert arguments["EvaluationDataSha256"] == {
            "Get": "Steps.ValidateData.OutputParameters['EvaluationDataSha256']"
        }
        for name in (
            "GateMetric",
            "GateThreshold",
            "GateRequiresImprovement",
            "EvaluationDataS3Uri",
        ):
            assert arguments[name] == {"Get": f"Parameters.{name}"}
        assert arguments["BaselineS3Prefix"] == f"s3://{unit.ARTIFACTS}/baselines/"
        report = unit.resolve(
            arguments["EvaluationReportS3Uri"], {"Execution.PipelineExecutionId": "r1"}
        )
        assert report == f"s3://{unit.ARTIFACTS}/runs/r1/evaluation/statistics.json"
        if job is None:
            for name in ("EvaluationTask", "EvaluationJobName", "EvaluationModelArtifactsS3Uri"):
                assert arguments[name] == "none"
            assert arguments["EvaluationRunName"] == "none"
        else:
            assert arguments["EvaluationTask"] == {"Get": "Parameters.EvaluationTask"}
            assert arguments["EvaluationJobName"] == {"Get": f"Steps.{job}.TrainingJobName"}
            assert arguments["EvaluationModelArtifactsS3Uri"] == {
                "Get": f"Steps.{job}.ModelArtifacts.S3ModelArtifacts"
            }
            assert arguments["EvaluationRunName"] == {
                "Get": f"Steps.{variant.prepare_evaluation_step}.OutputParameters"
                "['EvaluationRunName']"
            }


def test_evaluation_job_step_names_fit_the_job_name() -> None:
    for name in step_names.EVALUATION_STEPS:
        assert len(name) <= 29, name

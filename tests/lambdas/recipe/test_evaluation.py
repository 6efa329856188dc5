"""The evaluation parameters' checks and the evaluation recipe's rendering."""

from __future__ import annotations

import pytest
import yaml

from lambdas.recipe import RecipeValidationError, validate_run
from lambdas.recipe.evaluation import (
    EVALUATION_TASKS,
    TASK_METRICS,
    check_evaluation,
    nova_evaluation_image_uri,
    render_evaluation_recipe,
    validate_evaluation,
)
from lambdas.recipe.evaluation_spec import TASKS

DATA = "s3://data-bucket/eval/gen_qa.jsonl"
CHECKPOINT = "s3://customer-escrow-111122223333-smtj-ab12/job-1/step_100"
RUN = {
    "Technique": "LoRA",
    "ModelNameOrPath": "nova-lite-2/prod",
    "TrainingInstanceType": "ml.p5.48xlarge",
    "TrainingInstanceCount": "4",
    "RunName": "nova-sft-dev-abc",
}


def problems(**params: object) -> list[str]:
    return check_evaluation(params)[1]


def test_no_evaluation_parameters_mean_no_evaluation() -> None:
    settings = validate_evaluation({})
    assert (settings.task, settings.data_s3_uri, settings.gate_metric) == ("none", "none", "none")
    assert not settings.evaluates


def test_gen_qa_with_data_and_a_gate_is_accepted() -> None:
    settings = validate_evaluation(
        {
            "EvaluationTask": "gen_qa",
            "EvaluationDataS3Uri": DATA,
            "GateMetric": "rougeL",
            "GateThreshold": "0.25",
            "GateRequiresImprovement": "true",
        }
    )
    assert settings.evaluates
    assert settings.has_data
    assert (settings.gate_threshold, settings.gate_requires_improvement) == (0.25, True)


@pytest.mark.parametrize(
    ("params", "words"),
    [
        ({"EvaluationTask": "gen_qa"}, "gen_qa needs EvaluationDataS3Uri"),
        ({"EvaluationTask": "mmlu", "EvaluationDataS3Uri": DATA}, "the benchmark mmlu"),
        ({"EvaluationDataS3Uri": DATA}, "no evaluation"),
        ({"EvaluationTask": "gen_qa", "EvaluationDataS3Uri": "s3://data-bucket/eval/"}, ".jsonl"),
        (
            {"EvaluationTask": "gen_qa", "EvaluationDataS3Uri": DATA, "GateMetric": "accuracy"},
            "task gen_qa reports",
        ),
        ({"GateMetric": "rougeL"}, "without evaluation"),
        ({"EvaluationTask": "mmlu", "GateRequiresImprovement": "true"}, "needs a GateMetric"),
        ({"EvaluationTask": "mmlu", "GateThreshold": "0.5"}, "without a GateMetric"),
        ({"EvaluationTask": "mmlu", "EvaluationInstanceType": "ml.g5.xlarge"}, "ml.p5.48xlarge"),
        ({"EvaluationTask": "hellaswag"}, "must be one of none, gen_qa"),
        ({"EvaluationTask": ""}, "EvaluationTask is empty"),
        ({"EvaluationTask": "mmlu", "GateMetric": "accuracy", "GateThreshold": "nan"}, "number"),
    ],
)
def test_a_bad_evaluation_knob_is_refused_with_its_fix(params: dict[str, str], words: str) -> None:
    found = problems(**params)
    assert any(words in problem for problem in found), found
    with pytest.raises(RecipeValidationError):
        validate_evaluation(params)


def test_prepare_recipe_refuses_bad_evaluation_knobs_with_the_training_ones() -> None:
    with pytest.raises(RecipeValidationError) as error:
        validate_run({**RUN, "MaxSteps": "2", "EvaluationTask": "gen_qa"})
    assert any("MaxSteps" in p for p in error.value.problems)
    assert any("EvaluationDataS3Uri" in p for p in error.value.problems)
    validate_run({**RUN, "EvaluationTask": "gen_qa", "EvaluationDataS3Uri": DATA})


def test_every_task_names_the_metrics_a_gate_may_use() -> None:
    assert EVALUATION_TASKS[0] == "gen_qa"
    assert set(TASK_METRICS) == set(EVALUATION_TASKS)
    assert TASK_METRICS["gen_qa"] == (
        "rouge1",
        "rouge2",
        "rougeL",
        "em",
        "qem",
        "f1",
        "f1_score_quasi",
        "bleu",
    )


@pytest.mark.parametrize("task", EVALUATION_TASKS)
def test_the_recipe_names_the_checkpoint_the_task_and_one_replica(task: str) -> None:
    recipe = yaml.safe_load(render_evaluation_recipe(task, "eval-run-1", CHECKPOINT))
    assert recipe["run"]["model_name_or_path"] == CHECKPOINT
    assert recipe["run"]["name"] == "eval-run-1"
    assert recipe["run"]["model_type"] == "amazon.nova-2-lite-v1:0:256k"
    assert (recipe["run"]["replicas"], recipe["run"]["data_s3_path"]) == (1, "")
    spec = TASKS[task]
    assert recipe["evaluation"]["task"] == task
    assert (recipe["evaluation"]["strategy"], recipe["evaluation"]["metric"]) == (
        spec.strategy,
        spec.metric,
    )
    assert ("subtask" in recipe["evaluation"]) is (task != "gen_qa")


def test_the_recipe_is_the_same_bytes_every_time() -> None:
    assert render_evaluation_recipe("gen_qa", "r", CHECKPOINT) == render_evaluation_recipe(
        "gen_qa", "r", CHECKPOINT
    )


@pytest.mark.parametrize(
    ("task", "name", "source", "words"),
    [
        ("none", "r", CHECKPOINT, "EvaluationTask"),
        ("gen_qa", "bad name", CHECKPOINT, "RunName"),
        ("gen_qa", "r", "s3://x", "ModelNameOrPath"),
    ],
)
def test_rendering_refuses_bad_values(task: str, name: str, source: str, words: str) -> None:
    with pytest.raises(RecipeValidationError, match=words):
        render_evaluation_recipe(task, name, source)


def test_the_evaluation_image_is_the_regional_nova_evaluation_repository() -> None:
    assert nova_evaluation_image_uri("us-east-1") == (
        "708977205387.dkr.ecr.us-east-1.amazonaws.com/nova-evaluation-repo:SM-TJ-Eval-V2-latest"
    )
    with pytest.raises(ValueError, match="us-west-2"):
        nova_evaluation_image_uri("eu-west-1")

"""The pipeline's parameters (`pipeline.parameters`) as the definition declares them: names,
types, defaults and choices."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.recipe.evaluation_spec import (
    EVALUATION_KEYS,
    EVALUATION_TASKS,
    GATE_METRIC_CHOICES,
)
from lambdas.recipe.spec import BASE_MODEL, KNOBS
from tests.pipeline import test_definition as unit


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return unit.built_definition()


def test_parameters_are_the_public_names_with_their_types(definition: dict[str, Any]) -> None:
    declared = [(p["Name"], p["Type"]) for p in definition["Parameters"]]
    assert declared == [
        ("TrainDataS3Uri", "String"),
        ("ValidationDataS3Uri", "String"),
        ("ModelNameOrPath", "String"),
        ("Technique", "String"),
        ("TrainingInstanceType", "String"),
        ("TrainingInstanceCount", "Integer"),
        ("MaxSteps", "Integer"),
        ("GlobalBatchSize", "Integer"),
        ("MaxLength", "Integer"),
        ("LearningRate", "Float"),
        ("WarmupSteps", "Integer"),
        ("LoraAlpha", "Integer"),
        ("LoraPlusLrRatio", "Float"),
        ("ReasoningEnabled", "Boolean"),
        ("ValCheckInterval", "Integer"),
        ("MaxRuntimeSeconds", "Integer"),
        ("ModelApprovalStatus", "String"),
        ("SourceModelPackageArn", "String"),
        ("EvaluationTask", "String"),
        ("EvaluationDataS3Uri", "String"),
        ("EvaluationInstanceType", "String"),
        ("GateMetric", "String"),
        ("GateThreshold", "Float"),
        ("GateRequiresImprovement", "Boolean"),
    ]


def test_defaults_come_from_the_recipe_facts_and_the_environment(
    definition: dict[str, Any],
) -> None:
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert "DefaultValue" not in definition["Parameters"][0]  # TrainDataS3Uri must be given
    assert defaults["ValidationDataS3Uri"] == "none"
    assert defaults["ModelNameOrPath"] == BASE_MODEL == "nova-lite-2/prod"
    assert defaults["Technique"] == "LoRA"
    assert defaults["TrainingInstanceType"] == unit.ENV.training_instance_type
    assert defaults["TrainingInstanceCount"] == unit.ENV.training_instance_count
    assert defaults["MaxRuntimeSeconds"] == unit.ENV.max_runtime_seconds
    assert defaults["ModelApprovalStatus"] == "PendingManualApproval"
    # A run replays nothing unless promote says so; a default cannot be an empty string.
    assert defaults["SourceModelPackageArn"] == "none"
    # NOVA_FACTS section 3, through lambdas.recipe.spec.KNOBS.
    assert {knob.name: defaults[knob.name] for knob in KNOBS} == {
        "MaxSteps": 100,
        "GlobalBatchSize": 32,
        "MaxLength": 32768,
        "LearningRate": 1e-5,
        "WarmupSteps": 15,
        "LoraAlpha": 64,
        "LoraPlusLrRatio": 64.0,
        "ReasoningEnabled": False,
        "ValCheckInterval": 0,  # derived from MaxSteps by PrepareRecipe
    }


def test_no_parameter_default_is_an_empty_string(definition: dict[str, Any]) -> None:
    # SageMaker refuses an empty parameter value (aws/sagemaker-python-sdk issues 4016, 3564):
    # an empty default would fail CreatePipeline, and with it the deployment.
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert [name for name, value in defaults.items() if value == ""] == []
    assert all(value is not None for name, value in defaults.items() if name != "TrainDataS3Uri")


def test_closed_choices_are_enumerated_for_the_console(definition: dict[str, Any]) -> None:
    enums = {p["Name"]: p["EnumValues"] for p in definition["Parameters"] if "EnumValues" in p}
    assert enums == {
        "Technique": ["LoRA", "FullRank"],
        "TrainingInstanceType": ["ml.p5.48xlarge", "ml.p5en.48xlarge"],
        # Approval is an act of its own (approve, the console), never a run's parameter.
        "ModelApprovalStatus": ["PendingManualApproval", "Rejected"],
        "EvaluationTask": ["none", *EVALUATION_TASKS],
        "EvaluationInstanceType": ["ml.p5.48xlarge"],
        "GateMetric": list(GATE_METRIC_CHOICES),
    }
    assert "rougeL" in enums["GateMetric"]
    assert enums["GateMetric"][0] == "none"


def test_a_run_evaluates_only_when_it_says_so(definition: dict[str, Any]) -> None:
    # decision 0017: no default task fits every run's domain, and none costs nothing.
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert {name: defaults[name] for name in EVALUATION_KEYS} == {
        "EvaluationTask": "none",
        "EvaluationDataS3Uri": "none",
        "EvaluationInstanceType": "ml.p5.48xlarge",
        "GateMetric": "none",
        "GateThreshold": 0.0,
        "GateRequiresImprovement": False,
    }

"""The pipeline's parameters: their public names, types, defaults and choices.

`parameter_specs(env)` is the single list that the definition declares, the operator commands
check overrides against (`pipeline.overrides`) and the smoke test compares with the deployed
pipeline; `sdk_parameters(env)` turns it into the SageMaker SDK's parameter objects.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas.recipe.evaluation_spec import (
    EVALUATION_INSTANCE_TYPES,
    EVALUATION_TASK_CHOICES,
    GATE_METRIC_CHOICES,
    NO_EVALUATION,
    NO_EVALUATION_DATA,
    NO_GATE_METRIC,
)
from lambdas.recipe.spec import (
    BASE_MODEL,
    KNOBS,
    LORA,
    NO_VALIDATION_DATA,
    SUPPORTED_INSTANCE_TYPES,
    TECHNIQUES,
)
from pipeline.config import EnvironmentConfig

# A run registers its checkpoint pending (or rejected); approving is an act of its own
# (`python -m pipeline approve`, the console), never a parameter of a run.
APPROVAL_STATUSES: tuple[str, ...] = ("PendingManualApproval", "Rejected")
# SourceModelPackageArn of a run that replays nothing (a parameter default cannot be empty).
NO_SOURCE_PACKAGE = "none"


@dataclass(frozen=True)
class ParameterSpec:
    """One pipeline parameter: its name is public (console, API, operator commands).

    `kind` is the pipeline parameter type (String, Integer, Float, Boolean); `default` None means
    the parameter must be given when an execution starts; `choices` become the parameter's
    EnumValues (String only).
    """

    name: str
    kind: str
    default: str | int | float | bool | None
    description: str
    choices: tuple[str, ...] | None = None


_KNOB_KINDS = {"int": "Integer", "float": "Float", "bool": "Boolean", "str": "String"}


def parameter_specs(env: EnvironmentConfig) -> tuple[ParameterSpec, ...]:
    """Every parameter of the environment's pipeline, in definition order, with its default.

    Recipe knobs and their defaults come from `lambdas.recipe.spec.KNOBS`; the instance type,
    count and maximum runtime default to the environment's configuration.
    """
    knobs = tuple(
        ParameterSpec(
            knob.name,
            _KNOB_KINDS[knob.kind],
            knob.default,
            f"recipe {knob.path}"
            + (" (LoRA only)" if knob.lora_only else "")
            + (
                f" ({knob.derived_when} = a quarter of MaxSteps)"
                if knob.derived_when is not None
                else ""
            ),
        )
        for knob in KNOBS
    )
    return (
        ParameterSpec(
            "TrainDataS3Uri",
            "String",
            None,
            "training data: a bedrock-conversation-2024 .jsonl object (required)",
        ),
        ParameterSpec(
            "ValidationDataS3Uri",
            "String",
            NO_VALIDATION_DATA,
            f"validation data: a .jsonl object, or {NO_VALIDATION_DATA}",
        ),
        ParameterSpec(
            "ModelNameOrPath",
            "String",
            BASE_MODEL,
            f"{BASE_MODEL}, or an earlier run's CheckpointS3Uri to continue from it",
        ),
        ParameterSpec("Technique", "String", LORA, "LoRA or FullRank", TECHNIQUES),
        ParameterSpec(
            "TrainingInstanceType",
            "String",
            env.training_instance_type,
            "training instance type",
            SUPPORTED_INSTANCE_TYPES,
        ),
        ParameterSpec(
            "TrainingInstanceCount",
            "Integer",
            env.training_instance_count,
            "training instance count (becomes run.replicas)",
        ),
        *knobs,
        ParameterSpec(
            "MaxRuntimeSeconds", "Integer", env.max_runtime_seconds, "training job time limit"
        ),
        ParameterSpec(
            "ModelApprovalStatus",
            "String",
            APPROVAL_STATUSES[0],
            "approval status of the registered checkpoint",
            APPROVAL_STATUSES,
        ),
        ParameterSpec(
            "SourceModelPackageArn",
            "String",
            NO_SOURCE_PACKAGE,
            "the model package this run replays (set by promote), or none",
        ),
        *evaluation_parameter_specs(),
    )


def evaluation_parameter_specs() -> tuple[ParameterSpec, ...]:
    """The evaluation's parameters (docs/decisions/0017-evaluation-in-the-pipeline.md).

    EvaluationTask defaults to none: evaluation data belongs to the user's domain, so no default
    task is right for every run, and a run must not fail or start an extra instance because of a
    parameter its author did not set. A run that evaluates says so (the rehearsal's rounds do).
    """
    return (
        ParameterSpec(
            "EvaluationTask",
            "String",
            NO_EVALUATION,
            f"evaluate the checkpoint: gen_qa (EvaluationDataS3Uri), a benchmark, or "
            f"{NO_EVALUATION} to skip",
            EVALUATION_TASK_CHOICES,
        ),
        ParameterSpec(
            "EvaluationDataS3Uri",
            "String",
            NO_EVALUATION_DATA,
            f"gen_qa evaluation data: one .jsonl object, or {NO_EVALUATION_DATA} for a benchmark",
        ),
        ParameterSpec(
            "EvaluationInstanceType",
            "String",
            EVALUATION_INSTANCE_TYPES[0],
            "evaluation instance type (one instance)",
            EVALUATION_INSTANCE_TYPES,
        ),
        ParameterSpec(
            "GateMetric",
            "String",
            NO_GATE_METRIC,
            f"the metric the gate checks, one the task reports, or {NO_GATE_METRIC}",
            GATE_METRIC_CHOICES,
        ),
        ParameterSpec(
            "GateThreshold",
            "Float",
            0.0,
            "the lowest GateMetric value that passes the gate",
        ),
        ParameterSpec(
            "GateRequiresImprovement",
            "Boolean",
            False,
            "the gate also requires a better GateMetric than the parent's on the same data",
        ),
    )


def sdk_parameters(env: EnvironmentConfig) -> dict[str, Any]:
    """The SDK's parameter objects of `parameter_specs(env)`, by name, in definition order."""
    return sdk_parameters_of(parameter_specs(env))


def sdk_parameters_of(specs: tuple[ParameterSpec, ...]) -> dict[str, Any]:
    """The SDK's parameter objects of `specs`, by name, in their order."""
    from sagemaker.workflow.parameters import (
        ParameterBoolean,
        ParameterFloat,
        ParameterInteger,
        ParameterString,
    )

    kinds: dict[str, Any] = {
        "String": ParameterString,
        "Integer": ParameterInteger,
        "Float": ParameterFloat,
        "Boolean": ParameterBoolean,
    }
    parameters: dict[str, Any] = {}
    for spec in specs:
        extra = {"enum_values": list(spec.choices)} if spec.choices else {}
        parameters[spec.name] = kinds[spec.kind](spec.name, default_value=spec.default, **extra)
    return parameters

"""The pipeline definition's contract: the names of its steps, the job variants, the outputs
each step declares, and the error a build raises.

Operators, the Lambda handlers' tests, the rehearsal and the operator commands read these names;
`pipeline.definition` re-exports them for callers outside this package's builder.
"""

from __future__ import annotations

from dataclasses import dataclass

VALIDATE_STEP = "ValidateData"
PREPARE_STEP = "PrepareRecipe"
CONDITION_STEP = "CheckpointOrBaseModel"
CHECKPOINT_VALIDATION_CONDITION = "CheckpointRunHasValidationData"
BASE_MODEL_VALIDATION_CONDITION = "BaseModelRunHasValidationData"
TRAIN_FROM_CHECKPOINT = "TrainFromCheckpoint"
TRAIN_FROM_BASE_MODEL = "TrainFromBaseModel"
TRAIN_FROM_CHECKPOINT_WITH_VALIDATION = "TrainFromCheckpointValidating"
TRAIN_FROM_BASE_MODEL_WITH_VALIDATION = "TrainFromBaseModelValidating"
REGISTER_FROM_CHECKPOINT = "RegisterFromCheckpoint"
REGISTER_FROM_BASE_MODEL = "RegisterFromBaseModel"
REGISTER_FROM_CHECKPOINT_WITH_VALIDATION = "RegisterFromCheckpointValidating"
REGISTER_FROM_BASE_MODEL_WITH_VALIDATION = "RegisterFromBaseModelValidating"


@dataclass(frozen=True)
class JobVariant:
    """One training step and the register step after it; exactly one variant runs per execution.

    `hyperparameter` carries ModelNameOrPath (the SDK's key for a checkpoint or a model name);
    `with_validation` sends the `validation` channel.
    """

    training_step: str
    register_step: str
    hyperparameter: str
    with_validation: bool


JOB_VARIANTS: tuple[JobVariant, ...] = (
    JobVariant(
        TRAIN_FROM_CHECKPOINT_WITH_VALIDATION,
        REGISTER_FROM_CHECKPOINT_WITH_VALIDATION,
        "base_model_location",
        True,
    ),
    JobVariant(TRAIN_FROM_CHECKPOINT, REGISTER_FROM_CHECKPOINT, "base_model_location", False),
    JobVariant(
        TRAIN_FROM_BASE_MODEL_WITH_VALIDATION,
        REGISTER_FROM_BASE_MODEL_WITH_VALIDATION,
        "base_model",
        True,
    ),
    JobVariant(TRAIN_FROM_BASE_MODEL, REGISTER_FROM_BASE_MODEL, "base_model", False),
)
TRAINING_STEPS: tuple[str, ...] = tuple(v.training_step for v in JOB_VARIANTS)
REGISTER_STEPS: tuple[str, ...] = tuple(v.register_step for v in JOB_VARIANTS)

VALIDATE_OUTPUTS: tuple[str, ...] = (
    "Samples",
    "Findings",
    "Warnings",
    "ValidationSamples",
    "EvaluationDataSha256",
)
PREPARE_OUTPUTS: tuple[str, ...] = (
    "RecipeS3Uri",
    "RecipeS3Prefix",
    "RecipeSha256",
    "BaseModelHyperparameter",
    "StartsFromCheckpoint",
    "HasValidationData",
    "CheckpointCheck",
)
REGISTER_OUTPUTS: tuple[str, ...] = (
    "CheckpointS3Uri",
    "ModelPackageArn",
    "FinalTrainingLoss",
    "ParentModel",
    "TrainingSteps",
)


class DefinitionBuildError(RuntimeError):
    """The definition cannot be built from these inputs; the message names the input and fix."""

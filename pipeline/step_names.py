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
    """One training step and the steps after it; exactly one variant runs per execution.

    `hyperparameter` carries ModelNameOrPath (the SDK's key for a checkpoint or a model name);
    `with_validation` sends the `validation` channel. After training, the variant evaluates
    (docs/decisions/0017-evaluation-in-the-pipeline.md):

        <training_step> -> <evaluates_condition> (EvaluationTask is not none?)
          true:  <prepare_evaluation_step> -> <data_condition> (EvaluationTask is gen_qa?)
                   true:  <evaluate_step>  -> <register_step>
                   false: <benchmark_step> -> <register_benchmarked_step>
          false: <register_unevaluated_step>

    Every name is unique in the definition; a training job's step name stays within 29
    characters (the job name Pipelines derives from it).
    """

    training_step: str
    register_step: str
    hyperparameter: str
    with_validation: bool

    @property
    def tag(self) -> str:
        """What tells this variant's steps apart: the training step's name without "Train"."""
        return self.training_step.removeprefix("Train")

    @property
    def evaluates_condition(self) -> str:
        return f"Evaluates{self.tag}"

    @property
    def prepare_evaluation_step(self) -> str:
        return f"PrepareEvaluation{self.tag}"

    @property
    def data_condition(self) -> str:
        return f"EvaluatesOwnData{self.tag}"

    @property
    def evaluate_step(self) -> str:
        return f"Eval{self.tag}"

    @property
    def benchmark_step(self) -> str:
        return f"Bench{self.tag}"

    @property
    def register_benchmarked_step(self) -> str:
        return f"{self.register_step}Benchmarked"

    @property
    def register_unevaluated_step(self) -> str:
        return f"{self.register_step}Unevaluated"

    @property
    def register_steps(self) -> tuple[str, ...]:
        """The variant's register steps: exactly one of them runs."""
        return (
            self.register_step,
            self.register_benchmarked_step,
            self.register_unevaluated_step,
        )

    @property
    def evaluation_steps(self) -> tuple[str, ...]:
        """The variant's evaluation jobs (training steps with the evaluation image)."""
        return (self.evaluate_step, self.benchmark_step)


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
REGISTER_STEPS: tuple[str, ...] = tuple(name for v in JOB_VARIANTS for name in v.register_steps)
EVALUATION_STEPS: tuple[str, ...] = tuple(name for v in JOB_VARIANTS for name in v.evaluation_steps)
PREPARE_EVALUATION_STEPS: tuple[str, ...] = tuple(v.prepare_evaluation_step for v in JOB_VARIANTS)

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
    # The evaluation's (the register handler records them; "none" when not evaluated).
    "EvaluationScore",
    "GateVerdict",
    "ScoreChange",
)
# PrepareEvaluation's outputs (lambdas/prepare_evaluation.py OUTPUTS, tested equal).
PREPARE_EVALUATION_OUTPUTS: tuple[str, ...] = (
    "RecipeS3Uri",
    "RecipeS3Prefix",
    "RecipeSha256",
    "ModelNameOrPath",
    "EvaluationRunName",
    "DataS3Prefix",
    "HasEvaluationData",
    "StartsFromCheckpoint",
)


class DefinitionBuildError(RuntimeError):
    """The definition cannot be built from these inputs; the message names the input and fix."""

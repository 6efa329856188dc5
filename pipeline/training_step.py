"""The training step of one job variant: the reference notebook's estimator and fit(), with the
run-time recipe and ModelNameOrPath (docs/decisions/0004-training-step-branching.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.recipe.spec import BASE_MODEL, LORA, TEMPLATE_FILES
from pipeline.offline_sdk import telemetry_opted_out
from pipeline.step_names import DefinitionBuildError, JobVariant

if TYPE_CHECKING:
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.steps import TrainingStep

# The training job reads the recipe that PrepareRecipe wrote into RecipeS3Prefix through the
# channel the SDK uses for a Nova recipe, mounted at /opt/ml/input/data/recipe/.
RECIPE_CHANNEL = "recipe"
TRAIN_CHANNEL = "train"
# AWS's tooling sends validation data in this channel as well as in the recipe (NOVA_FACTS 1).
VALIDATION_CHANNEL = "validation"

# Which template the SDK is handed at synth time. The technique only changes the recipe's content,
# which PrepareRecipe renders at run time; the request is the same for both templates (tested).
_SYNTH_TECHNIQUE = LORA

# Stands in for an s3:// checkpoint at synth time, so that the SDK emits `base_model_location`.
# Its value never reaches the definition: the ModelNameOrPath parameter replaces it.
_CHECKPOINT_PLACEHOLDER = "s3://placeholder-checkpoint-bucket/checkpoint"

# p5 capacity comes back in minutes to hours. AWS documents MaxAttempts as the number of retry
# attempts: up to six new jobs after the first, 5, 10, 20, 40, 80 and 160 minutes apart.
TRAINING_CAPACITY_RETRY: dict[str, Any] = {
    "interval_seconds": 300,
    "backoff_rate": 2.0,
    "max_attempts": 6,
}


def training_step(
    variant: JobVariant,
    recipe_prefix: Any,
    *,
    parameters: dict[str, Any],
    image_uri: str,
    execution_role_arn: str,
    output_path: Any,
    kms_key_arn: str,
    session: PipelineSession,
) -> TrainingStep:
    """The notebook's estimator and fit(), with the run-time recipe and ModelNameOrPath."""
    from sagemaker.inputs import TrainingInput
    from sagemaker.pytorch.estimator import PyTorch
    from sagemaker.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
    )
    from sagemaker.workflow.steps import TrainingStep

    from lambdas.prepare_recipe import RECIPE_FILE_NAME

    p = parameters
    name, hyperparameter = variant.training_step, variant.hyperparameter
    # The SDK picks the hyperparameter key from the recipe's run.model_name_or_path at
    # construction; a plain value that selects the wanted key is given here and its value is
    # replaced by the parameter below.
    source = _CHECKPOINT_PLACEHOLDER if hyperparameter == "base_model_location" else BASE_MODEL
    estimator: Any = PyTorch(
        training_recipe=str(TEMPLATE_FILES[_SYNTH_TECHNIQUE]),
        recipe_overrides={"run": {"model_name_or_path": source}},
        image_uri=image_uri,
        instance_type=p["TrainingInstanceType"],
        instance_count=p["TrainingInstanceCount"],
        role=execution_role_arn,
        output_path=output_path,
        max_run=p["MaxRuntimeSeconds"],
        disable_profiler=True,
        debugger_hook_config=False,
        output_kms_key=kms_key_arn,
        sagemaker_session=session,
    )
    chosen = {k for k in ("base_model", "base_model_location") if k in estimator.hyperparameters()}
    if chosen != {hyperparameter}:
        raise DefinitionBuildError(
            f"the SageMaker SDK chose hyperparameter(s) {sorted(chosen)} instead of "
            f"{hyperparameter!r} for a Nova recipe: check the pinned sagemaker version"
        )
    # fit() would upload the synth-time recipe under a random name; the job must read the
    # recipe PrepareRecipe wrote for this run instead. So the recipe channel and its local path
    # are given here exactly as fit() forms them, and fit() has no local recipe to upload.
    estimator.training_recipe_file = None
    estimator.set_hyperparameters(
        **{
            hyperparameter: p["ModelNameOrPath"],
            "sagemaker_recipe_local_path": (
                f"/opt/ml/input/data/{RECIPE_CHANNEL}/{RECIPE_FILE_NAME}"
            ),
        }
    )
    # Channels in the order fit() sends them: the data channels given, then the recipe.
    inputs = {
        TRAIN_CHANNEL: TrainingInput(
            s3_data=p["TrainDataS3Uri"],
            distribution="FullyReplicated",
            s3_data_type="Converse",
        )
    }
    if variant.with_validation:
        inputs[VALIDATION_CHANNEL] = TrainingInput(
            s3_data=p["ValidationDataS3Uri"],
            distribution="FullyReplicated",
            s3_data_type="Converse",
        )
    inputs[RECIPE_CHANNEL] = TrainingInput(s3_data=recipe_prefix, input_mode="File")
    with telemetry_opted_out(session):
        step_args = estimator.fit(inputs=inputs, wait=False)
    validation = ", validation channel" if variant.with_validation else ""
    return TrainingStep(
        name=name,
        description=(
            f"Nova 2 Lite SFT training job ({hyperparameter} = ModelNameOrPath{validation})"
        ),
        step_args=step_args,
        retry_policies=[
            SageMakerJobStepRetryPolicy(
                exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR],
                **TRAINING_CAPACITY_RETRY,
            )
        ],
    )

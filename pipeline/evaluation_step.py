"""The evaluation job of one job variant: a training job with the Nova evaluation image that
scores a checkpoint, built the way `pipeline.training_step` builds the training job (the SDK's
recipe estimator and fit(), with the recipe PrepareEvaluation wrote at run time).

Two forms: with the run's gen_qa data in the `train` channel (an S3Prefix folder holding
gen_qa.jsonl, where PrepareEvaluation copied it), or without any data channel (a benchmark brings
its own data). The model to score reaches the job as the recipe's `run.model_name_or_path` and
as the hyperparameter the SDK chooses for it (`base_model_location` for an s3:// checkpoint,
`base_model` for a model name; decision 0004), from PrepareEvaluation's `ModelNameOrPath`.
The job writes under s3://<artifacts>/runs/<execution id>/evaluation/ (decision 0017).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.recipe.evaluation_spec import EVALUATION_INSTANCE_COUNT, EVALUATION_TEMPLATE_FILES
from lambdas.recipe.spec import BASE_MODEL
from pipeline.offline_sdk import telemetry_opted_out
from pipeline.step_names import DefinitionBuildError
from pipeline.training_step import (
    RECIPE_CHANNEL,
    TRAIN_CHANNEL,
    TRAINING_CAPACITY_RETRY,
)

if TYPE_CHECKING:
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.steps import TrainingStep

# An evaluation takes about 20 to 30 minutes on one instance (NOVA_FACTS 7); a benchmark with long
# reasoning may take hours. Six hours caps the cost of a job that hangs.
EVALUATION_MAX_RUNTIME_SECONDS = 6 * 3600

_CHECKPOINT_PLACEHOLDER = "s3://placeholder-checkpoint-bucket/checkpoint"


def evaluation_step(
    name: str,
    *,
    hyperparameter: str,
    with_data: bool,
    prepared: Any,
    instance_type: Any,
    image_uri: str,
    execution_role_arn: str,
    output_path: Any,
    kms_key_arn: str,
    session: PipelineSession,
) -> TrainingStep:
    """The evaluation job: `prepared` are PrepareEvaluation's outputs (RecipeS3Prefix,
    ModelNameOrPath, DataS3Prefix); `hyperparameter` is the key the model reaches the job by."""
    from sagemaker.inputs import TrainingInput
    from sagemaker.pytorch.estimator import PyTorch
    from sagemaker.workflow.retry import (
        SageMakerJobExceptionTypeEnum,
        SageMakerJobStepRetryPolicy,
    )
    from sagemaker.workflow.steps import TrainingStep

    from lambdas.prepare_evaluation import RECIPE_FILE_NAME

    source = _CHECKPOINT_PLACEHOLDER if hyperparameter == "base_model_location" else BASE_MODEL
    estimator: Any = PyTorch(
        training_recipe=str(EVALUATION_TEMPLATE_FILES[with_data]),
        recipe_overrides={"run": {"model_name_or_path": source}},
        image_uri=image_uri,
        instance_type=instance_type,
        instance_count=EVALUATION_INSTANCE_COUNT,
        role=execution_role_arn,
        output_path=output_path,
        max_run=EVALUATION_MAX_RUNTIME_SECONDS,
        disable_profiler=True,
        debugger_hook_config=False,
        output_kms_key=kms_key_arn,
        sagemaker_session=session,
    )
    chosen = {k for k in ("base_model", "base_model_location") if k in estimator.hyperparameters()}
    if chosen != {hyperparameter}:
        raise DefinitionBuildError(
            f"the SageMaker SDK chose hyperparameter(s) {sorted(chosen)} instead of "
            f"{hyperparameter!r} for the Nova evaluation recipe: check the pinned sagemaker version"
        )
    # As for training: the job reads the recipe PrepareEvaluation wrote, not a synth-time upload.
    estimator.training_recipe_file = None
    local_path = f"/opt/ml/input/data/{RECIPE_CHANNEL}/{RECIPE_FILE_NAME}"
    estimator.set_hyperparameters(
        **{hyperparameter: prepared["ModelNameOrPath"], "sagemaker_recipe_local_path": local_path}
    )
    inputs: dict[str, Any] = {}
    if with_data:
        # The container reads gen_qa.jsonl from this folder (S3Prefix, NOVA_FACTS 7).
        inputs[TRAIN_CHANNEL] = TrainingInput(
            s3_data=prepared["DataS3Prefix"],
            distribution="FullyReplicated",
            s3_data_type="S3Prefix",
        )
    inputs[RECIPE_CHANNEL] = TrainingInput(s3_data=prepared["RecipeS3Prefix"], input_mode="File")
    with telemetry_opted_out(session):
        step_args = estimator.fit(inputs=inputs, wait=False)
    what = "on the run's gen_qa data" if with_data else "on the benchmark EvaluationTask names"
    return TrainingStep(
        name=name,
        description=f"Nova 2 Lite evaluation job {what} ({hyperparameter} = the checkpoint)",
        step_args=step_args,
        retry_policies=[
            SageMakerJobStepRetryPolicy(
                exception_types=[SageMakerJobExceptionTypeEnum.CAPACITY_ERROR],
                **TRAINING_CAPACITY_RETRY,
            )
        ],
    )

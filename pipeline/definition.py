"""The SageMaker pipeline that fine-tunes Nova 2 Lite: a pure, offline, deterministic builder.

`build_pipeline(...)` returns a `sagemaker.workflow.pipeline.Pipeline`; `definition_json(pipeline)`
turns it into the JSON body that `AWS::SageMaker::Pipeline` deploys. Every input is an argument:
CDK tokens (strings such as "${Token[TOKEN.12]}") pass through unchanged into the JSON. Building
makes no network call, uploads nothing, clones nothing and needs no credentials; two builds give
byte-identical JSON. docs/decisions/0004-training-step-branching.md explains the design; in
short:

    ValidateData -> PrepareRecipe -> CheckpointOrBaseModel
      true:  CheckpointRunHasValidationData
               true:  TrainFromCheckpointValidating -> RegisterFromCheckpointValidating
               false: TrainFromCheckpoint           -> RegisterFromCheckpoint
      false: BaseModelRunHasValidationData
               true:  TrainFromBaseModelValidating  -> RegisterFromBaseModelValidating
               false: TrainFromBaseModel            -> RegisterFromBaseModel

- ValidateData (Lambda) checks the training data, and the validation data when given, before
  any instance starts and writes their reports under
  s3://<artifacts>/runs/<execution id>/data-validation/.
- PrepareRecipe (Lambda) validates the run's parameters, refuses a technique other than the
  one its checkpoint was trained with (as the model registry records it), and writes this run's
  recipe.yaml to s3://<artifacts>/runs/<execution id>/recipe/.
- The conditions pick one of four training steps. Each sends exactly the CreateTrainingJob
  request that the reference notebook's `PyTorch(training_recipe=...).fit()` sends for the
  same values, apart from the recipe's S3 folder and file name. They differ in the hyperparameter
  key the SDK chooses for `run.model_name_or_path` (`base_model` for a model name,
  `base_model_location` for an s3:// checkpoint), which no pipeline parameter can choose, and in
  whether a `validation` channel is sent: SageMaker refuses a channel with an empty URI, and no
  pipeline expression can leave a channel out.
- Each branch registers its own job's checkpoint (Lambda); `CheckpointS3Uri` is a step output
  that the next run passes as `ModelNameOrPath`.

The SageMaker SDK is imported inside the functions that need it: importing this module is cheap
(the CDK app imports it on every synth). The builder's parts: `step_names` (the contract),
`parameters`, `offline_sdk` (offline, quiet, deterministic), `step_builder` and `training_step`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from lambdas.recipe.evaluation_spec import nova_evaluation_image_uri
from lambdas.recipe.spec import nova_sft_image_uri
from pipeline.config import EnvironmentConfig
from pipeline.offline_sdk import offline_default_session, offline_session, quiet_sdk
from pipeline.parameters import (
    APPROVAL_STATUSES,
    NO_SOURCE_PACKAGE,
    ParameterSpec,
    parameter_specs,
)
from pipeline.step_builder import StepBuilder
from pipeline.step_names import (
    BASE_MODEL_VALIDATION_CONDITION,
    CHECKPOINT_VALIDATION_CONDITION,
    CONDITION_STEP,
    JOB_VARIANTS,
    PREPARE_OUTPUTS,
    PREPARE_STEP,
    REGISTER_FROM_BASE_MODEL,
    REGISTER_FROM_BASE_MODEL_WITH_VALIDATION,
    REGISTER_FROM_CHECKPOINT,
    REGISTER_FROM_CHECKPOINT_WITH_VALIDATION,
    REGISTER_OUTPUTS,
    REGISTER_STEPS,
    TRAIN_FROM_BASE_MODEL,
    TRAIN_FROM_BASE_MODEL_WITH_VALIDATION,
    TRAIN_FROM_CHECKPOINT,
    TRAIN_FROM_CHECKPOINT_WITH_VALIDATION,
    TRAINING_STEPS,
    VALIDATE_OUTPUTS,
    VALIDATE_STEP,
    DefinitionBuildError,
    JobVariant,
)

if TYPE_CHECKING:
    from sagemaker.workflow.pipeline import Pipeline

# The names callers outside the builder use (operator commands, the stacks, the Lambda tests):
# the builder's modules are `step_names`, `parameters`, `training_step`, `step_builder` and
# `offline_sdk`.
__all__ = [
    "APPROVAL_STATUSES",
    "BASE_MODEL_VALIDATION_CONDITION",
    "CHECKPOINT_VALIDATION_CONDITION",
    "CONDITION_STEP",
    "JOB_VARIANTS",
    "NO_SOURCE_PACKAGE",
    "PREPARE_OUTPUTS",
    "PREPARE_STEP",
    "REGISTER_FROM_BASE_MODEL",
    "REGISTER_FROM_BASE_MODEL_WITH_VALIDATION",
    "REGISTER_FROM_CHECKPOINT",
    "REGISTER_FROM_CHECKPOINT_WITH_VALIDATION",
    "REGISTER_OUTPUTS",
    "REGISTER_STEPS",
    "TRAINING_STEPS",
    "TRAIN_FROM_BASE_MODEL",
    "TRAIN_FROM_BASE_MODEL_WITH_VALIDATION",
    "TRAIN_FROM_CHECKPOINT",
    "TRAIN_FROM_CHECKPOINT_WITH_VALIDATION",
    "VALIDATE_OUTPUTS",
    "VALIDATE_STEP",
    "DefinitionBuildError",
    "JobVariant",
    "ParameterSpec",
    "build_pipeline",
    "definition_json",
    "parameter_specs",
]


def build_pipeline(
    *,
    env: EnvironmentConfig,
    role_arn: str,
    execution_role_arn: str,
    validate_function_arn: str,
    prepare_function_arn: str,
    register_function_arn: str,
    prepare_evaluation_function_arn: str,
    artifacts_bucket: str,
    data_bucket: str,
    kms_key_arn: str,
    tracking_arn: str | None = None,
) -> Pipeline:
    """Build the environment's pipeline; pure and offline (module docstring).

    - `role_arn`: the pipeline's own execution role. It belongs to `AWS::SageMaker::Pipeline`,
      not to the definition body, and is only checked for presence here.
    - `execution_role_arn`: the training job's role (CreateTrainingJob `RoleArn`), given whole:
      it is never looked up in IAM.
    - `artifacts_bucket`: bucket *name* for everything a run writes, under `runs/<execution id>/`
      (data-validation report, recipe, training output).
    - `data_bucket`: bucket name of the datasets. Runs name their data by URI, so the body does not
      use it; it is part of the contract for the stack's permissions and checked for presence.
    - `kms_key_arn`: the training job's output key (no volume key: p5 instances use instance
      storage, which SageMaker does not let a volume key encrypt).
    - `tracking_arn`: the MLflow tracking server's ARN when `env.tracking_enabled` (required
      then, refused otherwise): the prepare and register steps get it with the experiment (the
      pipeline's name) and the run name; with tracking off the definition is what it was.
    The model package group is `env.model_package_group_name`, the name the stack gives it.
    Every value may be a CDK token. Raises DefinitionBuildError when one is empty.
    """
    inputs = {
        "role_arn": role_arn,
        "execution_role_arn": execution_role_arn,
        "validate_function_arn": validate_function_arn,
        "prepare_function_arn": prepare_function_arn,
        "register_function_arn": register_function_arn,
        "prepare_evaluation_function_arn": prepare_evaluation_function_arn,
        "artifacts_bucket": artifacts_bucket,
        "data_bucket": data_bucket,
        "kms_key_arn": kms_key_arn,
    }
    missing = [name for name, value in inputs.items() if not isinstance(value, str) or not value]
    if missing:
        raise DefinitionBuildError(
            f"build_pipeline needs non-empty strings for: {', '.join(missing)} "
            "(pass the deployed resources' ARNs and names, or CDK tokens for them)"
        )
    if env.tracking_enabled != bool(tracking_arn):
        raise DefinitionBuildError(
            f"environment {env.name}: tracking is {env.tracking!r}; pass tracking_arn exactly "
            "when tracking is not off"
        )
    try:
        image_uri = nova_sft_image_uri(env.region)
        evaluation_image_uri = nova_evaluation_image_uri(env.region)
    except ValueError as error:
        raise DefinitionBuildError(f"environment {env.name}: {error}") from None

    with quiet_sdk():
        session = offline_session(env.region)
        with offline_default_session(session.boto_session):
            return StepBuilder(
                env=env,
                session=session,
                image_uri=image_uri,
                evaluation_image_uri=evaluation_image_uri,
                execution_role_arn=execution_role_arn,
                functions={
                    VALIDATE_STEP: validate_function_arn,
                    PREPARE_STEP: prepare_function_arn,
                    "register": register_function_arn,
                    "prepare_evaluation": prepare_evaluation_function_arn,
                },
                artifacts_bucket=artifacts_bucket,
                kms_key_arn=kms_key_arn,
                model_package_group_name=env.model_package_group_name,
                tracking_arn=tracking_arn,
            ).pipeline()


def definition_json(pipeline: Pipeline) -> str:
    """The pipeline's definition as compact JSON with sorted keys: the same bytes on every build.

    Rendering runs the SDK's deferred request building, so it runs offline like the build.
    """
    with quiet_sdk(), offline_default_session(pipeline.sagemaker_session.boto_session):
        document = json.loads(pipeline.definition())
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)

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
(the CDK app imports it on every synth).
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
import warnings
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lambdas.recipe.spec import (
    BASE_MODEL,
    KNOBS,
    LORA,
    NO_VALIDATION_DATA,
    SUPPORTED_INSTANCE_TYPES,
    TECHNIQUES,
    TEMPLATE_FILES,
    nova_sft_image_uri,
)
from pipeline.config import EnvironmentConfig

if TYPE_CHECKING:
    import boto3
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.steps import TrainingStep

# -- names that operators and the other parts of the project rely on ---------------------------

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

VALIDATE_OUTPUTS: tuple[str, ...] = ("Samples", "Findings", "Warnings", "ValidationSamples")
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

# A run registers its checkpoint pending (or rejected); approving is an act of its own
# (`python -m pipeline approve`, the console), never a parameter of a run.
APPROVAL_STATUSES: tuple[str, ...] = ("PendingManualApproval", "Rejected")
# SourceModelPackageArn of a run that replays nothing (a parameter default cannot be empty).
NO_SOURCE_PACKAGE = "none"

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

_SDK_LOGGERS_QUIET_UP_TO = logging.WARNING


class DefinitionBuildError(RuntimeError):
    """The definition cannot be built from these inputs; the message names the input and fix."""


# -- parameters ---------------------------------------------------------------------------------


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
    )


# -- the builder --------------------------------------------------------------------------------


def build_pipeline(
    *,
    env: EnvironmentConfig,
    role_arn: str,
    execution_role_arn: str,
    validate_function_arn: str,
    prepare_function_arn: str,
    register_function_arn: str,
    artifacts_bucket: str,
    data_bucket: str,
    kms_key_arn: str,
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
    The model package group is `env.model_package_group_name`, the name the stack gives it.
    Every value may be a CDK token. Raises DefinitionBuildError when one is empty.
    """
    inputs = {
        "role_arn": role_arn,
        "execution_role_arn": execution_role_arn,
        "validate_function_arn": validate_function_arn,
        "prepare_function_arn": prepare_function_arn,
        "register_function_arn": register_function_arn,
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
    try:
        image_uri = nova_sft_image_uri(env.region)
    except ValueError as error:
        raise DefinitionBuildError(f"environment {env.name}: {error}") from None

    with _quiet_sdk():
        session = _offline_session(env.region)
        with _offline_default_session(session.boto_session):
            return _Builder(
                env=env,
                session=session,
                image_uri=image_uri,
                execution_role_arn=execution_role_arn,
                functions={
                    VALIDATE_STEP: validate_function_arn,
                    PREPARE_STEP: prepare_function_arn,
                    "register": register_function_arn,
                },
                artifacts_bucket=artifacts_bucket,
                kms_key_arn=kms_key_arn,
                model_package_group_name=env.model_package_group_name,
            ).pipeline()


def definition_json(pipeline: Pipeline) -> str:
    """The pipeline's definition as compact JSON with sorted keys: the same bytes on every build.

    Rendering runs the SDK's deferred request building, so it runs offline like the build.
    """
    with _quiet_sdk(), _offline_default_session(pipeline.sagemaker_session.boto_session):
        document = json.loads(pipeline.definition())
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


class _Builder:
    """Assembles the steps; one instance per build."""

    def __init__(
        self,
        *,
        env: EnvironmentConfig,
        session: PipelineSession,
        image_uri: str,
        execution_role_arn: str,
        functions: Mapping[str, str],
        artifacts_bucket: str,
        kms_key_arn: str,
        model_package_group_name: str,
    ) -> None:
        from sagemaker.workflow.parameters import (
            ParameterBoolean,
            ParameterFloat,
            ParameterInteger,
            ParameterString,
        )

        self.env = env
        self.session = session
        self.image_uri = image_uri
        self.execution_role_arn = execution_role_arn
        self.functions = functions
        self.run_prefix = f"s3://{artifacts_bucket}/runs/"
        self.kms_key_arn = kms_key_arn
        self.model_package_group_name = model_package_group_name
        kinds: dict[str, Any] = {
            "String": ParameterString,
            "Integer": ParameterInteger,
            "Float": ParameterFloat,
            "Boolean": ParameterBoolean,
        }
        self.parameters: dict[str, Any] = {}
        for spec in parameter_specs(env):
            extra = {"enum_values": list(spec.choices)} if spec.choices else {}
            self.parameters[spec.name] = kinds[spec.kind](
                spec.name, default_value=spec.default, **extra
            )

    def _run_path(self, suffix: str) -> Any:
        """s3://<artifacts>/runs/<execution id><suffix>, resolved when the execution runs."""
        from sagemaker.workflow.execution_variables import ExecutionVariables
        from sagemaker.workflow.functions import Join

        return Join(
            on="", values=[self.run_prefix, ExecutionVariables.PIPELINE_EXECUTION_ID, suffix]
        )

    def _lambda_step(
        self,
        *,
        name: str,
        function_arn: str,
        description: str,
        inputs: dict[str, Any],
        outputs: tuple[str, ...],
        depends_on: list[Any] | None = None,
    ) -> Any:
        from sagemaker.lambda_helper import Lambda
        from sagemaker.workflow.lambda_step import LambdaOutput, LambdaOutputTypeEnum, LambdaStep

        return LambdaStep(
            name=name,
            description=description,
            lambda_func=Lambda(function_arn=function_arn, session=self.session),
            inputs=inputs,
            outputs=[
                LambdaOutput(output_name=output, output_type=LambdaOutputTypeEnum.String)
                for output in outputs
            ],
            depends_on=depends_on,
        )

    def pipeline(self) -> Pipeline:
        from sagemaker.workflow.condition_step import ConditionStep
        from sagemaker.workflow.conditions import ConditionEquals
        from sagemaker.workflow.execution_variables import ExecutionVariables
        from sagemaker.workflow.functions import Join
        from sagemaker.workflow.pipeline import Pipeline

        from lambdas.prepare_recipe import GROUP_KEY, PREFIX_KEY
        from lambdas.recipe import RUN_KEYS

        p = self.parameters
        validate = self._lambda_step(
            name=VALIDATE_STEP,
            function_arn=self.functions[VALIDATE_STEP],
            description="Check the training and validation data before any instance starts",
            inputs={
                "TrainDataS3Uri": p["TrainDataS3Uri"],
                "ValidationDataS3Uri": p["ValidationDataS3Uri"],
                "GlobalBatchSize": p["GlobalBatchSize"],
                "ReasoningEnabled": p["ReasoningEnabled"],
                "ReportS3Uri": self._run_path("/data-validation/report.json"),
                "ValidationReportS3Uri": self._run_path("/data-validation/validation-report.json"),
            },
            outputs=VALIDATE_OUTPUTS,
        )
        # The prepare function refuses unknown keys, so its event is built from its own key list.
        run_name = Join(
            on="-", values=[self.env.pipeline_name, ExecutionVariables.PIPELINE_EXECUTION_ID]
        )
        prepare_inputs: dict[str, Any] = {
            key: run_name if key == "RunName" else p[key] for key in RUN_KEYS
        }
        prepare_inputs[PREFIX_KEY] = self._run_path("/recipe/")
        # Where the prepare function looks up a checkpoint's technique
        # (lambdas/registry/continuity.py).
        prepare_inputs[GROUP_KEY] = self.model_package_group_name
        prepare = self._lambda_step(
            name=PREPARE_STEP,
            function_arn=self.functions[PREPARE_STEP],
            description="Validate the run's parameters and write its recipe.yaml",
            inputs=prepare_inputs,
            outputs=PREPARE_OUTPUTS,
            depends_on=[validate],
        )
        outputs = prepare.properties.Outputs
        jobs = {
            (variant.hyperparameter, variant.with_validation): self._job_steps(variant, outputs)
            for variant in JOB_VARIANTS
        }

        def validation_branch(name: str, kind: str, hyperparameter: str) -> ConditionStep:
            """Train with the validation channel, or without it, as PrepareRecipe found."""
            return ConditionStep(
                name=name,
                description=f"Send the validation channel ({kind}) unless ValidationDataS3Uri "
                f"is {NO_VALIDATION_DATA}",
                conditions=[ConditionEquals(left=outputs["HasValidationData"], right="true")],
                if_steps=jobs[(hyperparameter, True)],
                else_steps=jobs[(hyperparameter, False)],
            )

        branch = ConditionStep(
            name=CONDITION_STEP,
            description="Start from an earlier checkpoint (s3://) or from the base model",
            conditions=[ConditionEquals(left=outputs["StartsFromCheckpoint"], right="true")],
            if_steps=[
                validation_branch(
                    CHECKPOINT_VALIDATION_CONDITION, "checkpoint run", "base_model_location"
                )
            ],
            else_steps=[
                validation_branch(BASE_MODEL_VALIDATION_CONDITION, "base model run", "base_model")
            ],
        )
        return Pipeline(
            name=self.env.pipeline_name,
            parameters=list(self.parameters.values()),
            steps=[validate, prepare, branch],
            sagemaker_session=self.session,
            # The notebook's job joins no experiment; lineage lives in the model registry instead.
            pipeline_experiment_config=None,
        )

    def _job_steps(self, variant: JobVariant, prepared: Any) -> list[Any]:
        """The variant's training step and the register step that reads its job."""
        from lambdas.prepare_recipe import PREFIX_KEY

        training = self._training_step(variant, prepared[PREFIX_KEY])
        return [training, self._register_step(variant.register_step, training, prepared)]

    def _training_step(self, variant: JobVariant, recipe_prefix: Any) -> TrainingStep:
        """The notebook's estimator and fit(), with the run-time recipe and ModelNameOrPath."""
        from sagemaker.inputs import TrainingInput
        from sagemaker.pytorch.estimator import PyTorch
        from sagemaker.workflow.retry import (
            SageMakerJobExceptionTypeEnum,
            SageMakerJobStepRetryPolicy,
        )
        from sagemaker.workflow.steps import TrainingStep

        from lambdas.prepare_recipe import RECIPE_FILE_NAME

        p = self.parameters
        name, hyperparameter = variant.training_step, variant.hyperparameter
        # The SDK picks the hyperparameter key from the recipe's run.model_name_or_path at
        # construction; a plain value that selects the wanted key is given here and its value is
        # replaced by the parameter below.
        source = _CHECKPOINT_PLACEHOLDER if hyperparameter == "base_model_location" else BASE_MODEL
        estimator: Any = PyTorch(
            training_recipe=str(TEMPLATE_FILES[_SYNTH_TECHNIQUE]),
            recipe_overrides={"run": {"model_name_or_path": source}},
            image_uri=self.image_uri,
            instance_type=p["TrainingInstanceType"],
            instance_count=p["TrainingInstanceCount"],
            role=self.execution_role_arn,
            output_path=self._run_path("/training"),
            max_run=p["MaxRuntimeSeconds"],
            disable_profiler=True,
            debugger_hook_config=False,
            output_kms_key=self.kms_key_arn,
            sagemaker_session=self.session,
        )
        chosen = {
            k for k in ("base_model", "base_model_location") if k in estimator.hyperparameters()
        }
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
        with _telemetry_opted_out(self.session):
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

    def _register_step(self, name: str, training: TrainingStep, prepared: Any) -> Any:
        from sagemaker.workflow.execution_variables import ExecutionVariables

        p = self.parameters
        return self._lambda_step(
            name=name,
            function_arn=self.functions["register"],
            description="Read the job's manifest and register its checkpoint as a model package",
            inputs={
                "TrainingJobName": training.properties.TrainingJobName,
                "ModelArtifactsS3Uri": training.properties.ModelArtifacts.S3ModelArtifacts,
                "ModelPackageGroupName": self.model_package_group_name,
                "ModelNameOrPath": p["ModelNameOrPath"],
                "Technique": p["Technique"],
                "RecipeS3Uri": prepared["RecipeS3Uri"],
                "RecipeSha256": prepared["RecipeSha256"],
                "TrainDataS3Uri": p["TrainDataS3Uri"],
                "ValidationDataS3Uri": p["ValidationDataS3Uri"],
                "TrainingInstanceType": p["TrainingInstanceType"],
                "MaxRuntimeSeconds": p["MaxRuntimeSeconds"],
                "SourceModelPackageArn": p["SourceModelPackageArn"],
                "PipelineExecutionArn": ExecutionVariables.PIPELINE_EXECUTION_ARN,
                "ModelApprovalStatus": p["ModelApprovalStatus"],
            },
            outputs=REGISTER_OUTPUTS,
        )


# -- keeping the SDK offline, quiet and deterministic ---------------------------------------------

# Static placeholder credentials: creating clients then never walks the credential chain
# (profiles, SSO, credential_process, instance metadata). No request is ever sent with them.
_OFFLINE_KEY = "offline-definition-build"

# The SDK reads its defaults config (TelemetryOptOut, and any defaults it would inject into jobs)
# from the session. Handing it this config keeps files on the building machine out of the build.
_SDK_CONFIG: dict[str, Any] = {
    "SchemaVersion": "1.0",
    "SageMaker": {"PythonSDK": {"Modules": {"TelemetryOptOut": True}}},
}


class OfflineRequestError(RuntimeError):
    """Something tried to call AWS while the definition was being built."""


def _refuse_request(request: Any, **_kwargs: Any) -> None:
    raise OfflineRequestError(
        f"the pipeline definition build tried to call AWS ({request.method} {request.url}); "
        "building must stay offline: pass explicit ARNs and names"
    )


def _offline_boto_session(region: str) -> boto3.Session:
    import boto3

    session = boto3.Session(
        aws_access_key_id=_OFFLINE_KEY, aws_secret_access_key=_OFFLINE_KEY, region_name=region
    )
    # Every client made from this session refuses to send a request, before any socket opens.
    session.events.register("before-send", _refuse_request)
    return session


# One session per region and process: making one validates the SDK's config schema three times
# and builds nine clients, two thirds of a build's time, and a CDK synth builds once per stage.
# Steps keep no state in it between builds (tested: repeated builds give the same bytes). Like the
# rest of the build (boto3's default session, logging), it is not for concurrent threads.
@functools.cache
def _offline_session(region: str) -> PipelineSession:
    """A PipelineSession that makes no AWS call: it never expands role names and has no bucket."""
    from sagemaker.workflow.pipeline_context import PipelineSession

    class OfflinePipelineSession(PipelineSession):
        def expand_role(self, role: str) -> str:
            # Role ARNs are given whole; a CDK token has no "/" and would otherwise go to IAM.
            return role

        def default_bucket(self) -> str:
            raise OfflineRequestError(
                "the SageMaker SDK asked for its default bucket; every S3 location of the "
                "pipeline must be given explicitly"
            )

    boto_session = _offline_boto_session(region)
    session = OfflinePipelineSession(boto_session=boto_session, sagemaker_config=_SDK_CONFIG)
    # Every config lookup validates the whole config against the SDK's JSON schema (about 0.4 s
    # each, some twenty lookups per estimator). Nothing but the telemetry opt-out is configured,
    # so lookups see no config, and `_telemetry_opted_out` restores it where telemetry reads it.
    session.sagemaker_config = {}
    return session


@contextlib.contextmanager
def _telemetry_opted_out(session: PipelineSession) -> Iterator[None]:
    """The opt-out config in place while fit() runs: its telemetry wrapper reads it there."""
    session.sagemaker_config = _SDK_CONFIG
    try:
        yield
    finally:
        session.sagemaker_config = {}


@contextlib.contextmanager
def _offline_default_session(boto_session: boto3.Session) -> Iterator[None]:
    """boto3's default session is the offline one while the SDK builds.

    Every estimator makes a Studio TensorBoard helper with `boto3.client(...)` from the default
    session; with the offline session there, no credential chain is walked.
    """
    import boto3

    previous = boto3.DEFAULT_SESSION
    boto3.DEFAULT_SESSION = boto_session
    try:
        yield
    finally:
        boto3.DEFAULT_SESSION = previous


@contextlib.contextmanager
def _quiet_sdk() -> Iterator[None]:
    """Silence the SDK's notebook advice while it imports and builds; undo its global changes.

    The SDK logs (some of it to stdout) and warns about v2 deprecation, recipe replicas and job
    names, none of which applies here; importing it also replaces `sys.excepthook`.
    """
    excepthook = sys.excepthook
    previous_disable = logging.root.manager.disable
    logging.disable(_SDK_LOGGERS_QUIET_UP_TO)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous_disable)
        sys.excepthook = excepthook

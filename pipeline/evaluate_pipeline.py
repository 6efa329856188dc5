"""The evaluate-only pipeline, `<pipeline name>-evaluate`: score the base model or an existing
checkpoint on a task without training (the first run's baseline; decision 0017).

    ValidateData (the evaluation file only) -> PrepareEvaluation -> EvaluatesCheckpoint
      true:  CheckpointOnOwnData  true: EvalCheckpoint  -> RecordCheckpoint
                                  false: BenchCheckpoint -> RecordCheckpointBenchmarked
      false: BaseModelOnOwnData   true: EvalBaseModel   -> RecordBaseModel
                                  false: BenchBaseModel  -> RecordBaseModelBenchmarked

Built by the same code as the training pipeline (`StepBuilder`'s Lambda steps and run paths,
`pipeline.evaluation_step`); the condition on PrepareEvaluation's `StartsFromCheckpoint` picks the
hyperparameter the model reaches the job by (`base_model_location` for s3://, `base_model` for a
model name; decision 0004). The Record steps call the record function
(`lambdas/record_evaluation.py`, function key "record_evaluation"). Pure and offline, like
`pipeline.definition.build_pipeline`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lambdas.recipe.evaluation_spec import (
    EVALUATION_INSTANCE_TYPES,
    EVALUATION_TASKS,
    GEN_QA,
    NO_EVALUATION_DATA,
    nova_evaluation_image_uri,
)
from lambdas.recipe.spec import BASE_MODEL, nova_sft_image_uri
from pipeline.config import EnvironmentConfig
from pipeline.evaluation_step import evaluation_step
from pipeline.offline_sdk import offline_default_session, offline_session, quiet_sdk
from pipeline.parameters import ParameterSpec, sdk_parameters_of
from pipeline.step_builder import StepBuilder
from pipeline.step_names import PREPARE_EVALUATION_OUTPUTS, DefinitionBuildError

if TYPE_CHECKING:
    from sagemaker.workflow.pipeline import Pipeline

VALIDATE_STEP = "ValidateData"
PREPARE_STEP = "PrepareEvaluation"
MODEL_CONDITION = "EvaluatesCheckpoint"
VALIDATE_OUTPUTS: tuple[str, ...] = ("EvaluationDataSha256",)
RECORD_OUTPUTS: tuple[str, ...] = ("EvaluationScore", "ScoreChange")
NO_PACKAGE = "none"
# (tag, hyperparameter): the model is a checkpoint (s3://) or a model name.
MODEL_KINDS: tuple[tuple[str, str], ...] = (
    ("Checkpoint", "base_model_location"),
    ("BaseModel", "base_model"),
)


def evaluate_pipeline_name(env: EnvironmentConfig) -> str:
    return f"{env.pipeline_name}-evaluate"


def evaluate_parameter_specs() -> tuple[ParameterSpec, ...]:
    """The evaluate-only pipeline's parameters (no training, no gate)."""
    return (
        ParameterSpec(
            "ModelNameOrPath",
            "String",
            BASE_MODEL,
            f"the model to score: {BASE_MODEL}, or a checkpoint's s3:// URI",
        ),
        ParameterSpec(
            "ModelPackageArn",
            "String",
            NO_PACKAGE,
            "the checkpoint's model package, or none (the base model, an unregistered checkpoint)",
        ),
        ParameterSpec(
            "EvaluationTask", "String", GEN_QA, "gen_qa or a benchmark", EVALUATION_TASKS
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
    )


class EvaluateOnlyBuilder(StepBuilder):
    """The evaluate-only pipeline's steps, with StepBuilder's Lambda steps and run paths."""

    def pipeline(self) -> Pipeline:
        from sagemaker.workflow.condition_step import ConditionStep
        from sagemaker.workflow.conditions import ConditionEquals
        from sagemaker.workflow.execution_variables import ExecutionVariables
        from sagemaker.workflow.functions import Join
        from sagemaker.workflow.pipeline import Pipeline

        p = self.parameters
        validate = self._lambda_step(
            name=VALIDATE_STEP,
            function_arn=self.functions["validate"],
            description="Check the evaluation data before any instance starts",
            inputs={
                "EvaluationOnly": "true",
                "EvaluationTask": p["EvaluationTask"],
                "EvaluationDataS3Uri": p["EvaluationDataS3Uri"],
                "EvaluationReportS3Uri": self._run_path("/data-validation/evaluation-report.json"),
            },
            outputs=VALIDATE_OUTPUTS,
        )
        name = evaluate_pipeline_name(self.env)
        prepare = self._lambda_step(
            name=PREPARE_STEP,
            function_arn=self.functions["prepare_evaluation"],
            description="Write the evaluation recipe (and data) for the model to score",
            inputs={
                "EvaluationTask": p["EvaluationTask"],
                "ModelNameOrPath": p["ModelNameOrPath"],
                "EvaluationDataS3Uri": p["EvaluationDataS3Uri"],
                "RunName": Join(on="-", values=[name, ExecutionVariables.PIPELINE_EXECUTION_ID]),
                "EvaluationS3Prefix": self._run_path("/evaluation/"),
            },
            outputs=PREPARE_EVALUATION_OUTPUTS,
            depends_on=[validate],
        )
        prepared = prepare.properties.Outputs
        branches: dict[str, Any] = {}
        for tag, hyperparameter in MODEL_KINDS:
            jobs: dict[bool, list[Any]] = {}
            for with_data, job_name in ((True, f"Eval{tag}"), (False, f"Bench{tag}")):
                job = evaluation_step(
                    job_name,
                    hyperparameter=hyperparameter,
                    with_data=with_data,
                    prepared=prepared,
                    instance_type=p["EvaluationInstanceType"],
                    image_uri=self.evaluation_image_uri,
                    execution_role_arn=self.execution_role_arn,
                    output_path=self._run_path("/evaluation"),
                    kms_key_arn=self.kms_key_arn,
                    session=self.session,
                )
                record = f"Record{tag}" + ("" if with_data else "Benchmarked")
                jobs[with_data] = [job, self._record_step(record, job, prepared, validate)]
            branches[tag] = ConditionStep(
                name=f"{tag}OnOwnData",
                description=f"Send the evaluation data ({GEN_QA}) or run the benchmark",
                conditions=[ConditionEquals(left=p["EvaluationTask"], right=GEN_QA)],
                if_steps=jobs[True],
                else_steps=jobs[False],
            )
        model = ConditionStep(
            name=MODEL_CONDITION,
            description="Score a checkpoint (s3://) or a model by name",
            conditions=[ConditionEquals(left=prepared["StartsFromCheckpoint"], right="true")],
            if_steps=[branches["Checkpoint"]],
            else_steps=[branches["BaseModel"]],
        )
        return Pipeline(
            name=name,
            parameters=list(self.parameters.values()),
            steps=[validate, prepare, model],
            sagemaker_session=self.session,
            pipeline_experiment_config=None,
        )

    def _record_step(self, name: str, job: Any, prepared: Any, validate: Any) -> Any:
        from sagemaker.workflow.execution_variables import ExecutionVariables

        p = self.parameters
        return self._lambda_step(
            name=name,
            function_arn=self.functions["record_evaluation"],
            description="Read the evaluation's results and record the score",
            inputs={
                "ModelPackageArn": p["ModelPackageArn"],
                "ModelNameOrPath": prepared["ModelNameOrPath"],
                "ModelPackageGroupName": self.model_package_group_name,
                "EvaluationTask": p["EvaluationTask"],
                "EvaluationJobName": job.properties.TrainingJobName,
                "EvaluationModelArtifactsS3Uri": job.properties.ModelArtifacts.S3ModelArtifacts,
                "EvaluationDataS3Uri": p["EvaluationDataS3Uri"],
                "EvaluationDataSha256": validate.properties.Outputs["EvaluationDataSha256"],
                "EvaluationRunName": prepared["EvaluationRunName"],
                "EvaluationReportS3Uri": self._run_path("/evaluation/statistics.json"),
                "BaselineS3Prefix": f"s3://{self.artifacts_bucket}/baselines/",
                "PipelineExecutionArn": ExecutionVariables.PIPELINE_EXECUTION_ARN,
            },
            outputs=RECORD_OUTPUTS,
        )


def build_evaluate_pipeline(
    *,
    env: EnvironmentConfig,
    execution_role_arn: str,
    validate_function_arn: str,
    prepare_evaluation_function_arn: str,
    record_evaluation_function_arn: str,
    artifacts_bucket: str,
    kms_key_arn: str,
) -> Pipeline:
    """Build the environment's evaluate-only pipeline; pure and offline. Every value may be a
    CDK token; DefinitionBuildError names an empty one."""
    inputs = {
        "execution_role_arn": execution_role_arn,
        "validate_function_arn": validate_function_arn,
        "prepare_evaluation_function_arn": prepare_evaluation_function_arn,
        "record_evaluation_function_arn": record_evaluation_function_arn,
        "artifacts_bucket": artifacts_bucket,
        "kms_key_arn": kms_key_arn,
    }
    missing = [key for key, value in inputs.items() if not isinstance(value, str) or not value]
    if missing:
        raise DefinitionBuildError(
            f"build_evaluate_pipeline needs non-empty strings for: {', '.join(missing)}"
        )
    try:
        image_uri, evaluation_image_uri = (
            nova_sft_image_uri(env.region),
            nova_evaluation_image_uri(env.region),
        )
    except ValueError as error:
        raise DefinitionBuildError(f"environment {env.name}: {error}") from None
    with quiet_sdk():
        session = offline_session(env.region)
        with offline_default_session(session.boto_session):
            builder = EvaluateOnlyBuilder(
                env=env,
                session=session,
                image_uri=image_uri,
                evaluation_image_uri=evaluation_image_uri,
                execution_role_arn=execution_role_arn,
                functions={
                    "validate": validate_function_arn,
                    "prepare_evaluation": prepare_evaluation_function_arn,
                    "record_evaluation": record_evaluation_function_arn,
                },
                artifacts_bucket=artifacts_bucket,
                kms_key_arn=kms_key_arn,
                model_package_group_name=env.model_package_group_name,
            )
            builder.parameters = sdk_parameters_of(evaluate_parameter_specs())
            return builder.pipeline()

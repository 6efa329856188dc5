"""The step builder: the definition's Lambda, condition and register steps, wired to the
parameters and to each job variant's training step (`pipeline.training_step`).

It runs inside `pipeline.offline_sdk`'s guards; `pipeline.definition.build_pipeline` is the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from lambdas.recipe.evaluation_spec import GEN_QA, NO_EVALUATION
from lambdas.recipe.spec import NO_VALIDATION_DATA
from pipeline import step_names
from pipeline.config import EnvironmentConfig
from pipeline.evaluation_step import evaluation_step
from pipeline.parameters import sdk_parameters
from pipeline.training_step import training_step

if TYPE_CHECKING:
    from sagemaker.workflow.pipeline import Pipeline
    from sagemaker.workflow.pipeline_context import PipelineSession
    from sagemaker.workflow.steps import TrainingStep


class StepBuilder:
    """Assembles the steps; one instance per build."""

    def __init__(
        self,
        *,
        env: EnvironmentConfig,
        session: PipelineSession,
        image_uri: str,
        evaluation_image_uri: str,
        execution_role_arn: str,
        functions: Mapping[str, str],
        artifacts_bucket: str,
        kms_key_arn: str,
        model_package_group_name: str,
        tracking_arn: str | None = None,
    ) -> None:
        self.env = env
        self.session = session
        self.image_uri = image_uri
        self.evaluation_image_uri = evaluation_image_uri
        self.artifacts_bucket = artifacts_bucket
        self.execution_role_arn = execution_role_arn
        self.functions = functions
        self.run_prefix = f"s3://{artifacts_bucket}/runs/"
        self.kms_key_arn = kms_key_arn
        self.model_package_group_name = model_package_group_name
        self.tracking_arn = tracking_arn
        self.parameters: dict[str, Any] = sdk_parameters(env)

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
            name=step_names.VALIDATE_STEP,
            function_arn=self.functions[step_names.VALIDATE_STEP],
            description="Check the training and validation data before any instance starts",
            inputs={
                "TrainDataS3Uri": p["TrainDataS3Uri"],
                "ValidationDataS3Uri": p["ValidationDataS3Uri"],
                "GlobalBatchSize": p["GlobalBatchSize"],
                "ReasoningEnabled": p["ReasoningEnabled"],
                "ReportS3Uri": self._run_path("/data-validation/report.json"),
                "ValidationReportS3Uri": self._run_path("/data-validation/validation-report.json"),
                "EvaluationTask": p["EvaluationTask"],
                "EvaluationDataS3Uri": p["EvaluationDataS3Uri"],
                "EvaluationReportS3Uri": self._run_path("/data-validation/evaluation-report.json"),
            },
            outputs=step_names.VALIDATE_OUTPUTS,
        )
        self.validated = validate.properties.Outputs
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
        prepare_inputs.update(self._tracking_inputs(with_run_name=False))
        prepare = self._lambda_step(
            name=step_names.PREPARE_STEP,
            function_arn=self.functions[step_names.PREPARE_STEP],
            description="Validate the run's parameters and write its recipe.yaml",
            inputs=prepare_inputs,
            outputs=step_names.PREPARE_OUTPUTS,
            depends_on=[validate],
        )
        outputs = prepare.properties.Outputs
        jobs = {
            (variant.hyperparameter, variant.with_validation): self._job_steps(variant, outputs)
            for variant in step_names.JOB_VARIANTS
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
            name=step_names.CONDITION_STEP,
            description="Start from an earlier checkpoint (s3://) or from the base model",
            conditions=[ConditionEquals(left=outputs["StartsFromCheckpoint"], right="true")],
            if_steps=[
                validation_branch(
                    step_names.CHECKPOINT_VALIDATION_CONDITION,
                    "checkpoint run",
                    "base_model_location",
                )
            ],
            else_steps=[
                validation_branch(
                    step_names.BASE_MODEL_VALIDATION_CONDITION, "base model run", "base_model"
                )
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

    def _tracking_inputs(self, *, with_run_name: bool) -> dict[str, Any]:
        """The MLflow inputs of the prepare and register steps: none when tracking is off, so
        that the definition of such an environment does not change
        (docs/decisions/0020-experiment-tracking.md)."""
        from sagemaker.workflow.execution_variables import ExecutionVariables
        from sagemaker.workflow.functions import Join

        from lambdas.tracking.registration import ARN_KEY, EXPERIMENT_KEY, RUN_NAME_KEY

        if not self.tracking_arn:
            return {}
        inputs: dict[str, Any] = {
            ARN_KEY: self.tracking_arn,
            EXPERIMENT_KEY: self.env.pipeline_name,
        }
        if with_run_name:
            # The prepare step's RunName: the recipe's run.mlflow_run_name.
            inputs[RUN_NAME_KEY] = Join(
                on="-", values=[self.env.pipeline_name, ExecutionVariables.PIPELINE_EXECUTION_ID]
            )
        return inputs

    def _job_steps(self, variant: step_names.JobVariant, prepared: Any) -> list[Any]:
        """The variant's training step, then its evaluation and registration (JobVariant)."""
        from lambdas.prepare_recipe import PREFIX_KEY

        training = training_step(
            variant,
            prepared[PREFIX_KEY],
            parameters=self.parameters,
            image_uri=self.image_uri,
            execution_role_arn=self.execution_role_arn,
            output_path=self._run_path("/training"),
            kms_key_arn=self.kms_key_arn,
            session=self.session,
        )
        return [training, self._evaluation_branch(variant, training, prepared)]

    def _evaluation_branch(
        self, variant: step_names.JobVariant, training: TrainingStep, prepared: Any
    ) -> Any:
        """Evaluate the job's checkpoint unless EvaluationTask is none, then register it with
        the scores (the gate's verdict is the status it is created with: decision 0017)."""
        from sagemaker.workflow.condition_step import ConditionStep
        from sagemaker.workflow.conditions import ConditionEquals
        from sagemaker.workflow.execution_variables import ExecutionVariables
        from sagemaker.workflow.functions import Join

        p = self.parameters
        prepare = self._lambda_step(
            name=variant.prepare_evaluation_step,
            function_arn=self.functions["prepare_evaluation"],
            description="Read the job's checkpoint and write its evaluation recipe (and data)",
            inputs={
                "EvaluationTask": p["EvaluationTask"],
                "ModelArtifactsS3Uri": training.properties.ModelArtifacts.S3ModelArtifacts,
                "EvaluationDataS3Uri": p["EvaluationDataS3Uri"],
                "RunName": Join(
                    on="-",
                    values=[
                        self.env.pipeline_name,
                        ExecutionVariables.PIPELINE_EXECUTION_ID,
                        "eval",
                    ],
                ),
                "EvaluationS3Prefix": self._run_path("/evaluation/"),
            },
            outputs=step_names.PREPARE_EVALUATION_OUTPUTS,
        )
        evaluated = prepare.properties.Outputs
        jobs = {}
        for with_data, name in ((True, variant.evaluate_step), (False, variant.benchmark_step)):
            job = evaluation_step(
                name,
                # The job's checkpoint is always an s3:// URI.
                hyperparameter="base_model_location",
                with_data=with_data,
                prepared=evaluated,
                instance_type=p["EvaluationInstanceType"],
                image_uri=self.evaluation_image_uri,
                execution_role_arn=self.execution_role_arn,
                output_path=self._run_path("/evaluation"),
                kms_key_arn=self.kms_key_arn,
                session=self.session,
            )
            register_name = (
                variant.register_step if with_data else variant.register_benchmarked_step
            )
            jobs[with_data] = [
                job,
                self._register_step(
                    register_name, training, prepared, self._evaluation_inputs(job, evaluated)
                ),
            ]
        on_data = ConditionStep(
            name=variant.data_condition,
            description=f"Send the evaluation data ({GEN_QA}) or run the benchmark",
            conditions=[ConditionEquals(left=p["EvaluationTask"], right=GEN_QA)],
            if_steps=jobs[True],
            else_steps=jobs[False],
        )
        return ConditionStep(
            name=variant.evaluates_condition,
            description=f"Evaluate the checkpoint unless EvaluationTask is {NO_EVALUATION}",
            # Waits for the training job: the condition reads a parameter only.
            depends_on=[training],
            conditions=[ConditionEquals(left=p["EvaluationTask"], right=NO_EVALUATION)],
            if_steps=[
                self._register_step(
                    variant.register_unevaluated_step,
                    training,
                    prepared,
                    self._evaluation_inputs(None, None),
                )
            ],
            else_steps=[prepare, on_data],
        )

    def _evaluation_inputs(self, job: TrainingStep | None, evaluated: Any) -> dict[str, Any]:
        """The register step's evaluation inputs (the contract with the register handler):
        the literal "none" where the checkpoint is not evaluated."""
        p = self.parameters
        none = NO_EVALUATION
        return {
            "EvaluationTask": p["EvaluationTask"] if job is not None else none,
            "EvaluationJobName": job.properties.TrainingJobName if job is not None else none,
            "EvaluationModelArtifactsS3Uri": (
                job.properties.ModelArtifacts.S3ModelArtifacts if job is not None else none
            ),
            "EvaluationDataS3Uri": p["EvaluationDataS3Uri"],
            "EvaluationDataSha256": self.validated["EvaluationDataSha256"],
            "EvaluationRunName": evaluated["EvaluationRunName"] if job is not None else none,
            "GateMetric": p["GateMetric"],
            "GateThreshold": p["GateThreshold"],
            "GateRequiresImprovement": p["GateRequiresImprovement"],
            "EvaluationReportS3Uri": self._run_path("/evaluation/statistics.json"),
            "BaselineS3Prefix": f"s3://{self.artifacts_bucket}/baselines/",
        }

    def _register_step(
        self,
        name: str,
        training: TrainingStep,
        prepared: Any,
        evaluation: dict[str, Any],
    ) -> Any:
        from sagemaker.workflow.execution_variables import ExecutionVariables

        p = self.parameters
        return self._lambda_step(
            name=name,
            function_arn=self.functions["register"],
            description="Register the job's checkpoint as a model package, with its scores",
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
                **evaluation,
                **self._tracking_inputs(with_run_name=True),
            },
            outputs=step_names.REGISTER_OUTPUTS,
        )

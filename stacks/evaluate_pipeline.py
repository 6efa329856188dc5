"""The evaluate-only pipeline's resources: the record function, its role, the pipeline's role
and the pipeline `<pipeline name>-evaluate` (decision 0017).

`EvaluatePipeline(scope, id, ...)` adds them beside the training pipeline, reusing its validate
and prepare-evaluation functions and the training job role (which already pulls the evaluation
image). The record function runs `lambdas.record_evaluation.handler`; the TrainingStack adds this
construct to every environment.
"""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline.config import EnvironmentConfig
from pipeline.definition_cache import evaluate_pipeline_definition
from pipeline.evaluate_pipeline import evaluate_pipeline_name
from stacks.functions import (
    BASELINES_PREFIX,
    RUNS_PREFIX,
    FunctionSpec,
    PipelineFunctions,
    update_without_approval,
)
from stacks.iam_statements import allow, default_policy
from stacks.nag import acknowledge, wildcard_resource
from stacks.training_roles import SAGEMAKER

RECORD_EVALUATION = FunctionSpec(
    handler="lambdas.record_evaluation.handler",
    description="nova-sft evaluate pipeline step: record the evaluation's score",
    memory_mb=1769,  # one vCPU: gunzip of the evaluation's output archive streamed from S3
    timeout=cdk.Duration.minutes(10),
)


class EvaluatePipeline(Construct):
    """The record function (`record`), the pipeline's role (`role`) and the pipeline
    (`pipeline`)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        functions: PipelineFunctions,
        training_role: iam.IRole,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        cache_dir: Path | None,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        versions = stack.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{config.model_package_group_name}/*",
        )
        runs = artifacts_bucket.arn_for_objects(f"{RUNS_PREFIX}*")
        baselines = artifacts_bucket.arn_for_objects(f"{BASELINES_PREFIX}*")
        self.record = functions.add_function(
            "RecordEvaluation",
            RECORD_EVALUATION,
            [
                allow(["s3:ListBucket"], artifacts_bucket.bucket_arn),
                # Read the evaluation's output and the baselines; write the statistics report
                # under runs/ and the baseline score under baselines/.
                allow(["s3:GetObject", "s3:PutObject"], runs, baselines),
                allow(["kms:Decrypt", "kms:GenerateDataKey"], key.key_arn),
                # Read the checkpoint's package (and its parent's); record the score on it as
                # metadata, never approving it.
                allow(["sagemaker:DescribeModelPackage"], versions),
                update_without_approval(versions),
            ],
            list_packages=True,
        )
        for resource, reason in (
            (runs, "Evaluation outputs and reports live under per-run keys below runs/."),
            (baselines, "Baseline scores are kept under per-task keys below baselines/."),
            (versions, "Versions of this environment's group only; SageMaker numbers them."),
        ):
            acknowledge(
                default_policy(_role(self.record)), wildcard_resource(self, resource), reason
            )
        self.role = self._pipeline_role(stack, functions, training_role)
        document = evaluate_pipeline_definition(
            config,
            {
                "execution_role_arn": training_role.role_arn,
                "validate_function_arn": functions.validate.function_arn,
                "prepare_evaluation_function_arn": functions.prepare_evaluation.function_arn,
                "record_evaluation_function_arn": self.record.function_arn,
                "artifacts_bucket": artifacts_bucket.bucket_name,
                "kms_key_arn": key.key_arn,
            },
            cache_dir=cache_dir,
        )
        self.pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=evaluate_pipeline_name(config),
            pipeline_description=(
                "Scores the Nova 2 Lite base model or a checkpoint on an evaluation task, "
                "without training"
            ),
            role_arn=self.role.role_arn,
            pipeline_definition={"PipelineDefinitionBody": stack.to_json_string(document)},
        )
        self.pipeline.node.add_dependency(self.role)

    def _pipeline_role(
        self, stack: cdk.Stack, functions: PipelineFunctions, training_role: iam.IRole
    ) -> iam.Role:
        role = iam.Role(
            self,
            "Role",
            assumed_by=iam.ServicePrincipal(SAGEMAKER),
            description="Execution role of the Nova evaluate-only SageMaker pipeline",
        )
        jobs = stack.format_arn(service="sagemaker", resource="training-job", resource_name="*")
        for statement in (
            # Run the evaluation job (a training job); Pipelines tags the jobs it starts.
            allow(
                [
                    "sagemaker:CreateTrainingJob",
                    "sagemaker:DescribeTrainingJob",
                    "sagemaker:StopTrainingJob",
                    "sagemaker:AddTags",
                ],
                jobs,
            ),
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[training_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
            ),
            allow(
                ["lambda:InvokeFunction"],
                functions.validate.function_arn,
                functions.prepare_evaluation.function_arn,
                self.record.function_arn,
            ),
        ):
            role.add_to_principal_policy(statement)
        acknowledge(
            default_policy(role),
            wildcard_resource(stack, jobs),
            "Pipelines name each evaluation job at run time; the ARN is limited to training "
            "jobs of this account and region.",
        )
        return role


def _role(function: cdk.aws_lambda.Function) -> iam.IRole:
    if function.role is None:  # pragma: no cover - add_function always gives a role
        raise ValueError(f"{function.node.path} has no role")
    return function.role

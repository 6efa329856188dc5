"""The stateless half of an environment: roles, functions, the pipeline and its notifications.

Everything here can be replaced by a deployment except the model package group (the registry of
checkpoints), which is retained and has a pinned logical ID like the DataStack's resources.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline.config import EnvironmentConfig, ToolchainConfig
from pipeline.definition_cache import (
    DEFAULT_CACHE_DIR,
    DEFINITION_CACHE_CONTEXT,
    pipeline_definition,
)
from stacks.data_stack import DataExports
from stacks.evaluate_pipeline import EvaluatePipeline
from stacks.functions import PipelineFunctions
from stacks.notifications import ApprovalNotifications
from stacks.serving import CheckpointServing
from stacks.smoke_access import SmokeTestRole, toolchain_bus_arn
from stacks.tracking import (
    REGISTER_ACTIONS,
    TRAINING_ACTIONS,
    TrackingServer,
    grant_logging,
    tracking_arn,
)
from stacks.training_roles import pipeline_role, training_job_role

GROUP_LOGICAL_ID = "CheckpointsGroup"
# CloudFormation cannot update a group's description, and the group's name is fixed: a
# description that followed configuration would one day force a replacement that fails (the name
# is taken by the retained group). So it is the same text in every environment, for good.
GROUP_DESCRIPTION = "Nova 2 Lite SFT checkpoints: one version per pipeline run"


def definition_cache_dir(scope: Construct) -> Path | None:
    """The folder that `pipeline_definition` caches in: context `nova-sft:definition-cache`.

    Default `.cache/pipeline-definitions` in the project; "false" (or false) turns caching off:
    `cdk synth -c nova-sft:definition-cache=false`.
    """
    value = scope.node.try_get_context(DEFINITION_CACHE_CONTEXT)
    if value is None:
        return DEFAULT_CACHE_DIR
    if value is False or str(value).lower() == "false":
        return None
    return Path(str(value))


class TrainingStack(cdk.Stack):
    """Roles, the three functions, the model package group, the pipeline and notifications.

    `data` names the DataStack's exports (buckets and key); deploy this stack after it.
    `toolchain`, when given (default None: deployed by hand), adds `smoke_test`, the role through
    which the toolchain checks the deployed pipeline, and forwards the group's state changes to
    the toolchain account's default event bus.

    Attributes: `training_role` (the SageMaker execution role of the training jobs),
    `pipeline_role`, `functions` (`PipelineFunctions`), `model_package_group`, `pipeline`,
    `evaluate_pipeline` (`EvaluatePipeline`: the record function and the evaluate-only pipeline),
    `notifications` (`ApprovalNotifications`), `serving` (`CheckpointServing` or None),
    `smoke_test` (`SmokeTestRole` or None), `tracking_arn` (the MLflow tracking server's ARN,
    None when tracking is off) and `tracking_server` (`TrackingServer` when this stack creates
    it, else None).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        data: DataExports,
        toolchain: ToolchainConfig | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"nova-sft {config.name}: SageMaker pipeline, functions and roles",
            termination_protection=config.termination_protection,
            **kwargs,
        )
        # The DataStack's resources, through its named exports.
        data_bucket = s3.Bucket.from_bucket_attributes(
            self, "DataBucket", bucket_arn=data.data_bucket_arn, bucket_name=data.data_bucket_name
        )
        artifacts_bucket = s3.Bucket.from_bucket_attributes(
            self,
            "ArtifactsBucket",
            bucket_arn=data.artifacts_bucket_arn,
            bucket_name=data.artifacts_bucket_name,
        )
        key = kms.Key.from_key_arn(self, "DataKey", data.key_arn)

        self.training_role = training_job_role(self, data_bucket, artifacts_bucket, key)
        self.functions = PipelineFunctions(
            self,
            "Functions",
            data_bucket=data_bucket,
            artifacts_bucket=artifacts_bucket,
            key=key,
            model_package_group_name=config.model_package_group_name,
            log_retention_days=config.log_retention_days,
            retain_logs=config.termination_protection,
        )
        self.pipeline_role = pipeline_role(self, self.training_role, self.functions)
        self._tracking(config, artifacts_bucket, key)

        self.model_package_group = sagemaker.CfnModelPackageGroup(
            self,
            "CheckpointsGroup",
            model_package_group_name=config.model_package_group_name,
            model_package_group_description=GROUP_DESCRIPTION,
        )
        # The registry is the lineage of every checkpoint (each points to an escrow checkpoint
        # that only a new training run could recreate): keep it when the stack goes.
        self.model_package_group.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        self.model_package_group.override_logical_id(GROUP_LOGICAL_ID)

        self.pipeline = self._pipeline(config, data_bucket, artifacts_bucket, key)
        # Scores the base model or a registered checkpoint without training (decision 0017).
        self.evaluate_pipeline = EvaluatePipeline(
            self,
            "EvaluatePipeline",
            config=config,
            functions=self.functions,
            training_role=self.training_role,
            artifacts_bucket=artifacts_bucket,
            key=key,
            cache_dir=definition_cache_dir(self),
        )
        self.notifications = ApprovalNotifications(
            self,
            "Notifications",
            model_package_group_names=[config.model_package_group_name],
            rule_name=f"{config.pipeline_name}-checkpoint-changes",
        )
        self.serving = self._serving(config, key)
        self.smoke_test: SmokeTestRole | None = None
        if toolchain is not None:
            self.smoke_test = SmokeTestRole(
                self, "SmokeTest", config=config, toolchain_account=toolchain.account
            )
            self._forward_to_toolchain(toolchain)
        self._outputs(config)

    def _serving(self, config: EnvironmentConfig, key: kms.IKey) -> CheckpointServing | None:
        # Approved checkpoints served on Bedrock, when the environment asks for it.
        if not config.serving.enabled:
            return None
        return CheckpointServing(
            self,
            "Serving",
            config=config,
            key=key,
            topic=self.notifications.topic,
            topic_key=self.notifications.key,
        )

    def _forward_to_toolchain(self, toolchain: ToolchainConfig) -> None:
        # The team watches every stage's checkpoints in one place: the same events go to the
        # toolchain account's default bus, whose policy accepts them (ToolchainStack).
        bus = events.EventBus.from_event_bus_arn(
            self, "ToolchainBus", toolchain_bus_arn(toolchain, self.partition)
        )
        self.notifications.rule.add_target(targets.EventBus(bus))

    def _tracking(
        self, config: EnvironmentConfig, artifacts_bucket: s3.IBucket, key: kms.IKey
    ) -> None:
        # Experiment tracking (stacks/tracking.py): nothing at all when cdk.json says "off".
        self.tracking_server: TrackingServer | None
        self.tracking_arn, self.tracking_server = tracking_arn(
            self, config=config, artifacts_bucket=artifacts_bucket, key=key
        )
        if self.tracking_arn is not None:
            grant_logging(self.training_role, self.tracking_arn, TRAINING_ACTIONS)
            register_role = self.functions.register.role
            if register_role is None:  # every function here is built with its own role
                raise ValueError("the register function has no role to grant tracking to")
            grant_logging(register_role, self.tracking_arn, REGISTER_ACTIONS)
            cdk.CfnOutput(
                self,
                "MlflowTrackingServerArn",
                value=self.tracking_arn,
                description="Training runs and registrations log to this MLflow tracking server",
            )

    # -- pipeline ---------------------------------------------------------------------------------

    def _pipeline(
        self,
        config: EnvironmentConfig,
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
    ) -> sagemaker.CfnPipeline:
        references = {
            "role_arn": self.pipeline_role.role_arn,
            "execution_role_arn": self.training_role.role_arn,
            "validate_function_arn": self.functions.validate.function_arn,
            "prepare_function_arn": self.functions.prepare.function_arn,
            "register_function_arn": self.functions.register.function_arn,
            "prepare_evaluation_function_arn": self.functions.prepare_evaluation.function_arn,
            "artifacts_bucket": artifacts_bucket.bucket_name,
            "data_bucket": data_bucket.bucket_name,
            "kms_key_arn": key.key_arn,
        }
        if self.tracking_arn is not None:
            references["tracking_arn"] = self.tracking_arn
        document = pipeline_definition(config, references, cache_dir=definition_cache_dir(self))
        # The references are CDK tokens inside strings; to_json_string turns them back into
        # CloudFormation references (Fn::Join), resolved at deploy time.
        body = self.to_json_string(document)
        pipeline = sagemaker.CfnPipeline(
            self,
            "Pipeline",
            pipeline_name=config.pipeline_name,
            pipeline_description=(
                "Fine-tunes Amazon Nova 2 Lite (SFT, LoRA or full rank); each run can start "
                "from an earlier run's checkpoint"
            ),
            role_arn=self.pipeline_role.role_arn,
            # A plain dict: the generated property class would serialize a wrong key name.
            pipeline_definition={"PipelineDefinitionBody": body},
        )
        # A run started right after deployment must find the role's permissions in place.
        pipeline.node.add_dependency(self.pipeline_role)
        pipeline.node.add_dependency(self.model_package_group)
        return pipeline

    def _outputs(self, config: EnvironmentConfig) -> None:
        cdk.CfnOutput(self, "PipelineName", value=config.pipeline_name)
        cdk.CfnOutput(
            self,
            "PipelineArn",
            value=self.format_arn(
                service="sagemaker", resource="pipeline", resource_name=config.pipeline_name
            ),
        )
        cdk.CfnOutput(
            self,
            "ModelPackageGroupName",
            value=config.model_package_group_name,
            description="Every run registers its checkpoint here as a new version",
        )
        cdk.CfnOutput(
            self,
            "NotificationTopicArn",
            value=self.notifications.topic.topic_arn,
            description="Subscribe to hear of new checkpoints and approval changes",
        )
        cdk.CfnOutput(
            self,
            "TrainingRoleArn",
            value=self.training_role.role_arn,
            description="The SageMaker execution role of the training jobs",
        )

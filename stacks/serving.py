"""Serve approved checkpoints on Amazon Bedrock: the import role, the state machine and the rule.

`CheckpointServing` is built by the TrainingStack when the environment's `serving.deploy` is
`on_approval` (pipeline/serving_config.py). Its state machine (stacks/serving_definition.py)
imports an approved checkpoint with CreateCustomModel, deploys it on demand and records both on
the model package; it takes a rejected one down when configured (docs/decisions/0019).
"""

from __future__ import annotations

import json

import aws_cdk as cdk
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_logs as logs
from aws_cdk import aws_sns as sns
from aws_cdk import aws_stepfunctions as sfn
from constructs import Construct

from pipeline.config import EnvironmentConfig
from pipeline.serving_config import state_machine_name
from stacks.functions import RETENTION
from stacks.iam_statements import allow, default_policy
from stacks.nag import acknowledge, wildcard_resource
from stacks.notifications import MODEL_PACKAGE_STATE_CHANGE
from stacks.serving_definition import ServingInputs, serving_definition

BEDROCK = "bedrock.amazonaws.com"
# The model package state changes that start the state machine.
SERVED_STATUSES = ("Approved", "Rejected")


class CheckpointServing(Construct):
    """The import role (`import_role`), the state machine (`state_machine`, named
    `nova-sft-<env>-serving`) and the rule (`rule`) that starts it on approval changes of the
    environment's group. `key` is the data key (the custom models' key); `topic` (encrypted
    with `topic_key`) receives failures."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        key: kms.IKey,
        topic: sns.ITopic,
        topic_key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        self.import_role = self._import_role(stack, key)
        self.log_group = logs.LogGroup(
            self,
            "Logs",
            retention=RETENTION[config.log_retention_days],
            # The data key, whose policy lets CloudWatch Logs of this account use it (DataStack).
            encryption_key=key,
            removal_policy=(
                cdk.RemovalPolicy.RETAIN
                if config.termination_protection
                else cdk.RemovalPolicy.DESTROY
            ),
        )
        definition = serving_definition(
            ServingInputs(
                environment=config.name,
                group_name=config.model_package_group_name,
                import_role_arn=self.import_role.role_arn,
                key_arn=key.key_arn,
                topic_arn=topic.topic_arn,
                serving=config.serving,
            )
        )
        self.state_machine = sfn.StateMachine(
            self,
            "StateMachine",
            state_machine_name=state_machine_name(config.name),
            state_machine_type=sfn.StateMachineType.STANDARD,
            # json.dumps, not to_json_string: that one drops `"ResultPath": null` (keep the
            # input, discard the result), which changes what the machine does. The ARNs are
            # tokens inside strings, which CDK resolves in any string.
            definition_body=sfn.DefinitionBody.from_string(json.dumps(definition)),
            logs=sfn.LogOptions(destination=self.log_group, level=sfn.LogLevel.ALL),
            tracing_enabled=True,
        )
        self._grant(stack, config, key, topic, topic_key)
        self.rule = events.Rule(
            self,
            "ApprovalRule",
            description=f"Serve or take down checkpoints of {config.model_package_group_name}",
            event_pattern=events.EventPattern(
                source=["aws.sagemaker"],
                detail_type=[MODEL_PACKAGE_STATE_CHANGE],
                detail={
                    "ModelPackageGroupName": [config.model_package_group_name],
                    "ModelApprovalStatus": list(SERVED_STATUSES),
                },
            ),
            targets=[targets.SfnStateMachine(self.state_machine)],
        )

    def _import_role(self, stack: cdk.Stack, key: kms.IKey) -> iam.Role:
        # Bedrock reads the checkpoint from the escrow bucket on this account's behalf only.
        role = iam.Role(
            self,
            "ImportRole",
            assumed_by=iam.ServicePrincipal(
                BEDROCK, conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="Bedrock reads this account's escrow checkpoints to import them",
        )
        escrow = f"arn:{stack.partition}:s3:::customer-escrow-{stack.account}*"
        for statement in (
            allow(["s3:ListBucket"], escrow),
            allow(["s3:GetObject"], f"{escrow}/*"),
            # The custom model is encrypted with the environment's data key.
            allow(["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], key.key_arn),
        ):
            role.add_to_principal_policy(statement)
        reason = (
            "The escrow bucket's name is customer-escrow-<account>-smtj-<id>, made by SageMaker "
            "per training job: only a prefix names them, and only this account's (NOVA_FACTS 4)"
        )
        for resource in (escrow, f"{escrow}/*"):
            acknowledge(default_policy(role), wildcard_resource(self, resource), reason)
        return role

    def _grant(
        self,
        stack: cdk.Stack,
        config: EnvironmentConfig,
        key: kms.IKey,
        topic: sns.ITopic,
        topic_key: kms.IKey,
    ) -> None:
        role = self.state_machine.role
        packages = stack.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{config.model_package_group_name}/*",
        )
        models = stack.format_arn(service="bedrock", resource="custom-model", resource_name="*")
        deployments = stack.format_arn(
            service="bedrock", resource="custom-model-deployment", resource_name="*"
        )
        statements = [
            allow(["sagemaker:DescribeModelPackage"], packages),
            # Records what was served; never sets the approval status (the condition refuses an
            # Approved one, as for every role of the stacks).
            iam.PolicyStatement(
                actions=["sagemaker:UpdateModelPackage"],
                resources=[packages],
                conditions={
                    "StringNotEqualsIfExists": {"sagemaker:ModelApprovalStatus": "Approved"}
                },
            ),
            # Import, look up and delete the custom models this machine names; tag them on create.
            allow(
                [
                    "bedrock:CreateCustomModel",
                    "bedrock:GetCustomModel",
                    "bedrock:DeleteCustomModel",
                    "bedrock:TagResource",
                ],
                models,
            ),
            # A deployment is created from a model: the request names both.
            allow(["bedrock:CreateCustomModelDeployment"], deployments, models),
            allow(
                ["bedrock:GetCustomModelDeployment", "bedrock:DeleteCustomModelDeployment"],
                deployments,
            ),
            # Bedrock assumes the import role to read the checkpoint.
            iam.PolicyStatement(
                actions=["iam:PassRole"],
                resources=[self.import_role.role_arn],
                conditions={"StringEquals": {"iam:PassedToService": BEDROCK}},
            ),
            # Bedrock encrypts the custom model with the data key, through a grant it creates.
            iam.PolicyStatement(
                actions=[
                    "kms:DescribeKey",
                    "kms:CreateGrant",
                    "kms:GenerateDataKey",
                    "kms:Decrypt",
                ],
                resources=[key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"bedrock.{stack.region}.amazonaws.com"}
                },
            ),
        ]
        if config.serving.take_down_superseded:
            # List this environment's deployments (a list action takes no resource) and read
            # each one's package from its tag.
            statements.append(allow(["bedrock:ListCustomModelDeployments"], "*"))
            statements.append(allow(["bedrock:ListTagsForResource"], deployments))
        for statement in statements:
            role.add_to_principal_policy(statement)
        # Publish failures to the encrypted topic (its own key, used only through SNS).
        role.add_to_principal_policy(allow(["sns:Publish"], topic.topic_arn))
        role.add_to_principal_policy(
            iam.PolicyStatement(
                actions=["kms:GenerateDataKey", "kms:Decrypt"],
                resources=[topic_key.key_arn],
                conditions={
                    "StringEquals": {"kms:ViaService": f"sns.{stack.region}.amazonaws.com"}
                },
            )
        )
        policy = default_policy(role)
        for resource, reason in (
            (
                packages,
                "Every version of this environment's group; versions are numbered at run time",
            ),
            (
                models,
                "Custom models get an ARN with a service-chosen id; the machine names them by name",
            ),
            (deployments, "Deployments get an ARN with a service-chosen id; named by the machine"),
        ):
            acknowledge(policy, wildcard_resource(self, resource), reason)
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "CDK's grants for the log delivery and X-Ray tracing of a state machine, and "
            "bedrock:ListCustomModelDeployments: those APIs take no resource (Step Functions' "
            "documented logging and tracing policy; a list action)",
        )

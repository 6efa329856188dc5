"""What links a stage to the toolchain across accounts: the smoke step's roles, the event bus.

After the toolchain deploys a stage into its account, a CodeBuild project in the toolchain
account runs `pipeline/smoke.py` with the credentials of a role in the stage's account. The two
roles have fixed names, derived here from the environment's name, because each side must name
the other across accounts and CDK Pipelines cannot pass references between them.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from constructs import Construct

from pipeline.config import CONTEXT_KEY, EnvironmentConfig, ToolchainConfig
from pipeline.serving_config import state_machine_name
from stacks.iam_statements import allow


def smoke_test_role_name(env: str) -> str:
    """The role in environment `env`'s account that the smoke step assumes."""
    return f"{CONTEXT_KEY}-{env}-smoke-test"


def smoke_runner_role_name(env: str) -> str:
    """The CodeBuild role in the toolchain account that runs `env`'s smoke step."""
    return f"{CONTEXT_KEY}-toolchain-smoke-{env}"


def smoke_test_role_arn(env: EnvironmentConfig, partition: str) -> str:
    """The smoke test role's ARN, for the toolchain; `env` must name its account."""
    if env.account is None:
        raise ValueError(f"environment {env.name!r} has no account: the toolchain cannot reach it")
    return f"arn:{partition}:iam::{env.account}:role/{smoke_test_role_name(env.name)}"


def toolchain_bus_arn(toolchain: ToolchainConfig, partition: str) -> str:
    """The toolchain account's default event bus, where the stages forward their approvals."""
    return f"arn:{partition}:events:{toolchain.region}:{toolchain.account}:event-bus/default"


class SmokeTestRole(Construct):
    """A role that the toolchain's smoke runner for this environment may assume (`role`).

    It may describe this environment's SageMaker pipeline and model package group, and its
    serving state machine when it serves checkpoints, nothing else. Only the runner role
    `smoke_runner_role_name(env)` of `toolchain_account` may assume it: the account is the
    principal, and the condition names the one role in it.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        toolchain_account: str,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        runner = stack.format_arn(
            service="iam",
            region="",
            account=toolchain_account,
            resource="role",
            resource_name=smoke_runner_role_name(config.name),
        )
        self.role = iam.Role(
            self,
            "Role",
            role_name=smoke_test_role_name(config.name),
            description=f"Lets the toolchain's smoke step describe pipeline {config.pipeline_name}",
            assumed_by=iam.AccountPrincipal(toolchain_account).with_conditions(
                {"ArnEquals": {"aws:PrincipalArn": runner}}
            ),
            max_session_duration=cdk.Duration.hours(1),
        )
        pipeline_arn = stack.format_arn(
            service="sagemaker", resource="pipeline", resource_name=config.pipeline_name
        )
        group_arn = stack.format_arn(
            service="sagemaker",
            resource="model-package-group",
            resource_name=config.model_package_group_name,
        )
        self.role.add_to_principal_policy(allow(["sagemaker:DescribePipeline"], pipeline_arn))
        self.role.add_to_principal_policy(allow(["sagemaker:DescribeModelPackageGroup"], group_arn))
        if config.serving.enabled:
            machine_arn = stack.format_arn(
                service="states",
                resource="stateMachine",
                resource_name=state_machine_name(config.name),
                arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
            )
            self.role.add_to_principal_policy(allow(["states:DescribeStateMachine"], machine_arn))

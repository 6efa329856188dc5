"""The toolchain: a CDK Pipelines CodePipeline that tests, synthesizes and deploys each stage.

On every push to the configured branch: the source comes through a CodeStar connection; the
synth step runs `make test` exactly as a developer does (its synth leaves the cloud assembly in
cdk.out that the stages deploy); the pipeline updates itself (self-mutation); it publishes the
assets; then it deploys the same `NovaSftStage` to each environment in `ToolchainConfig.stages`
order, into that environment's account and region, waiting for a manual approval before the
stages in `manual_approval_before`. After each stage
deploys, a smoke step runs `pipeline/smoke.py` against the deployed SageMaker pipeline with a
read-only role of that account (`stacks/smoke_access.py`).
docs/decisions/0008-toolchain-and-promotion.md explains the choices.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_codebuild as codebuild
from aws_cdk import aws_codepipeline as codepipeline
from aws_cdk import aws_iam as iam
from aws_cdk import pipelines
from constructs import Construct

from pipeline.config import CONTEXT_KEY, EnvironmentConfig, ToolchainConfig
from stacks.cli_versions import CliVersions
from stacks.iam_statements import allow
from stacks.notifications import MODEL_PACKAGE_STATE_CHANGE, ApprovalNotifications
from stacks.smoke_access import smoke_runner_role_name, smoke_test_role_arn, toolchain_bus_arn
from stacks.stage import NovaSftStage
from stacks.toolchain_findings import acknowledge_artifact_bucket, acknowledge_toolchain_findings

# CodeBuild's Ubuntu image with the project's Python (3.11) and Node.js (20).
BUILD_IMAGE = codebuild.LinuxBuildImage.STANDARD_7_0
RUNTIME_VERSIONS = {"python": "3.11", "nodejs": "20"}
# What the synth step runs: the developer's command, nothing else. `make test` runs `make synth`
# (a fresh cdk.out) before its scans, which only read it: cdk.out is the assembly the stages deploy.
SYNTH_COMMANDS = ("make test",)
SMOKE_VENV = ".smoke-venv"  # inside the build's checkout, which CodeBuild discards


class ToolchainStack(cdk.Stack):
    """The toolchain in its own account and region (`config`), deploying `stages` in order.

    `stages` are environments named by `config.stages` (all of them, or some for a partial
    synth), in that order, each with an account.
    `versions` pins the CDK CLI of self-mutation and the cdk-assets CLI of asset publishing.
    Attributes: `pipeline` (`pipelines.CodePipeline`, built), `stages` (`NovaSftStage` by
    environment name), `smoke_runners` (the smoke step's CodeBuild role by environment name),
    `approvals` (`ApprovalNotifications` for every stage's model package group, fed by the
    stages through this account's default event bus).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: ToolchainConfig,
        stages: Sequence[EnvironmentConfig],
        versions: CliVersions,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            env=cdk.Environment(account=config.account, region=config.region),
            description="nova-sft toolchain: tests, synthesizes and deploys every stage",
            termination_protection=True,
            **kwargs,
        )
        names = [env.name for env in stages]
        if [name for name in config.stages if name in names] != names:
            raise ValueError(
                f"stages {names} are not the toolchain's stages {list(config.stages)} in order"
            )
        self.source = pipelines.CodePipelineSource.connection(
            config.repository,
            config.branch,
            connection_arn=config.connection_arn,
            trigger_on_push=True,
        )
        self.pipeline = pipelines.CodePipeline(
            self,
            "Pipeline",
            pipeline_name=config.pipeline_name,
            pipeline_type=codepipeline.PipelineType.V2,
            synth=pipelines.ShellStep(
                "Synth",
                input=self.source,
                commands=list(SYNTH_COMMANDS),
                primary_output_directory="cdk.out",
            ),
            self_mutation=True,
            cross_account_keys=True,
            enable_key_rotation=True,
            cli_version=versions.cdk_cli,
            cdk_assets_cli_version=versions.cdk_assets,
            # One asset project for the one Lambda asset, instead of a project per asset.
            publish_assets_in_parallel=False,
            # Nothing is bundled in Docker (decision 0005): no privileged builds.
            docker_enabled_for_synth=False,
            docker_enabled_for_self_mutation=False,
            code_build_defaults=pipelines.CodeBuildOptions(
                build_environment=codebuild.BuildEnvironment(
                    build_image=BUILD_IMAGE, privileged=False
                ),
                partial_build_spec=codebuild.BuildSpec.from_object(
                    {"phases": {"install": {"runtime-versions": RUNTIME_VERSIONS}}}
                ),
            ),
        )
        self.stages: dict[str, NovaSftStage] = {}
        self.smoke_runners: dict[str, iam.Role] = {}
        for env in stages:
            stage = NovaSftStage(self, env.name, config=env, toolchain=config)
            self.stages[env.name] = stage
            pre: list[pipelines.Step] = []
            if env.name in config.manual_approval_before:
                pre.append(
                    pipelines.ManualApprovalStep(
                        "Approve",
                        comment=(
                            f"Deploy this commit to {env.name} (account {env.account}, "
                            f"{env.region})? It has passed every earlier stage's smoke step."
                        ),
                    )
                )
            self.pipeline.add_stage(stage, pre=pre, post=[self._smoke_step(env)])
        self.approvals = ApprovalNotifications(
            self,
            "Approvals",
            model_package_group_names=[env.model_package_group_name for env in stages],
            rule_name=f"{config.pipeline_name}-checkpoint-changes",
        )
        self._accept_approval_events(config, stages)
        cdk.CfnOutput(
            self,
            "ApprovalsTopicArn",
            value=self.approvals.topic.topic_arn,
            description="Subscribe to hear of every stage's new checkpoints and approvals",
        )
        self.pipeline.build_pipeline()
        self._allow_connection_use(config.connection_arn)
        acknowledge_toolchain_findings(self)
        acknowledge_artifact_bucket(self.pipeline.pipeline.artifact_bucket)

    def _allow_connection_use(self, connection_arn: str) -> None:
        # CDK grants `codestar-connections:UseConnection` whatever the ARN. IAM only applies an
        # action to a resource of the same service prefix, and connections created since the
        # rename (`aws codeconnections create-connection`, the console since July 2024) are
        # `arn:aws:codeconnections:...`: grant the action of the ARN's own prefix too.
        service = connection_arn.split(":")[2]  # codeconnections or codestar-connections
        source = self.pipeline.pipeline.node.find_child("Source")
        roles = [c for c in source.node.find_all() if isinstance(c, iam.Role)]
        if not roles:  # pragma: no cover - CDK Pipelines gives its source action a role
            raise ValueError(f"{source.node.path} has no action role to grant the connection")
        for role in roles:
            role.add_to_principal_policy(allow([f"{service}:UseConnection"], connection_arn))

    def _accept_approval_events(
        self, config: ToolchainConfig, stages: Sequence[EnvironmentConfig]
    ) -> None:
        # Each stage account may put model package state changes, and nothing else, on this
        # account's default bus; `approvals` publishes them to the team's topic.
        bus = toolchain_bus_arn(config, self.partition)
        for env in stages:
            # A plain CfnResource: the generated CfnEventBusPolicy class prints a deprecation
            # warning for its `principal` property on every synth, even when it is not set.
            cdk.CfnResource(
                self,
                f"AcceptApprovalEvents-{env.name}",
                type="AWS::Events::EventBusPolicy",
                properties={
                    "EventBusName": "default",
                    "StatementId": f"{CONTEXT_KEY}-{env.name}-approval-events",
                    "Statement": {
                        "Effect": "Allow",
                        "Principal": {"AWS": f"arn:{self.partition}:iam::{env.account}:root"},
                        "Action": "events:PutEvents",
                        "Resource": bus,
                        "Condition": {
                            "StringEquals": {
                                "events:source": "aws.sagemaker",
                                "events:detail-type": MODEL_PACKAGE_STATE_CHANGE,
                            }
                        },
                    },
                },
            )

    def _smoke_step(self, env: EnvironmentConfig) -> pipelines.CodeBuildStep:
        target = smoke_test_role_arn(env, self.partition)
        runner = iam.Role(
            self,
            f"SmokeRunner-{env.name}",
            # A fixed name: the stage's smoke test role trusts exactly this role.
            role_name=smoke_runner_role_name(env.name),
            assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"),
            description=f"Runs the smoke step of {CONTEXT_KEY} {env.name}",
        )
        runner.add_to_principal_policy(allow(["sts:AssumeRole"], target))
        self.smoke_runners[env.name] = runner
        return pipelines.CodeBuildStep(
            "SmokeTest",
            input=self.source,
            role=runner,
            install_commands=[
                f"python3 -m venv {SMOKE_VENV}",
                # boto3 only, at the project's pinned version: the smoke script needs no more.
                f"{SMOKE_VENV}/bin/pip install --quiet --disable-pip-version-check "
                "-c constraints.txt boto3",
            ],
            commands=[
                f"{SMOKE_VENV}/bin/python -m pipeline.smoke --env {env.name} --role-arn {target}"
            ],
        )

"""Experiment tracking for one environment: SageMaker's managed MLflow, and who may log to it.

cdk.json's `tracking` (pipeline/config.py) is "off", "create" or an existing tracking server's
ARN. With "create" the TrainingStack makes a tracking server (`TrackingServer`) whose artifact
store is the artifacts bucket under `mlflow/`; with an ARN it uses that one. Either way the
training jobs' role and the register function's role get the `sagemaker-mlflow` actions they
need on that one server (`grant_logging`); with "off" nothing here is created or granted.
docs/decisions/0020-experiment-tracking.md explains the choice of a tracking server over an
MLflow app, its size and its cost.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from constructs import Construct

from pipeline.config import EnvironmentConfig
from stacks.iam_statements import allow, default_policy
from stacks.nag import acknowledge, wildcard_resource

SAGEMAKER = "sagemaker.amazonaws.com"
# Where the tracking server keeps run artifacts in the artifacts bucket.
ARTIFACT_PREFIX = "mlflow/"
SERVER_LOGICAL_ID = "TrackingServer"
# Small serves up to 25 users (SageMaker's guidance); this project logs a few runs a day.
SERVER_SIZE = "Small"

# What the training container logs (an experiment, a run, its curves and parameters), as far as
# MLflow's client does it for a training loop: unverified against the Nova container, whose
# calls are not documented. Each action exists in the Service Authorization Reference
# (tests/stacks/test_iam_conditions.py) with the resource type mlflow-tracking-server.
TRAINING_ACTIONS = (
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:SearchRuns",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:GetRun",
    "sagemaker-mlflow:UpdateRun",
    "sagemaker-mlflow:LogBatch",
    "sagemaker-mlflow:LogMetric",
    "sagemaker-mlflow:LogParam",
    "sagemaker-mlflow:SetTag",
)
# What lambdas.tracking calls from the register step: find or create the run, log a batch.
REGISTER_ACTIONS = (
    "sagemaker-mlflow:GetExperimentByName",
    "sagemaker-mlflow:CreateExperiment",
    "sagemaker-mlflow:SearchRuns",
    "sagemaker-mlflow:CreateRun",
    "sagemaker-mlflow:LogBatch",
)


class TrackingServer(Construct):
    """A SageMaker MLflow tracking server (`server`, with a pinned logical ID, retained) and the
    role through which it reads and writes its artifacts (`role`).

    The server's name is the environment's pipeline name; `arn` is its ARN (a token).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
    ) -> None:
        super().__init__(scope, construct_id)
        stack = cdk.Stack.of(self)
        artifacts = artifacts_bucket.arn_for_objects(f"{ARTIFACT_PREFIX}*")
        self.role = iam.Role(
            self,
            "Role",
            # Only SageMaker acting for this account may use it.
            assumed_by=iam.ServicePrincipal(
                SAGEMAKER, conditions={"StringEquals": {"aws:SourceAccount": stack.account}}
            ),
            description="The MLflow tracking server's access to its artifact store",
        )
        for statement in (
            allow(["s3:ListBucket", "s3:GetBucketLocation"], artifacts_bucket.bucket_arn),
            allow(["s3:GetObject", "s3:PutObject", "s3:DeleteObject"], artifacts),
            allow(["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"], key.key_arn),
        ):
            self.role.add_to_principal_policy(statement)
        acknowledge(
            default_policy(self.role),
            wildcard_resource(stack, artifacts),
            "MLflow names each run's artifact objects; the role is limited to the mlflow/ prefix.",
        )
        self.server = sagemaker.CfnMlflowTrackingServer(
            self,
            "Server",
            tracking_server_name=config.tracking_server_name,
            artifact_store_uri=artifacts_bucket.s3_url_for_object(ARTIFACT_PREFIX.rstrip("/")),
            role_arn=self.role.role_arn,
            tracking_server_size=SERVER_SIZE,
            automatic_model_registration=False,
        )
        # The experiments are the teams' record of every run: keep them when the stack goes.
        self.server.apply_removal_policy(cdk.RemovalPolicy.RETAIN)
        self.server.override_logical_id(SERVER_LOGICAL_ID)
        # The server checks its artifact store when it starts: the role's policy first.
        self.server.node.add_dependency(self.role)
        self.arn: str = self.server.attr_tracking_server_arn


def tracking_arn(
    scope: Construct,
    *,
    config: EnvironmentConfig,
    artifacts_bucket: s3.IBucket,
    key: kms.IKey,
) -> tuple[str | None, TrackingServer | None]:
    """The environment's tracking server ARN (None when tracking is off), and the server when
    this stack creates it (id `Tracking` under `scope`)."""
    if not config.tracking_enabled:
        return None, None
    if config.creates_tracking_server:
        server = TrackingServer(
            scope, "Tracking", config=config, artifacts_bucket=artifacts_bucket, key=key
        )
        return server.arn, server
    return config.tracking, None


def grant_logging(role: iam.IRole, arn: str, actions: tuple[str, ...]) -> None:
    """Let `role` call `actions` on the one tracking server `arn`."""
    role.add_to_principal_policy(allow(list(actions), arn))

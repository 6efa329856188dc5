"""The pipeline's Lambda functions, built from one code asset, each with its own role.

The asset is the repository's `lambdas/` folder and nothing else, packed so that `lambdas/` is a
top-level folder of the zip (the handlers import `from lambdas.x import y`). It is selected with
exclude patterns on the repository root: no bundling, so no Docker, and the asset hash changes
only when a file under `lambdas/` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from stacks.iam_statements import allow, default_policy
from stacks.nag import acknowledge, wildcard_resource
from stacks.scan_exceptions import skip_checkov

PROJECT_ROOT = Path(__file__).resolve().parent.parent

# Glob patterns, applied in order, the last match winning (as in .gitignore): drop everything at
# the top, take `lambdas/` back, then drop caches and hidden files wherever they are.
ASSET_EXCLUDE: tuple[str, ...] = (
    "*",
    "!lambdas",
    "!lambdas/**",
    "__pycache__",
    "*.pyc",
    ".*",
)

# Not the newest runtime CDK offers (3.14): the code is tested on Python 3.11, and 3.13 has a
# year of service behind it (docs/decisions/0005-stacks-and-iam.md).
RUNTIME = lambda_.Runtime.PYTHON_3_13

# Everything a run writes into the artifacts bucket (recipes, validation reports, job outputs)
# lives under this prefix, keyed by the pipeline execution.
RUNS_PREFIX = "runs/"
# Scores of the base model (and of checkpoints evaluated outside a run), per task and data: the
# register function reads them to compare a first checkpoint with its parent (decision 0017).
BASELINES_PREFIX = "baselines/"

# The IAM condition key that carries a model package's requested approval status, and the
# status no pipeline role may set (Service Authorization Reference: CreateModelPackage and
# UpdateModelPackage).
APPROVAL_STATUS_KEY = "sagemaker:ModelApprovalStatus"
APPROVED = "Approved"

# CloudWatch Logs retention periods that cdk.json may name (pipeline/config.py checks the value).
RETENTION: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


def lambda_code() -> lambda_.AssetCode:
    """The one code asset: `lambdas/` as a top-level folder, without caches or hidden files.

    Bind one returned object to every function of a stack: CDK then stages a single asset.
    """
    return lambda_.Code.from_asset(str(PROJECT_ROOT), exclude=list(ASSET_EXCLUDE))


@dataclass(frozen=True)
class FunctionSpec:
    """How one pipeline function is sized. Memory also buys CPU: 1769 MB is one full vCPU."""

    handler: str
    description: str
    memory_mb: int
    timeout: cdk.Duration


# A SageMaker Lambda step waits at most 10 minutes for its function, so longer timeouts would
# only let a function run on after its step has failed.
VALIDATE = FunctionSpec(
    handler="lambdas.validate_dataset.handler",
    description="nova-sft pipeline step: validate the training data before any job starts",
    memory_mb=1769,  # one vCPU: the validator is CPU-bound JSON parsing of a streamed file
    timeout=cdk.Duration.minutes(10),
)
PREPARE = FunctionSpec(
    handler="lambdas.prepare_recipe.handler",
    description="nova-sft pipeline step: render and store this run's training recipe",
    memory_mb=256,
    timeout=cdk.Duration.minutes(1),
)
REGISTER = FunctionSpec(
    handler="lambdas.register_checkpoint.handler",
    description="nova-sft pipeline step: read the job's manifest and register its checkpoint",
    memory_mb=1769,  # one vCPU: gunzip of a multi-GB output archive streamed from S3
    timeout=cdk.Duration.minutes(10),
)
PREPARE_EVALUATION = FunctionSpec(
    handler="lambdas.prepare_evaluation.handler",
    description="nova-sft pipeline step: find the job's checkpoint, write its evaluation recipe",
    memory_mb=1769,  # one vCPU: gunzip of the job's output archive until its manifest
    timeout=cdk.Duration.minutes(10),
)


class PipelineFunctions(Construct):
    """The validate, prepare, register and prepare-evaluation functions, their roles and logs.

    Attributes: `validate`, `prepare`, `register`, `prepare_evaluation` (`lambda_.Function`).
    Permissions, each function's own:
    - validate: read the data bucket; write reports under `runs/` of the artifacts bucket;
    - prepare: write recipes under `runs/` of the artifacts bucket; list and describe model
      packages of `model_package_group_name` (a checkpoint's technique is checked there);
    - register: read the artifacts bucket (job outputs, baselines); write the evaluation's
      statistics report under `runs/`; create (never as Approved), list and describe model
      packages of `model_package_group_name`;
    - prepare_evaluation: read the job's output archive under `runs/` and the evaluation data in
      the data bucket; write the evaluation recipe and data under `runs/`.
    Log groups are encrypted with `key`, kept `log_retention_days`, and removed with the stack
    unless `retain_logs`.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
        model_package_group_name: str,
        log_retention_days: int,
        retain_logs: bool,
    ) -> None:
        super().__init__(scope, construct_id)
        self._key = key
        self._retention = RETENTION[log_retention_days]
        self._log_removal = cdk.RemovalPolicy.RETAIN if retain_logs else cdk.RemovalPolicy.DESTROY
        code = lambda_code()
        self._code = code
        runs_objects = artifacts_bucket.arn_for_objects(f"{RUNS_PREFIX}*")

        self.validate = self._function(
            "ValidateDataset",
            VALIDATE,
            code,
            [
                # Read the dataset: a prefix may hold several files, so list, then get each.
                allow(["s3:ListBucket"], data_bucket.bucket_arn),
                allow(["s3:GetObject"], data_bucket.arn_for_objects("*")),
                # Write the run's validation report (valid or not) under runs/.
                allow(["s3:PutObject"], runs_objects),
                # Both buckets are encrypted with the key: decrypt the data, encrypt the report.
                allow(["kms:Decrypt", "kms:GenerateDataKey"], key.key_arn),
            ],
        )
        self.prepare = self._function(
            "PrepareRecipe",
            PREPARE,
            code,
            [
                # Write the run's rendered recipe under runs/, encrypted with the bucket's key.
                allow(["s3:PutObject"], runs_objects),
                allow(["kms:GenerateDataKey"], key.key_arn),
            ],
        )
        stack = cdk.Stack.of(self)
        group_arn = stack.format_arn(
            service="sagemaker",
            resource="model-package-group",
            resource_name=model_package_group_name,
        )
        # The versions of a group are named model-package/<group>/<version>.
        versions_arn = stack.format_arn(
            service="sagemaker",
            resource="model-package",
            resource_name=f"{model_package_group_name}/*",
        )
        self.register = self._function(
            "RegisterCheckpoint",
            REGISTER,
            code,
            [
                # List the bucket so that a missing output archive reads as 404, not 403.
                allow(["s3:ListBucket"], artifacts_bucket.bucket_arn),
                # Read the training job's output archive (job outputs live under runs/).
                allow(["s3:GetObject"], runs_objects),
                allow(["kms:Decrypt"], key.key_arn),
                # Check the group, register a checkpoint as a new version of it, read versions.
                allow(["sagemaker:DescribeModelPackageGroup"], group_arn),
                register_without_approval(group_arn, versions_arn),
                allow(["sagemaker:DescribeModelPackage"], group_arn, versions_arn),
            ],
        )
        self.prepare_evaluation = self._prepare_evaluation_function(
            code, data_bucket, artifacts_bucket, key
        )
        self._grant_evaluation_to_register(artifacts_bucket, key)
        # The prepare function reads the technique a checkpoint was trained with from this
        # group's versions (lambdas/registry/continuity.py), and nothing else of the registry.
        _role(self.prepare).add_to_principal_policy(
            allow(["sagemaker:DescribeModelPackage"], versions_arn)
        )
        self._allow_listing_packages(self.register, self.prepare)

        data_objects = data_bucket.arn_for_objects("*")
        for function, resource, reason in (
            (self.validate, data_objects, "A dataset is any object a run names in its bucket."),
            (self.validate, runs_objects, "Reports are written under per-run keys below runs/."),
            (self.prepare, runs_objects, "Recipes are written under per-run keys below runs/."),
            (
                self.prepare,
                versions_arn,
                "Versions of this environment's group only; SageMaker numbers them.",
            ),
            (self.register, runs_objects, "Job outputs are read from per-run keys below runs/."),
            (
                self.register,
                artifacts_bucket.arn_for_objects(f"{BASELINES_PREFIX}*"),
                "Baseline scores are read from per-task keys below baselines/.",
            ),
            (
                self.prepare_evaluation,
                runs_objects,
                "Job outputs are read, and recipes written, under per-run keys below runs/.",
            ),
            (
                self.prepare_evaluation,
                data_objects,
                "The evaluation data is any object a run names in the data bucket.",
            ),
            (
                self.register,
                versions_arn,
                "Versions of this environment's group only; SageMaker numbers them.",
            ),
        ):
            acknowledge(default_policy(_role(function)), wildcard_resource(self, resource), reason)

    def add_function(
        self,
        name: str,
        spec: FunctionSpec,
        statements: list[iam.PolicyStatement],
        *,
        list_packages: bool = False,
    ) -> lambda_.Function:
        """Another pipeline function from the same code asset, with its own role and logs
        (the evaluate-only pipeline's record function); `list_packages` lets it list model
        packages."""
        function = self._function(name, spec, self._code, statements)
        if list_packages:
            self._list_policy.attach_to_role(_role(function))
        return function

    def _prepare_evaluation_function(
        self,
        code: lambda_.Code,
        data_bucket: s3.IBucket,
        artifacts_bucket: s3.IBucket,
        key: kms.IKey,
    ) -> lambda_.Function:
        runs_objects = artifacts_bucket.arn_for_objects(f"{RUNS_PREFIX}*")
        return self._function(
            "PrepareEvaluation",
            PREPARE_EVALUATION,
            code,
            [
                # List both buckets so that a missing archive or data file reads as 404, not 403.
                allow(["s3:ListBucket"], artifacts_bucket.bucket_arn, data_bucket.bucket_arn),
                # Read the job's output archive (its manifest names the checkpoint) and the
                # evaluation data; write the evaluation recipe and the data's copy, all of the
                # run's files under runs/.
                allow(["s3:GetObject"], runs_objects, data_bucket.arn_for_objects("*")),
                allow(["s3:PutObject"], runs_objects),
                allow(["kms:Decrypt", "kms:GenerateDataKey"], key.key_arn),
            ],
        )

    def _grant_evaluation_to_register(self, artifacts_bucket: s3.IBucket, key: kms.IKey) -> None:
        """What the register function needs to record an evaluation (decision 0017): read the
        baselines, write the run's statistics report (ModelMetrics points at it)."""
        role = _role(self.register)
        role.add_to_principal_policy(
            allow(["s3:GetObject"], artifacts_bucket.arn_for_objects(f"{BASELINES_PREFIX}*"))
        )
        role.add_to_principal_policy(
            allow(["s3:PutObject"], artifacts_bucket.arn_for_objects(f"{RUNS_PREFIX}*"))
        )
        role.add_to_principal_policy(allow(["kms:GenerateDataKey"], key.key_arn))

    def _function(
        self,
        name: str,
        spec: FunctionSpec,
        code: lambda_.Code,
        statements: list[iam.PolicyStatement],
    ) -> lambda_.Function:
        role = iam.Role(
            self,
            f"{name}Role",
            assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
            description=f"{spec.description} (function role)",
        )
        for statement in statements:
            role.add_to_principal_policy(statement)
        log_group = logs.LogGroup(
            self,
            f"{name}Logs",
            retention=self._retention,
            encryption_key=self._key,
            removal_policy=self._log_removal,
        )
        function = lambda_.Function(
            self,
            name,
            code=code,
            handler=spec.handler,
            runtime=RUNTIME,
            # The code is pure Python: Graviton is cheaper per GB-second for the same work.
            architecture=lambda_.Architecture.ARM_64,
            memory_size=spec.memory_mb,
            timeout=spec.timeout,
            description=spec.description,
            role=role,
            log_group=log_group,
        )
        # Write to its own log group only (no managed policy with logs:* on every group).
        log_group.grant_write(role)
        self._acknowledge_runtime(function)
        self._skip_function_checks(function)
        return function

    def _allow_listing_packages(self, *functions: lambda_.Function) -> None:
        # ListModelPackages supports no resource-level permission (the Service Authorization
        # Reference lists no resource type for it), so it needs "*"; a policy of its own keeps
        # the acknowledgment narrow.
        policy = iam.Policy(
            self,
            "ListModelPackagesPolicy",
            statements=[allow(["sagemaker:ListModelPackages"], "*")],
        )
        self._list_policy = policy
        for function in functions:
            policy.attach_to_role(_role(function))
        acknowledge(
            policy,
            "AwsSolutions-IAM5[Resource::*]",
            "sagemaker:ListModelPackages has no resource-level permissions; the register "
            "function lists its group's versions to stay idempotent per training job, and the "
            "prepare function to find a checkpoint's technique.",
        )

    @staticmethod
    def _acknowledge_runtime(function: lambda_.Function) -> None:
        acknowledge(
            function,
            "AwsSolutions-L1",
            "Python 3.13: the code is tested on Python 3.11 and uses nothing newer, and 3.13 "
            "has a year of service behind it; docs/decisions/0005-stacks-and-iam.md.",
        )

    @staticmethod
    def _skip_function_checks(function: lambda_.Function) -> None:
        skip_checkov(
            function,
            "CKV_AWS_115",
            "No reserved concurrency: a new account's limit is 10, and reserving any would fail "
            "the deployment; the pipeline calls each function once per run.",
        )
        skip_checkov(
            function,
            "CKV_AWS_116",
            "No dead-letter queue: SageMaker invokes the function synchronously, and a failure "
            "fails the pipeline step with its reason; a DLQ applies to asynchronous calls only.",
        )
        skip_checkov(
            function,
            "CKV_AWS_117",
            "Not in a VPC: the function reaches only S3 and the SageMaker API, and the project "
            "deploys no VPC; its role limits what it can reach.",
        )
        skip_checkov(
            function,
            "CKV_AWS_272",
            "No code signing: the code asset is built by cdk synth from this repository and "
            "published by the deployment itself; there is no separate signing step to verify.",
        )


def update_without_approval(*resources: str) -> iam.PolicyStatement:
    """Allow `sagemaker:UpdateModelPackage` on `resources` for any approval status but Approved
    (metadata only: recording a score never approves)."""
    return iam.PolicyStatement(
        actions=["sagemaker:UpdateModelPackage"],
        resources=list(resources),
        conditions={"StringNotEqualsIfExists": {APPROVAL_STATUS_KEY: APPROVED}},
    )


def register_without_approval(*resources: str) -> iam.PolicyStatement:
    """Allow `sagemaker:CreateModelPackage` on `resources` for any approval status but Approved.

    Approving a checkpoint is a person's decision (`python -m pipeline approve`), never a side
    effect of starting a run. A request without the status registers PendingManualApproval,
    which the IfExists form lets through.
    """
    return iam.PolicyStatement(
        actions=["sagemaker:CreateModelPackage"],
        resources=list(resources),
        conditions={"StringNotEqualsIfExists": {APPROVAL_STATUS_KEY: APPROVED}},
    )


def _role(function: lambda_.Function) -> iam.IRole:
    if function.role is None:  # pragma: no cover - every function here is given a role
        raise ValueError(f"{function.node.path} has no role")
    return function.role

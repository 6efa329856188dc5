"""The two roles of the TrainingStack: the training jobs' execution role and the pipeline's.

Module-level functions rather than a Construct so that every resource keeps its id directly
under the stack (and so its logical ID): they take the stack and return the role they create.
"""

from __future__ import annotations

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3

from lambdas.recipe.evaluation_spec import NOVA_EVALUATION_IMAGE_REPOSITORY
from lambdas.recipe.spec import NOVA_SFT_IMAGE_ACCOUNTS, NOVA_SFT_IMAGE_REPOSITORY
from stacks.functions import RUNS_PREFIX, PipelineFunctions
from stacks.iam_statements import allow, default_policy
from stacks.nag import acknowledge, wildcard_resource

SAGEMAKER = "sagemaker.amazonaws.com"
# Where SageMaker training jobs write their logs and metrics.
TRAINING_LOG_GROUP = "/aws/sagemaker/TrainingJobs"
TRAINING_METRICS_NAMESPACE = "/aws/sagemaker/TrainingJobs"


def training_job_role(
    stack: cdk.Stack, data_bucket: s3.IBucket, artifacts_bucket: s3.IBucket, key: kms.IKey
) -> iam.Role:
    """The SageMaker execution role of the training jobs (`TrainingJobRole`) and its two policies.

    Created in `stack` with the ids `TrainingJobRole`, `TrainingJobImageLogin` and
    `TrainingJobMetrics`.
    """
    # Everything a run reads or writes in the artifacts bucket is under runs/<execution id>/.
    runs_objects = artifacts_bucket.arn_for_objects(f"{RUNS_PREFIX}*")
    role = iam.Role(
        stack,
        "TrainingJobRole",
        assumed_by=iam.ServicePrincipal(SAGEMAKER),
        description="SageMaker execution role of the Nova SFT training jobs",
    )
    escrow = f"arn:{stack.partition}:s3:::customer-escrow-{stack.account}*"
    # The training image, and the evaluation image the evaluation jobs run with the same role.
    image_repositories = [
        stack.format_arn(
            service="ecr",
            account=NOVA_SFT_IMAGE_ACCOUNTS[stack.region],
            resource="repository",
            resource_name=repository,
        )
        for repository in (NOVA_SFT_IMAGE_REPOSITORY, NOVA_EVALUATION_IMAGE_REPOSITORY)
    ]
    training_logs = stack.format_arn(
        service="logs",
        resource="log-group",
        resource_name=f"{TRAINING_LOG_GROUP}:*",
        arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
    )
    for statement in (
        # Read the training (and validation) data channels.
        allow(["s3:ListBucket"], data_bucket.bucket_arn),
        allow(["s3:GetObject"], data_bucket.arn_for_objects("*")),
        # Read the run's rendered recipe channel; write the job's output archives. Both live
        # under runs/, so the job can neither read nor overwrite anything else in the bucket.
        allow(["s3:ListBucket"], artifacts_bucket.bucket_arn),
        allow(["s3:GetObject", "s3:PutObject", "s3:AbortMultipartUpload"], runs_objects),
        # Both buckets use the key; Encrypt is what SageMaker asks for when the job's output
        # names a KMS key.
        allow(
            ["kms:Decrypt", "kms:GenerateDataKey", "kms:Encrypt", "kms:DescribeKey"],
            key.key_arn,
        ),
        # Start from a prior checkpoint: it sits in an AWS-managed escrow bucket that only
        # this account may read. Read-only, and only this account's escrow buckets.
        allow(["s3:ListBucket"], escrow),
        allow(["s3:GetObject"], f"{escrow}/*"),
        # Pull the Nova training and evaluation images from their publisher's repositories in
        # this region. The evaluation jobs share this role: they read the escrow checkpoint, the
        # run's recipe and data under runs/, and write under runs/, as training does.
        allow(
            [
                "ecr:BatchGetImage",
                "ecr:GetDownloadUrlForLayer",
                "ecr:BatchCheckLayerAvailability",
            ],
            *image_repositories,
        ),
        # The job's own log streams, in SageMaker's log group for training jobs.
        allow(
            [
                "logs:CreateLogGroup",
                "logs:CreateLogStream",
                "logs:PutLogEvents",
                "logs:DescribeLogStreams",
            ],
            training_logs,
        ),
    ):
        role.add_to_principal_policy(statement)

    for resource, reason in (
        (
            data_bucket.arn_for_objects("*"),
            "The job reads whichever dataset objects the run names in the data bucket.",
        ),
        (
            runs_objects,
            "The job reads its run's recipe and writes its outputs under per-run keys below runs/.",
        ),
        (escrow, "Escrow bucket names end in a suffix AWS chooses; the prefix is the account."),
        (f"{escrow}/*", "Checkpoint objects in this account's escrow buckets, read-only."),
        (
            training_logs,
            "SageMaker names the log streams per job and instance, in its training log group.",
        ),
    ):
        acknowledge(default_policy(role), wildcard_resource(stack, resource), reason)

    # ecr:GetAuthorizationToken supports no resource-level permission: a policy of its own
    # keeps the "*" and its acknowledgment to this one action.
    ecr_login = iam.Policy(
        stack,
        "TrainingJobImageLogin",
        statements=[allow(["ecr:GetAuthorizationToken"], "*")],
        roles=[role],
    )
    acknowledge(
        ecr_login,
        "AwsSolutions-IAM5[Resource::*]",
        "ecr:GetAuthorizationToken has no resource-level permissions; the image pull itself "
        "is limited to the Nova image repository.",
    )
    # cloudwatch:PutMetricData supports no resource-level permission either; the condition
    # keeps it to SageMaker's training namespace.
    metrics = iam.Policy(
        stack,
        "TrainingJobMetrics",
        statements=[
            iam.PolicyStatement(
                actions=["cloudwatch:PutMetricData"],
                resources=["*"],
                conditions={"StringEquals": {"cloudwatch:namespace": TRAINING_METRICS_NAMESPACE}},
            )
        ],
        roles=[role],
    )
    acknowledge(
        metrics,
        "AwsSolutions-IAM5[Resource::*]",
        "cloudwatch:PutMetricData has no resource-level permissions; the statement is "
        "limited to the SageMaker training namespace by its condition.",
    )
    return role


def pipeline_role(
    stack: cdk.Stack, training_role: iam.IRole, functions: PipelineFunctions
) -> iam.Role:
    """The execution role of the pipeline (`PipelineRole`): run the training step and the functions.

    It may pass `training_role` to SageMaker only, and invoke the pipeline's `functions` only.
    """
    role = iam.Role(
        stack,
        "PipelineRole",
        assumed_by=iam.ServicePrincipal(SAGEMAKER),
        description="Execution role of the Nova SFT SageMaker pipeline",
    )
    training_jobs = stack.format_arn(
        service="sagemaker", resource="training-job", resource_name="*"
    )
    for statement in (
        # Run the training step. SageMaker Pipelines tags the jobs it starts, and creating a
        # tagged job needs AddTags as well.
        allow(
            [
                "sagemaker:CreateTrainingJob",
                "sagemaker:DescribeTrainingJob",
                "sagemaker:StopTrainingJob",
                "sagemaker:AddTags",
            ],
            training_jobs,
        ),
        # Hand the training role to SageMaker, and to nothing else.
        iam.PolicyStatement(
            actions=["iam:PassRole"],
            resources=[training_role.role_arn],
            conditions={"StringEquals": {"iam:PassedToService": SAGEMAKER}},
        ),
        # Run the Lambda steps: these functions, unqualified (no versions or aliases).
        allow(
            ["lambda:InvokeFunction"],
            functions.validate.function_arn,
            functions.prepare.function_arn,
            functions.register.function_arn,
            functions.prepare_evaluation.function_arn,
        ),
    ):
        role.add_to_principal_policy(statement)
    acknowledge(
        default_policy(role),
        wildcard_resource(stack, training_jobs),
        "Pipelines name each training job at run time; the ARN is limited to training jobs "
        "of this account and region.",
    )
    return role

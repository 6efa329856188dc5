"""The stateful half of an environment: the customer-managed key and the three buckets.

Everything here is retained when the stack is deleted and has a fixed logical ID (pinned by
tests/stacks/test_data_stack.py), so no refactoring can replace a bucket or the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, cast

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

from pipeline.config import EnvironmentConfig
from stacks.nag import acknowledge
from stacks.scan_exceptions import skip_checkov
from stacks.secure_bucket import secure_bucket

# CloudFormation logical IDs of the stateful resources. Changing one replaces the resource:
# never change them; tests pin them.
KEY_LOGICAL_ID = "DataKey"
DATA_BUCKET_LOGICAL_ID = "DataBucket"
ARTIFACTS_BUCKET_LOGICAL_ID = "ArtifactsBucket"
ACCESS_LOGS_BUCKET_LOGICAL_ID = "AccessLogsBucket"


@dataclass(frozen=True)
class DataExports:
    """The DataStack's values as other stacks import them (`Fn::ImportValue` of named exports).

    Explicit export names, rather than the ones CDK derives from construct paths, keep the
    contract between the two stacks stable and readable: `<data stack name>:<output id>`.
    A stack that uses these must be deployed after the DataStack (`add_dependency`).
    """

    stack_name: str

    def export_name(self, output_id: str) -> str:
        return f"{self.stack_name}:{output_id}"

    def _import(self, output_id: str) -> str:
        return cdk.Fn.import_value(self.export_name(output_id))

    @property
    def data_bucket_name(self) -> str:
        return self._import("DataBucketName")

    @property
    def data_bucket_arn(self) -> str:
        return self._import("DataBucketArn")

    @property
    def artifacts_bucket_name(self) -> str:
        return self._import("ArtifactsBucketName")

    @property
    def artifacts_bucket_arn(self) -> str:
        return self._import("ArtifactsBucketArn")

    @property
    def key_arn(self) -> str:
        return self._import("DataKeyArn")


class DataStack(cdk.Stack):
    """The key, the data bucket (datasets), the artifacts bucket and the access-log bucket.

    Attributes: `key`, `data_bucket`, `artifacts_bucket`, `access_logs_bucket`, and `exports`
    (`DataExports`), through which other stacks use them.
    Termination protection follows `config.termination_protection` (off only in the sandbox).
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        config: EnvironmentConfig,
        **kwargs: Any,
    ) -> None:
        super().__init__(
            scope,
            construct_id,
            description=f"nova-sft {config.name}: key and buckets (stateful, retained)",
            termination_protection=config.termination_protection,
            **kwargs,
        )
        self.key = kms.Key(
            self,
            "Key",
            description=f"nova-sft {config.name}: datasets, recipes, job outputs and function logs",
            enable_key_rotation=True,
            removal_policy=cdk.RemovalPolicy.RETAIN,
        )
        cast(kms.CfnKey, self.key.node.default_child).override_logical_id(KEY_LOGICAL_ID)
        self._allow_cloudwatch_logs(self.key)

        self.access_logs_bucket = secure_bucket(
            self,
            "AccessLogsBucket",
            logical_id=ACCESS_LOGS_BUCKET_LOGICAL_ID,
            noncurrent_version_retention_days=config.noncurrent_version_retention_days,
            encryption_key=None,
            access_logs=None,
            expire_current_after_days=config.log_retention_days,
        )
        self._acknowledge_access_logs_bucket(self.access_logs_bucket)
        self.data_bucket = secure_bucket(
            self,
            "DataBucket",
            logical_id=DATA_BUCKET_LOGICAL_ID,
            noncurrent_version_retention_days=config.noncurrent_version_retention_days,
            encryption_key=self.key,
            access_logs=self.access_logs_bucket,
            access_logs_prefix="data/",
        )
        self.artifacts_bucket = secure_bucket(
            self,
            "ArtifactsBucket",
            logical_id=ARTIFACTS_BUCKET_LOGICAL_ID,
            noncurrent_version_retention_days=config.noncurrent_version_retention_days,
            encryption_key=self.key,
            access_logs=self.access_logs_bucket,
            access_logs_prefix="artifacts/",
        )

        self.exports = DataExports(stack_name=self.stack_name)
        for output_id, value, description in (
            (
                "DataBucketName",
                self.data_bucket.bucket_name,
                "Upload training data (bedrock-conversation-2024 JSONL) here",
            ),
            ("DataBucketArn", self.data_bucket.bucket_arn, "The data bucket's ARN"),
            (
                "ArtifactsBucketName",
                self.artifacts_bucket.bucket_name,
                "Rendered recipes, validation reports and training job outputs",
            ),
            ("ArtifactsBucketArn", self.artifacts_bucket.bucket_arn, "The artifacts bucket's ARN"),
            (
                "DataKeyArn",
                self.key.key_arn,
                "Customer-managed key of the data and artifacts buckets",
            ),
        ):
            cdk.CfnOutput(
                self,
                output_id,
                value=value,
                description=description,
                export_name=self.exports.export_name(output_id),
            )
        cdk.CfnOutput(
            self,
            "AccessLogsBucketName",
            value=self.access_logs_bucket.bucket_name,
            description="S3 server access logs of the data and artifacts buckets",
        )

    def _allow_cloudwatch_logs(self, key: kms.Key) -> None:
        # The functions' log groups are encrypted with this key. CloudWatch Logs encrypts on its
        # own behalf, so it needs the key policy to allow it; the condition limits that to log
        # groups of this account and region. Only actions that carry an encryption context are
        # listed: kms:DescribeKey has none, so under this condition it could never be allowed
        # (the Service Authorization Reference lists no kms:EncryptionContext key for it).
        key.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowCloudWatchLogsOfThisAccount",
                principals=[iam.ServicePrincipal(f"logs.{self.region}.amazonaws.com")],
                actions=[
                    "kms:Encrypt",
                    "kms:Decrypt",
                    "kms:ReEncryptFrom",
                    "kms:ReEncryptTo",
                    "kms:GenerateDataKey",
                    "kms:GenerateDataKeyWithoutPlaintext",
                ],
                resources=["*"],  # in a key policy, "*" is this key
                conditions={
                    "ArnLike": {
                        "kms:EncryptionContext:aws:logs:arn": self.format_arn(
                            service="logs",
                            resource="log-group",
                            resource_name="*",
                            arn_format=cdk.ArnFormat.COLON_RESOURCE_NAME,
                        )
                    }
                },
            )
        )

    @staticmethod
    def _acknowledge_access_logs_bucket(bucket: s3.Bucket) -> None:
        why_no_logs = (
            "This is the access-log bucket: logging its own access into itself would loop; the "
            "data and artifacts buckets log here."
        )
        acknowledge(bucket, "AwsSolutions-S1", why_no_logs)
        skip_checkov(bucket, "CKV_AWS_18", why_no_logs)

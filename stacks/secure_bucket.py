"""The one place that decides how this project's S3 buckets are secured.

Every bucket is versioned, SSL-only (TLS 1.2 or newer), blocks all public access, has ACLs
disabled, is retained when its stack is deleted, expires noncurrent versions and aborts stale
multipart uploads. Buckets that hold data are encrypted with the customer-managed key and write
server access logs to the access-log bucket; the access-log bucket itself is SSE-S3 encrypted,
because S3 server access logging can only deliver to a bucket with S3-managed encryption.
"""

from __future__ import annotations

from typing import cast

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_kms as kms
from aws_cdk import aws_s3 as s3
from constructs import Construct

# Incomplete multipart uploads are invisible in listings but billed: clear them after a week.
ABORT_INCOMPLETE_UPLOADS_DAYS = 7


def secure_bucket(
    scope: Construct,
    construct_id: str,
    *,
    logical_id: str,
    noncurrent_version_retention_days: int,
    encryption_key: kms.IKey | None,
    access_logs: s3.IBucket | None,
    access_logs_prefix: str | None = None,
    expire_current_after_days: int | None = None,
) -> s3.Bucket:
    """A bucket with the project's secure defaults.

    `logical_id` pins the bucket's CloudFormation logical ID, so that refactoring the construct
    tree never replaces a bucket (a replaced bucket is a new, empty bucket).
    `encryption_key` None means SSE-S3 and is meant only for the access-log bucket;
    `access_logs` None means no server access logging (again only for the access-log bucket).
    `expire_current_after_days` deletes current objects after that many days (default: never).
    """
    lifecycle = [
        s3.LifecycleRule(
            id="ExpireNoncurrentVersions",
            noncurrent_version_expiration=Duration.days(noncurrent_version_retention_days),
            abort_incomplete_multipart_upload_after=Duration.days(ABORT_INCOMPLETE_UPLOADS_DAYS),
        )
    ]
    if expire_current_after_days is not None:
        lifecycle.append(
            s3.LifecycleRule(
                id="ExpireCurrentObjects",
                expiration=Duration.days(expire_current_after_days),
            )
        )
    if encryption_key is None:
        encryption = s3.BucketEncryption.S3_MANAGED
    else:
        encryption = s3.BucketEncryption.KMS
    bucket = s3.Bucket(
        scope,
        construct_id,
        versioned=True,
        enforce_ssl=True,
        minimum_tls_version=1.2,
        block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
        object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
        encryption=encryption,
        encryption_key=encryption_key,
        # One data key per bucket instead of one KMS request per object: cheaper, same control.
        bucket_key_enabled=encryption_key is not None,
        server_access_logs_bucket=access_logs,
        server_access_logs_prefix=access_logs_prefix,
        lifecycle_rules=lifecycle,
        removal_policy=RemovalPolicy.RETAIN,
        auto_delete_objects=False,
    )
    cast(s3.CfnBucket, bucket.node.default_child).override_logical_id(logical_id)
    return bucket

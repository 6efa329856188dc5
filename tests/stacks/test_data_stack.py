"""The DataStack: the key, three secure buckets, fixed logical IDs and named exports."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest
from aws_cdk.assertions import Template

from pipeline.config import read_cdk_json
from tests.cloud_assembly import ENVIRONMENTS, Assembly

KMS_BUCKETS = ("DataBucket", "ArtifactsBucket")
ALL_BUCKETS = (*KMS_BUCKETS, "AccessLogsBucket")


def resource(template: Template, logical_id: str) -> dict[str, Any]:
    return dict(template.to_json()["Resources"][logical_id])


def test_stateful_logical_ids_are_pinned(assembly: Assembly) -> None:
    # Renaming any of these would make CloudFormation replace the resource: a new, empty bucket
    # or a new key that cannot decrypt the old data. Every environment keeps the same IDs.
    for env in ENVIRONMENTS:
        data = assembly.template(env, "Data")
        assert set(data.find_resources("AWS::S3::Bucket")) == set(ALL_BUCKETS)
        assert set(data.find_resources("AWS::KMS::Key")) == {"DataKey"}
        training = assembly.template(env, "Training")
        assert set(training.find_resources("AWS::SageMaker::ModelPackageGroup")) == {
            "CheckpointsGroup"
        }


def test_stateful_resources_are_retained(
    sandbox_data: Template, sandbox_training: Template
) -> None:
    for logical_id in (*ALL_BUCKETS, "DataKey"):
        found = resource(sandbox_data, logical_id)
        assert (found["DeletionPolicy"], found["UpdateReplacePolicy"]) == ("Retain", "Retain")
    group = resource(sandbox_training, "CheckpointsGroup")
    assert (group["DeletionPolicy"], group["UpdateReplacePolicy"]) == ("Retain", "Retain")


def test_key_rotates(sandbox_data: Template) -> None:
    sandbox_data.has_resource_properties("AWS::KMS::Key", {"EnableKeyRotation": True})


@pytest.mark.parametrize("bucket", ALL_BUCKETS)
def test_every_bucket_is_versioned_private_and_owner_enforced(
    sandbox_data: Template, bucket: str
) -> None:
    properties = resource(sandbox_data, bucket)["Properties"]
    assert properties["VersioningConfiguration"] == {"Status": "Enabled"}
    assert properties["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True,
        "BlockPublicPolicy": True,
        "IgnorePublicAcls": True,
        "RestrictPublicBuckets": True,
    }
    assert properties["OwnershipControls"] == {
        "Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]
    }
    assert "BucketName" not in properties  # generated names: no collisions between accounts


@pytest.mark.parametrize("bucket", KMS_BUCKETS)
def test_data_buckets_use_the_customer_managed_key(sandbox_data: Template, bucket: str) -> None:
    encryption = resource(sandbox_data, bucket)["Properties"]["BucketEncryption"]
    assert encryption == {
        "ServerSideEncryptionConfiguration": [
            {
                "BucketKeyEnabled": True,
                "ServerSideEncryptionByDefault": {
                    "KMSMasterKeyID": {"Fn::GetAtt": ["DataKey", "Arn"]},
                    "SSEAlgorithm": "aws:kms",
                },
            }
        ]
    }


def test_access_log_bucket_uses_s3_managed_encryption(sandbox_data: Template) -> None:
    # S3 server access logging delivers only to SSE-S3 buckets.
    encryption = resource(sandbox_data, "AccessLogsBucket")["Properties"]["BucketEncryption"]
    rule = encryption["ServerSideEncryptionConfiguration"][0]
    assert rule["ServerSideEncryptionByDefault"] == {"SSEAlgorithm": "AES256"}


@pytest.mark.parametrize(
    ("bucket", "prefix"), [("DataBucket", "data/"), ("ArtifactsBucket", "artifacts/")]
)
def test_data_buckets_log_access_to_the_log_bucket(
    sandbox_data: Template, bucket: str, prefix: str
) -> None:
    logging = resource(sandbox_data, bucket)["Properties"]["LoggingConfiguration"]
    assert logging == {
        "DestinationBucketName": {"Ref": "AccessLogsBucket"},
        "LogFilePrefix": prefix,
    }


def test_only_s3_logging_of_this_account_may_write_access_logs(
    sandbox_data: Template, flat: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> None:
    template = flat(sandbox_data.to_json())
    policy = next(
        r["Properties"]["PolicyDocument"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy"
        and r["Properties"]["Bucket"] == "<AccessLogsBucket>"
    )
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert allows == [
        {
            "Action": "s3:PutObject",
            "Condition": {
                "ArnLike": {"aws:SourceArn": f"<{bucket}.Arn>"},
                "StringEquals": {"aws:SourceAccount": "<AWS::AccountId>"},
            },
            "Effect": "Allow",
            "Principal": {"Service": "logging.s3.amazonaws.com"},
            "Resource": f"<AccessLogsBucket.Arn>/{prefix}*",
        }
        for bucket, prefix in (("DataBucket", "data/"), ("ArtifactsBucket", "artifacts/"))
    ]


@pytest.mark.parametrize("bucket", ALL_BUCKETS)
def test_every_bucket_refuses_plain_http_and_old_tls(
    sandbox_data: Template, flat: Callable[[Mapping[str, Any]], dict[str, Any]], bucket: str
) -> None:
    template = flat(sandbox_data.to_json())
    policy = next(
        r["Properties"]["PolicyDocument"]
        for r in template["Resources"].values()
        if r["Type"] == "AWS::S3::BucketPolicy" and r["Properties"]["Bucket"] == f"<{bucket}>"
    )
    denies = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    everything = [f"<{bucket}.Arn>", f"<{bucket}.Arn>/*"]
    assert denies == [
        {
            "Action": "s3:*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": everything,
        },
        {
            "Action": "s3:*",
            "Condition": {"NumericLessThan": {"s3:TlsVersion": 1.2}},
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Resource": everything,
        },
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_lifecycle_follows_the_environment(assembly: Assembly, env: str) -> None:
    config = read_cdk_json().environment(env)
    data = assembly.template(env, "Data")
    noncurrent = {
        "Id": "ExpireNoncurrentVersions",
        "Status": "Enabled",
        "NoncurrentVersionExpiration": {"NoncurrentDays": config.noncurrent_version_retention_days},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7},
    }
    for bucket in KMS_BUCKETS:
        rules = resource(data, bucket)["Properties"]["LifecycleConfiguration"]["Rules"]
        assert rules == [noncurrent]
    log_rules = resource(data, "AccessLogsBucket")["Properties"]["LifecycleConfiguration"]["Rules"]
    assert log_rules == [
        noncurrent,
        {
            "Id": "ExpireCurrentObjects",
            "Status": "Enabled",
            "ExpirationInDays": config.log_retention_days,
        },
    ]


def test_cloudwatch_logs_may_use_the_key_for_this_accounts_log_groups_only(
    sandbox_data: Template, flat: Callable[[Mapping[str, Any]], dict[str, Any]]
) -> None:
    key = flat(sandbox_data.to_json())["Resources"]["DataKey"]["Properties"]["KeyPolicy"]
    (logs,) = [s for s in key["Statement"] if s.get("Sid") == "AllowCloudWatchLogsOfThisAccount"]
    assert logs["Principal"] == {"Service": "logs.us-east-1.amazonaws.com"}
    assert logs["Condition"] == {
        "ArnLike": {
            "kms:EncryptionContext:aws:logs:arn": (
                "arn:aws:logs:us-east-1:<AWS::AccountId>:log-group:*"
            )
        }
    }
    assert not any(action.endswith("*") for action in logs["Action"])
    # Everything else in the key policy is the account's own administration (IAM decides).
    others = [s for s in key["Statement"] if s is not logs]
    assert [s["Principal"] for s in others] == [{"AWS": "arn:aws:iam::<AWS::AccountId>:root"}]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_exports_have_stable_names(assembly: Assembly, env: str) -> None:
    outputs = assembly.template_json(env, "Data")["Outputs"]
    exports = {name: o["Export"]["Name"] for name, o in outputs.items() if "Export" in o}
    prefix = f"nova-sft-{env}-data"
    assert exports == {
        name: f"{prefix}:{name}"
        for name in (
            "DataBucketName",
            "DataBucketArn",
            "ArtifactsBucketName",
            "ArtifactsBucketArn",
            "DataKeyArn",
        )
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_termination_protection_outside_the_sandbox(assembly: Assembly, env: str) -> None:
    protection = {
        name: a["properties"].get("terminationProtection", False)
        for name, a in assembly.stack_artifacts(env).items()
    }
    expected = env != "sandbox"
    stage = assembly.stages[env].node.path
    # Recorded for `cdk deploy`; the toolchain cannot apply it (decision 0008).
    assert protection == {f"{stage}/Data": expected, f"{stage}/Training": expected}

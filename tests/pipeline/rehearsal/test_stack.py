"""The local deployer creates a stage from its templates and resolves CDK's intrinsics."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.stack import deploy_stage

DATA = {
    "Resources": {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"Description": "data"}},
        "Bucket": {
            "Type": "AWS::S3::Bucket",
            "Properties": {
                "VersioningConfiguration": {"Status": "Enabled"},
                "BucketEncryption": {
                    "ServerSideEncryptionConfiguration": [
                        {
                            "ServerSideEncryptionByDefault": {
                                "SSEAlgorithm": "aws:kms",
                                "KMSMasterKeyID": {"Fn::GetAtt": ["Key", "Arn"]},
                            }
                        }
                    ]
                },
            },
        },
        "BucketPolicy": {"Type": "AWS::S3::BucketPolicy", "Properties": {}},
    },
    "Outputs": {
        "ExportBucket": {"Value": {"Ref": "Bucket"}, "Export": {"Name": "data:Bucket"}},
        "BucketArn": {"Value": {"Fn::GetAtt": ["Bucket", "Arn"]}},
    },
}


def training_template(extra: dict[str, Any] | None = None) -> dict[str, Any]:
    body = {
        "Fn::Join": [
            "",
            [
                '{"Steps": [{"FunctionArn": "',
                {"Fn::GetAtt": ["Fn", "Arn"]},
                '", "Bucket": "',
                {"Fn::ImportValue": "data:Bucket"},
                '", "Where": "',
                {"Fn::Sub": "${AWS::Region}:${AWS::AccountId}"},
                '"}]}',
            ],
        ]
    }
    resources: dict[str, Any] = {
        "Pipeline": {
            "Type": "AWS::SageMaker::Pipeline",
            "Properties": {
                "PipelineName": "p-sandbox",
                "PipelineDefinition": {"PipelineDefinitionBody": body},
                "RoleArn": {"Fn::GetAtt": ["Role", "Arn"]},
            },
        },
        "Role": {
            "Type": "AWS::IAM::Role",
            "Properties": {"AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": []}},
        },
        "Fn": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "Runtime": "python3.12",
                "Handler": "lambdas.hello.handler",
                "Role": {"Fn::GetAtt": ["Role", "Arn"]},
                "Code": {"S3Bucket": "assets", "S3Key": "x.zip"},
            },
            "Metadata": {"aws:asset:path": "asset.abc"},
        },
        "Group": {
            "Type": "AWS::SageMaker::ModelPackageGroup",
            "Properties": {"ModelPackageGroupName": "g-sandbox"},
        },
        "Custom": {"Type": "Custom::S3AutoDeleteObjects", "Properties": {}},
    }
    resources.update(extra or {})
    return {
        "Parameters": {"BootstrapVersion": {"Type": "String", "Default": "/cdk/version"}},
        "Resources": resources,
        "Outputs": {"PipelineName": {"Value": {"Ref": "Pipeline"}}},
    }


def assembly(tmp_path: Path, training: dict[str, Any]) -> Path:
    stage = tmp_path / "cdk.out" / "assembly-sandbox"
    (stage / "asset.abc" / "lambdas").mkdir(parents=True)
    (stage / "asset.abc" / "lambdas" / "hello.py").write_text("def handler(e, c):\n    return e\n")
    (stage / "sandbox-Data.template.json").write_text(json.dumps(DATA))
    (stage / "sandbox-Training.template.json").write_text(json.dumps(training))
    manifest = {
        "artifacts": {
            "sandbox-Training": {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": "sandbox-Training.template.json"},
                "dependencies": ["sandbox-Data", "sandbox-Training.assets"],
            },
            "sandbox-Data": {
                "type": "aws:cloudformation:stack",
                "properties": {"templateFile": "sandbox-Data.template.json"},
            },
            "sandbox-Training.assets": {"type": "cdk:asset-manifest", "properties": {}},
        }
    }
    (stage / "manifest.json").write_text(json.dumps(manifest))
    return tmp_path / "cdk.out"


def test_deploys_and_resolves_references(tmp_path: Path, aws: boto3.Session) -> None:
    stage = deploy_stage(assembly(tmp_path, training_template()), "sandbox", aws)

    bucket = stage.physical["sandbox-Data/Bucket"]
    s3 = aws.client("s3")
    assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
    rule = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"][0]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"

    (function,) = stage.functions.values()
    assert function.handler == "lambdas.hello.handler"
    assert (function.asset_dir / "lambdas" / "hello.py").is_file()

    sm = aws.client("sagemaker")
    body = json.loads(sm.describe_pipeline(PipelineName="p-sandbox")["PipelineDefinition"])
    assert body["Steps"][0] == {
        "FunctionArn": function.arn,
        "Bucket": bucket,
        "Where": f"us-east-1:{stage.account}",
    }
    assert sm.describe_model_package_group(ModelPackageGroupName="g-sandbox")
    assert stage.outputs["sandbox-Data.BucketArn"] == f"arn:aws:s3:::{bucket}"
    assert stage.output("ExportBucket") == bucket
    assert "sandbox-Data/BucketPolicy (AWS::S3::BucketPolicy)" in stage.not_applied
    assert "sandbox-Training/Custom (Custom::S3AutoDeleteObjects)" in stage.not_applied


def test_unknown_intrinsics_stop_the_deployment(tmp_path: Path, aws: boto3.Session) -> None:
    template = training_template()
    template["Resources"]["Group"]["Properties"]["ModelPackageGroupName"] = {
        "Fn::FindInMap": ["M", "a", "b"]
    }
    with pytest.raises(DefinitionError, match="intrinsic Fn::FindInMap is not supported"):
        deploy_stage(assembly(tmp_path, template), "sandbox", aws)

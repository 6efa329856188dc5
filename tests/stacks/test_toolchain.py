"""The toolchain: source, synth, self-mutation, stage order, approval, smoke steps, CLI pins."""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import ToolchainConfig, read_cdk_json
from tests.cloud_assembly import Assembly


def package_json_pin(package: str) -> str:
    """The exact version package.json pins for `package` (the CLIs the toolchain installs)."""
    manifest = json.loads((Path(__file__).parents[2] / "package.json").read_text(encoding="utf-8"))
    return str(manifest["devDependencies"][package])


@pytest.fixture(scope="module")
def toolchain() -> ToolchainConfig:
    config = read_cdk_json().toolchain
    assert config is not None
    return config


@pytest.fixture(scope="module")
def template(assembly: Assembly) -> dict[str, Any]:
    return assembly.toolchain_json()


def of_type(template: Mapping[str, Any], kind: str) -> dict[str, dict[str, Any]]:
    return {k: r for k, r in template["Resources"].items() if r["Type"] == kind}


@pytest.fixture(scope="module")
def codepipeline(template: dict[str, Any]) -> dict[str, Any]:
    (pipeline,) = of_type(template, "AWS::CodePipeline::Pipeline").values()
    return dict(pipeline["Properties"])


def actions(codepipeline: Mapping[str, Any], stage: str) -> list[dict[str, Any]]:
    (found,) = [s for s in codepipeline["Stages"] if s["Name"] == stage]
    return sorted(found["Actions"], key=lambda a: a["RunOrder"])


def buildspec(template: Mapping[str, Any], project_ref: Mapping[str, Any]) -> dict[str, Any]:
    project = template["Resources"][project_ref["Ref"]]
    return dict(json.loads(project["Properties"]["Source"]["BuildSpec"]))


def test_stages_run_in_order_after_source_synth_self_mutation_and_assets(
    codepipeline: dict[str, Any], toolchain: ToolchainConfig
) -> None:
    assert codepipeline["Name"] == "nova-sft-toolchain"
    assert codepipeline["PipelineType"] == "V2"
    assert [s["Name"] for s in codepipeline["Stages"]] == [
        "Source",
        "Build",
        "UpdatePipeline",
        "Assets",
        *toolchain.stages,
    ]


def test_source_is_the_connection_repository_and_branch_from_config(
    codepipeline: dict[str, Any], toolchain: ToolchainConfig
) -> None:
    (source,) = actions(codepipeline, "Source")
    assert source["ActionTypeId"]["Provider"] == "CodeStarSourceConnection"
    assert source["Configuration"] == {
        "ConnectionArn": toolchain.connection_arn,
        "FullRepositoryId": toolchain.repository,
        "BranchName": toolchain.branch,
        "DetectChanges": True,
    }


def test_synth_runs_make_test_and_outputs_cdk_out(
    template: dict[str, Any], codepipeline: dict[str, Any]
) -> None:
    (synth,) = actions(codepipeline, "Build")
    spec = buildspec(template, synth["Configuration"]["ProjectName"])
    assert spec["phases"]["build"]["commands"] == ["make test"]
    assert spec["phases"]["install"]["runtime-versions"] == {"python": "3.11", "nodejs": "20"}
    assert spec["artifacts"]["base-directory"] == "cdk.out"


def test_self_mutation_installs_the_pinned_cdk_cli(
    template: dict[str, Any], codepipeline: dict[str, Any]
) -> None:
    (mutate,) = actions(codepipeline, "UpdatePipeline")
    spec = buildspec(template, mutate["Configuration"]["ProjectName"])
    pinned = package_json_pin("aws-cdk")
    assert spec["phases"]["install"]["commands"] == [f"npm install -g aws-cdk@{pinned}"]
    assert spec["phases"]["build"]["commands"] == [
        "cdk -a . deploy Toolchain --require-approval=never --verbose"
    ]


def test_asset_publishing_installs_the_pinned_cdk_assets(
    assembly: Assembly, template: dict[str, Any], codepipeline: dict[str, Any]
) -> None:
    (publish,) = actions(codepipeline, "Assets")
    project = template["Resources"][publish["Configuration"]["ProjectName"]["Ref"]]
    spec_file = assembly.outdir / project["Properties"]["Source"]["BuildSpec"]
    spec = json.loads(spec_file.read_text(encoding="utf-8"))
    pinned = package_json_pin("cdk-assets")
    assert spec["phases"]["install"]["commands"] == [f"npm install -g cdk-assets@{pinned}"]


def test_artifacts_cross_accounts_under_a_rotating_key(
    template: dict[str, Any], codepipeline: dict[str, Any]
) -> None:
    (key_id,) = [k for k in of_type(template, "AWS::KMS::Key") if "ArtifactsBucket" in k]
    assert template["Resources"][key_id]["Properties"]["EnableKeyRotation"] is True
    store = codepipeline["ArtifactStore"]
    assert store["EncryptionKey"] == {"Id": {"Fn::GetAtt": [key_id, "Arn"]}, "Type": "KMS"}
    # The key lets each stage account's deploy role read the artifacts.
    principals = json.dumps(template["Resources"][key_id]["Properties"]["KeyPolicy"])
    for env in ("dev", "staging", "prod"):
        account = read_cdk_json().environment(env).account
        assert f"cdk-hnb659fds-deploy-role-{account}-us-east-1" in principals


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_each_stage_deploys_its_stacks_into_its_own_account_and_region(
    codepipeline: dict[str, Any], env: str
) -> None:
    config = read_cdk_json().environment(env)
    deploys = [a for a in actions(codepipeline, env) if a["ActionTypeId"]["Category"] == "Deploy"]
    assert [a["Configuration"]["StackName"] for a in deploys] == [
        f"nova-sft-{env}-data",
        f"nova-sft-{env}-data",
        f"nova-sft-{env}-training",
        f"nova-sft-{env}-training",
    ]
    role = f"role/cdk-hnb659fds-deploy-role-{config.account}-{config.region}"
    for action in deploys:
        assert json.dumps(action["RoleArn"]).endswith(f':iam::{config.account}:{role}"]]}}')
        assert action.get("Region", config.region) == config.region


def test_manual_approval_comes_before_prod_only(
    codepipeline: dict[str, Any], toolchain: ToolchainConfig
) -> None:
    for env in toolchain.stages:
        first, *rest = actions(codepipeline, env)
        approvals = [a for a in (first, *rest) if a["ActionTypeId"]["Category"] == "Approval"]
        if env in toolchain.manual_approval_before:
            assert approvals == [first]
            assert first["ActionTypeId"]["Provider"] == "Manual"
            assert all(a["RunOrder"] > first["RunOrder"] for a in rest)
        else:
            assert approvals == []
    assert toolchain.manual_approval_before == ("prod",)


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_a_smoke_step_runs_last_in_each_stage_with_its_stages_role(
    template: dict[str, Any], codepipeline: dict[str, Any], env: str
) -> None:
    account = read_cdk_json().environment(env).account
    *deploys, smoke = actions(codepipeline, env)
    assert smoke["Name"] == "SmokeTest"
    assert smoke["RunOrder"] > max(a["RunOrder"] for a in deploys)
    spec = buildspec(template, smoke["Configuration"]["ProjectName"])
    assert spec["phases"]["build"]["commands"] == [
        f".smoke-venv/bin/python -m pipeline.smoke --env {env} "
        f"--role-arn arn:aws:iam::{account}:role/nova-sft-{env}-smoke-test"
    ]
    # The project runs as the stage's smoke runner, the role the stage's smoke role trusts.
    project = template["Resources"][smoke["Configuration"]["ProjectName"]["Ref"]]
    (runner,) = [
        r
        for k, r in of_type(template, "AWS::IAM::Role").items()
        if project["Properties"]["ServiceRole"] == {"Fn::GetAtt": [k, "Arn"]}
    ]
    assert runner["Properties"]["RoleName"] == f"nova-sft-toolchain-smoke-{env}"


@pytest.mark.parametrize("env", ["dev", "staging", "prod"])
def test_a_smoke_runner_may_assume_its_stages_smoke_role_and_no_other(
    template: dict[str, Any], env: str
) -> None:
    account = read_cdk_json().environment(env).account
    roles = of_type(template, "AWS::IAM::Role")
    (runner_id,) = [
        k
        for k, r in roles.items()
        if r["Properties"].get("RoleName") == f"nova-sft-toolchain-smoke-{env}"
    ]
    assert roles[runner_id]["Properties"]["AssumeRolePolicyDocument"]["Statement"] == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "codebuild.amazonaws.com"},
        }
    ]
    assume = [
        statement
        for policy in of_type(template, "AWS::IAM::Policy").values()
        if {"Ref": runner_id} in policy["Properties"]["Roles"]
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        if "sts:" in json.dumps(statement["Action"])
    ]
    assert assume == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Resource": f"arn:aws:iam::{account}:role/nova-sft-{env}-smoke-test",
        }
    ]


def test_each_stage_account_may_put_only_model_package_events_on_the_bus(
    template: dict[str, Any], toolchain: ToolchainConfig
) -> None:
    policies = of_type(template, "AWS::Events::EventBusPolicy").values()
    bus = f"arn:aws:events:{toolchain.region}:{toolchain.account}:event-bus/default"
    expected: list[dict[str, Any]] = []
    for env in toolchain.stages:
        account = read_cdk_json().environment(env).account
        expected.append(
            {
                "EventBusName": "default",
                "StatementId": f"nova-sft-{env}-approval-events",
                "Statement": {
                    "Action": "events:PutEvents",
                    "Condition": {
                        "StringEquals": {
                            "events:detail-type": "SageMaker Model Package State Change",
                            "events:source": "aws.sagemaker",
                        }
                    },
                    "Effect": "Allow",
                    "Principal": {"AWS": f"arn:aws:iam::{account}:root"},
                    "Resource": bus,
                },
            }
        )
    found = [copy.deepcopy(p["Properties"]) for p in policies]
    for properties in found:
        properties["Statement"]["Principal"]["AWS"] = _joined(
            properties["Statement"]["Principal"]["AWS"]
        )
        properties["Statement"]["Resource"] = _joined(properties["Statement"]["Resource"])
    assert sorted(found, key=lambda p: p["StatementId"]) == sorted(
        expected, key=lambda p: p["StatementId"]
    )


def test_the_team_hears_every_stages_approvals_on_one_topic(
    template: dict[str, Any], toolchain: ToolchainConfig
) -> None:
    (rule,) = of_type(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": [f"nova-sft-{env}-checkpoints" for env in toolchain.stages]
        },
    }
    (topic_id,) = of_type(template, "AWS::SNS::Topic")
    assert rule["Properties"]["Targets"] == [{"Arn": {"Ref": topic_id}, "Id": "Target0"}]
    topic = template["Resources"][topic_id]["Properties"]
    assert "KmsMasterKeyId" in topic
    assert template["Outputs"]["ApprovalsTopicArn"]["Value"] == {"Ref": topic_id}


def test_the_approvals_key_serves_eventbridge_for_the_toolchains_rule_only(
    template: dict[str, Any], toolchain: ToolchainConfig
) -> None:
    (rule,) = of_type(template, "AWS::Events::Rule").values()
    assert rule["Properties"]["Name"] == "nova-sft-toolchain-checkpoint-changes"
    (key,) = [k for i, k in of_type(template, "AWS::KMS::Key").items() if i.startswith("Approvals")]
    (statement,) = [
        s
        for s in key["Properties"]["KeyPolicy"]["Statement"]
        if s["Principal"] == {"Service": "events.amazonaws.com"}
    ]
    assert statement["Condition"] == {
        "ArnEquals": {
            "aws:SourceArn": f"arn:aws:events:{toolchain.region}:{toolchain.account}:rule/"
            "nova-sft-toolchain-checkpoint-changes"
        },
        "StringEquals": {"aws:SourceAccount": toolchain.account},
    }


def _joined(value: Any) -> Any:
    """A `Fn::Join` of the partition and literals, as the text it resolves to in aws."""
    if isinstance(value, dict) and "Fn::Join" in value:
        separator, parts = value["Fn::Join"]
        return separator.join("aws" if p == {"Ref": "AWS::Partition"} else p for p in parts)
    return value


def test_no_build_is_privileged(template: dict[str, Any]) -> None:
    projects = of_type(template, "AWS::CodeBuild::Project").values()
    assert projects
    for project in projects:
        environment = project["Properties"]["Environment"]
        assert environment["PrivilegedMode"] is False
        assert environment["Image"] == "aws/codebuild/standard:7.0"


def test_toolchain_stack_is_in_its_account_and_protected(
    assembly: Assembly, toolchain: ToolchainConfig
) -> None:
    manifest = json.loads((assembly.outdir / "manifest.json").read_text(encoding="utf-8"))
    artifact = manifest["artifacts"]["Toolchain"]
    assert artifact["environment"] == f"aws://{toolchain.account}/{toolchain.region}"
    assert artifact["properties"]["stackName"] == "nova-sft-toolchain"
    assert artifact["properties"]["terminationProtection"] is True


def test_toolchain_acknowledgments_are_wildcards_and_the_artifact_bucket_only(
    assembly: Assembly,
) -> None:
    # cdk-nag acknowledgments are recorded per construct in the stack's metadata file.
    metadata_file = assembly.outdir / "Toolchain.metadata.json"
    metadata = json.loads(metadata_file.read_text(encoding="utf-8"))
    acknowledged = {
        (path, finding.removeprefix("Annotation::"), reason)
        for path, entries in metadata.items()
        for entry in entries
        if entry["type"] == "aws:cdk:acknowledged-rules"
        for finding, reason in entry["data"].items()
    }
    assert acknowledged
    for path, finding, reason in acknowledged:
        if finding == "AwsSolutions-S1":
            assert path == "/Toolchain/Pipeline/Pipeline/ArtifactsBucket"
        else:
            assert finding.startswith("AwsSolutions-IAM5["), finding
            assert path.endswith("/DefaultPolicy"), path  # on the one policy, not its role
        assert len(reason) > 40, (finding, reason)


def test_checkov_skips_are_the_artifact_bucket_and_asset_role_only_with_reasons(
    template: dict[str, Any],
) -> None:
    skips = [
        (resource["Type"], skip)
        for resource in template["Resources"].values()
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", [])
    ]
    for kind, skip in skips:
        assert len(skip.get("comment", "")) > 40, (kind, skip)
    assert {(kind, skip["id"]) for kind, skip in skips} == {
        ("AWS::S3::Bucket", "CKV_AWS_18"),
        ("AWS::S3::Bucket", "CKV_AWS_21"),
        ("AWS::IAM::Policy", "CKV_AWS_111"),
    }

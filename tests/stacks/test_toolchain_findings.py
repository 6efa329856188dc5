"""Only the wildcards a rule explains are acknowledged: anything else still fails the synth."""

from __future__ import annotations

from pathlib import Path

import aws_cdk as cdk
import pytest
from aws_cdk import aws_iam as iam
from cdk_nag import AwsSolutionsChecks

from stacks.toolchain_findings import acknowledge_toolchain_findings


def synth_with(statement: iam.PolicyStatement, tmp: str) -> None:
    app = cdk.App(outdir=tmp, context={"@aws-cdk/core:validationReportJson": True})
    stack = cdk.Stack(app, "S", env=cdk.Environment(account="444444444444", region="us-east-1"))
    role = iam.Role(stack, "Role", assumed_by=iam.ServicePrincipal("codebuild.amazonaws.com"))
    role.add_to_principal_policy(statement)
    acknowledge_toolchain_findings(stack)
    cdk.Validations.of(app).add_plugins(AwsSolutionsChecks(app))
    app.synth()


def test_an_explained_wildcard_is_acknowledged(tmp_path: Path) -> None:
    # CodeBuild's batch calls on "*" are what CDK Pipelines' asset role needs.
    synth_with(
        iam.PolicyStatement(
            actions=["codebuild:BatchGetBuilds", "codebuild:StartBuild"], resources=["*"]
        ),
        str(tmp_path),
    )


def test_an_unexplained_wildcard_still_fails_the_synth(tmp_path: Path) -> None:
    # The same "*" with a write action no rule explains: the finding must surface.
    with pytest.raises(RuntimeError, match=r"AwsSolutions-IAM5\[Resource::\*\]"):
        synth_with(
            iam.PolicyStatement(actions=["codebuild:StartBuild", "s3:PutObject"], resources=["*"]),
            str(tmp_path),
        )


def test_a_wildcard_action_on_another_bucket_is_not_acknowledged(
    tmp_path: Path,
) -> None:
    with pytest.raises(RuntimeError, match=r"AwsSolutions-IAM5\[Action::s3:GetObject\*\]"):
        synth_with(
            iam.PolicyStatement(
                actions=["s3:GetObject*"], resources=["arn:aws:s3:::someone-elses-bucket/key"]
            ),
            str(tmp_path),
        )

"""cdk-nag acknowledgments for the IAM policies CDK Pipelines generates inside the toolchain.

CDK Pipelines writes the roles of its CodeBuild projects, actions and asset publishing itself,
with `grant_*` wildcards (`s3:GetObject*`, `kms:ReEncrypt*`, per-build log streams and report
groups). Each wildcard of each policy is acknowledged on that policy only, and only when a rule
below explains it; a wildcard that no rule explains stays a finding and fails the synth.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import aws_cdk as cdk
from aws_cdk import aws_iam as iam
from aws_cdk import aws_s3 as s3

from stacks.nag import acknowledge, finding_resource
from stacks.scan_exceptions import skip_checkov


@dataclass(frozen=True)
class _Rule:
    """A finding body (`Action::...` or `Resource::...`) this rule explains, and why.

    `actions`, when given, must hold every action of the statement that carries the wildcard.
    `resources`, when given, must match every resource of that statement.
    """

    finding: re.Pattern[str]
    reason: str
    actions: frozenset[str] | None = None
    resources: re.Pattern[str] | None = None
    checkov: tuple[str, ...] = ()


_ARTIFACTS = re.compile(r"^<PipelineArtifactsBucket[A-Za-z0-9]*\.Arn>(/\*)?$")
_ARTIFACTS_KEY = re.compile(r"^<PipelineArtifactsBucketEncryptionKey[A-Za-z0-9]*\.Arn>$")
_CODEBUILD_LOGS = r"arn:aws:logs:[a-z0-9-]+:[0-9]{12}:log-group:/aws/codebuild/"
_REPORT_GROUPS = r"arn:aws:codebuild:[a-z0-9-]+:[0-9]{12}:report-group/"

_RULES: tuple[_Rule, ...] = (
    _Rule(
        re.compile(r"^Action::s3:(GetBucket|GetObject|List|DeleteObject|Abort)\*$"),
        "CDK's grant on the toolchain's artifact bucket: CodePipeline passes each action's "
        "input and output through it under names chosen per execution; no other bucket.",
        resources=_ARTIFACTS,
    ),
    _Rule(
        re.compile(r"^Resource::<PipelineArtifactsBucket[A-Za-z0-9]*\.Arn>/\*$"),
        "Objects of the toolchain's artifact bucket, named by CodePipeline per execution.",
    ),
    _Rule(
        re.compile(r"^Action::kms:(GenerateDataKey|ReEncrypt)\*$"),
        "CDK's grant on the artifact bucket's key, which encrypts the artifacts that "
        "cross accounts; the statement names that key only.",
        resources=_ARTIFACTS_KEY,
    ),
    _Rule(
        re.compile(rf"^Resource::{_CODEBUILD_LOGS}<[A-Za-z0-9]+>:\*$"),
        "Log streams of this CodeBuild project's own log group: CodeBuild names one per build.",
    ),
    _Rule(
        re.compile(rf"^Resource::{_REPORT_GROUPS}<[A-Za-z0-9]+>-\*$"),
        "Test report groups of this CodeBuild project only: CodeBuild names them per build.",
    ),
    _Rule(
        re.compile(rf"^Resource::{_CODEBUILD_LOGS}\*$"),
        "The asset publishing role is shared by every asset project CDK Pipelines generates, "
        "whose names are only known at synth: it writes CodeBuild log groups, nothing else.",
    ),
    _Rule(
        re.compile(rf"^Resource::{_REPORT_GROUPS}\*$"),
        "The asset publishing role is shared by every asset project CDK Pipelines generates: "
        "CodeBuild report groups of this account and region only.",
    ),
    _Rule(
        re.compile(r"^Resource::\*$"),
        "The asset projects start and watch their own builds; CDK Pipelines names the projects "
        "at synth and CodeBuild's batch calls take the build IDs at run time.",
        actions=frozenset(
            {"codebuild:BatchGetBuilds", "codebuild:StartBuild", "codebuild:StopBuild"}
        ),
        # checkov reads the same statement as write access without constraints.
        checkov=("CKV_AWS_111",),
    ),
    _Rule(
        re.compile(r"^Resource::\*$"),
        "Self-mutation reads the toolchain stack's state before deploying it; "
        "cloudformation:DescribeStacks and s3:ListBucket are read-only.",
        actions=frozenset({"cloudformation:DescribeStacks", "s3:ListBucket"}),
    ),
    _Rule(
        re.compile(r"^Resource::arn:\*:iam::[0-9]{12}:role/\*$"),
        "Self-mutation assumes the CDK bootstrap roles of the toolchain account, selected by "
        "their aws-cdk:bootstrap-role tag (the statement's condition), to deploy itself.",
        actions=frozenset({"sts:AssumeRole"}),
    ),
)


def acknowledge_toolchain_findings(stack: cdk.Stack) -> None:
    """Acknowledge the explained findings of every IAM policy that belongs to `stack` itself.

    Call it after `CodePipeline.build_pipeline()`, when the generated policies exist. Policies
    of the stages' stacks are not touched: they are acknowledged where they are built.
    """
    for construct in stack.node.find_all():
        if isinstance(construct, iam.Policy) and cdk.Stack.of(construct) is stack:
            skipped: set[str] = set()
            document = stack.resolve(construct.document)
            for statement in document.get("Statement", []):
                for finding in _wildcard_findings(statement):
                    rule = _explaining_rule(finding, statement)
                    if rule is None:
                        continue
                    acknowledge(construct, f"AwsSolutions-IAM5[{finding}]", rule.reason)
                    for check in set(rule.checkov) - skipped:
                        skip_checkov(construct, check, rule.reason)
                        skipped.add(check)


def acknowledge_artifact_bucket(bucket: s3.IBucket) -> None:
    """Why the artifact bucket has no access logs and no versioning, on the bucket itself."""
    why_no_logs = (
        "CDK Pipelines creates this bucket for artifacts passed between the toolchain's own "
        "actions (cross_account_keys requires that it does); it is KMS-encrypted, SSL-only and "
        "private, and CloudTrail records its use by the pipeline's roles."
    )
    acknowledge(bucket, "AwsSolutions-S1", why_no_logs)
    skip_checkov(bucket, "CKV_AWS_18", why_no_logs)
    skip_checkov(
        bucket,
        "CKV_AWS_21",
        "CodePipeline writes each artifact once under a key unique to its execution, and the "
        "source of truth is the repository: versions would keep nothing worth restoring.",
    )


def _strings(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _wildcard_findings(statement: Mapping[str, Any]) -> Iterator[str]:
    for action in _strings(statement.get("Action", [])):
        if isinstance(action, str) and "*" in action:
            yield f"Action::{action}"
    for resource in _strings(statement.get("Resource", [])):
        flat = finding_resource(resource)
        if "*" in flat:
            yield f"Resource::{flat}"


def _explaining_rule(finding: str, statement: Mapping[str, Any]) -> _Rule | None:
    actions = set(_strings(statement.get("Action", [])))
    resources = [finding_resource(r) for r in _strings(statement.get("Resource", []))]
    for rule in _RULES:
        if not rule.finding.match(finding):
            continue
        if rule.actions is not None and not actions <= rule.actions:
            continue
        if rule.resources is not None and not all(rule.resources.match(r) for r in resources):
            continue
        return rule
    return None

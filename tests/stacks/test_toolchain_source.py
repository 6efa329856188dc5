"""The toolchain's source action may use the configured connection, whichever service prefix
its ARN carries: IAM applies `<prefix>:UseConnection` only to a connection ARN of that prefix.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aws_cdk as cdk
from aws_cdk.assertions import Template

from pipeline.config import read_cdk_json
from stacks.cli_versions import read_cli_versions
from stacks.toolchain_stack import ToolchainStack
from tests.cloud_assembly import CLI_CONTEXT, Assembly, cdk_json_context

CODECONNECTIONS = "arn:aws:codeconnections:us-east-1:444444444444:connection/abc-123"
CODESTAR = "arn:aws:codestar-connections:us-east-1:444444444444:connection/abc-123"


def toolchain_with(connection_arn: str, outdir: Path) -> dict[str, Any]:
    """The toolchain template for cdk.json's toolchain with `connection_arn`, deploying dev."""
    project = read_cdk_json()
    assert project.toolchain is not None
    app = cdk.App(context=cdk_json_context(CLI_CONTEXT), outdir=str(outdir))
    stack = ToolchainStack(
        app,
        "Toolchain",
        config=dataclasses.replace(project.toolchain, connection_arn=connection_arn),
        stages=[project.environment("dev")],
        versions=read_cli_versions(),
    )
    return dict(Template.from_stack(stack).to_json())


def connection_grants(template: Mapping[str, Any]) -> set[tuple[str, str]]:
    """(action, resource) of every `*:UseConnection` the source action's role holds."""
    resources = template["Resources"]
    (pipeline,) = [r for r in resources.values() if r["Type"] == "AWS::CodePipeline::Pipeline"]
    (stage,) = [s for s in pipeline["Properties"]["Stages"] if s["Name"] == "Source"]
    (action,) = stage["Actions"]
    role_id = action["RoleArn"]["Fn::GetAtt"][0]
    grants: set[tuple[str, str]] = set()
    for policy in resources.values():
        if policy["Type"] != "AWS::IAM::Policy":
            continue
        if {"Ref": role_id} not in policy["Properties"]["Roles"]:
            continue
        for statement in policy["Properties"]["PolicyDocument"]["Statement"]:
            found = statement["Action"]
            for name in found if isinstance(found, list) else [found]:
                if name.endswith(":UseConnection"):
                    assert "Condition" not in statement
                    grants.add((name, statement["Resource"]))
    return grants


def test_a_codeconnections_arn_is_granted_the_codeconnections_action(
    tmp_path: Path,
) -> None:
    assert connection_grants(toolchain_with(CODECONNECTIONS, tmp_path)) == {
        ("codeconnections:UseConnection", CODECONNECTIONS),
        # CDK's own grant, made whatever the ARN: it matches no codeconnections ARN, but
        # removing it would mean editing CDK's policy document.
        ("codestar-connections:UseConnection", CODECONNECTIONS),
    }


def test_a_codestar_connections_arn_is_granted_the_codestar_connections_action(
    tmp_path: Path,
) -> None:
    assert connection_grants(toolchain_with(CODESTAR, tmp_path)) == {
        ("codestar-connections:UseConnection", CODESTAR),
    }


def test_the_projects_toolchain_may_use_its_configured_connection(assembly: Assembly) -> None:
    toolchain = read_cdk_json().toolchain
    assert toolchain is not None
    prefix = toolchain.connection_arn.split(":")[2]
    grants = connection_grants(assembly.toolchain_json())
    assert (f"{prefix}:UseConnection", toolchain.connection_arn) in grants
    assert {resource for _, resource in grants} == {toolchain.connection_arn}

"""app.py: the environments come from cdk.json, a bad cdk.json stops synth, cdk-nag gates it."""

from __future__ import annotations

import dataclasses
import json
import re
from pathlib import Path
from typing import Any

import aws_cdk as cdk
import pytest
from aws_cdk import aws_s3 as s3

import app as app_module
from pipeline.config import CDK_JSON, ProjectConfig, read_cdk_json
from stacks.stage import NovaSftStage
from tests.cloud_assembly import cdk_json_context


def exit_message(tmp_path: Path, context: dict[str, Any]) -> str:
    """What app.py exits with when cdk.json holds `context` (the rest as in the project's)."""
    document = json.loads(CDK_JSON.read_text(encoding="utf-8"))
    document["context"] = context
    changed = tmp_path / "cdk.json"
    changed.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(SystemExit) as raised:
        app_module.main(changed)
    return str(raised.value.code)


def app_in(tmp_path: Path, extra_context: dict[str, Any] | None = None) -> cdk.App:
    """An app with the project's cdk.json context (and `extra_context`), writing to tmp_path."""
    return cdk.App(context=cdk_json_context(extra_context), outdir=str(tmp_path / "out"))


def test_cdk_context_drops_null_members_so_the_app_reads_cdk_json() -> None:
    # Why app.py parses cdk.json itself: through CDK context, the sandbox's "account": null
    # would arrive as a missing key. If this ever stops failing, context could be used again.
    app = cdk.App(context={"nova-sft": {"environments": {"sandbox": {"account": None}}}})
    assert app.node.try_get_context("nova-sft") == {"environments": {"sandbox": {}}}


def test_unknown_key_in_cdk_json_stops_the_app_with_a_clear_message(tmp_path: Path) -> None:
    context = cdk_json_context()
    context["nova-sft"]["environments"]["dev"]["instance_typo"] = "ml.p5.48xlarge"
    message = exit_message(tmp_path, context)
    assert message.startswith("error: cdk.json context 'nova-sft.environments.dev'")
    assert "unknown key(s) instance_typo" in message


def test_missing_cdk_json_stops_the_app_with_a_clear_message(tmp_path: Path) -> None:
    with pytest.raises(SystemExit, match="not found: run the command from the project's root"):
        app_module.main(tmp_path / "cdk.json")


def test_an_unacknowledged_finding_fails_synth(tmp_path: Path) -> None:
    sandbox = read_cdk_json().environment("sandbox")
    app = app_in(tmp_path, {"@aws-cdk/core:validationReportJson": True})
    app_module.build_app(
        app, ProjectConfig(default_environment="sandbox", environments={"sandbox": sandbox})
    )
    stage = app.node.find_child("sandbox")
    assert isinstance(stage, NovaSftStage)
    s3.Bucket(stage.data, "Unsafe")  # no SSL policy, no access logs
    with pytest.raises(RuntimeError, match="ValidationFailed") as raised:
        app.synth()
    message = str(raised.value)
    assert "AwsSolutions-S10" in message
    assert "AwsSolutions-S1'" in message
    # Only the bucket added here is flagged: everything the app builds is clean or acknowledged.
    flagged = set(re.findall(r"^\s+(\S+/Resource) ", message, flags=re.MULTILINE))
    assert flagged == {"sandbox/Data/Unsafe/Resource"}


def test_a_bad_toolchain_in_cdk_json_stops_the_app_with_a_clear_message(tmp_path: Path) -> None:
    context = cdk_json_context()
    context["nova-sft"]["toolchain"] = {
        "account": "444444444444",
        "region": "us-east-1",
        "connection_arn": "arn:aws:codeconnections:us-east-1:444444444444:connection/abc-123",
        "repository": "example-org/nova-sft-pipeline",
        "branch": "main",
        "stages": ["dev", "qa"],
        "manual_approval_before": [],
    }
    message = exit_message(tmp_path, context)
    assert message.startswith("error: cdk.json context 'nova-sft.toolchain'")
    assert "stage 'qa' is not an environment" in message


def test_without_the_toolchains_environments_no_toolchain_is_built(tmp_path: Path) -> None:
    # A partial synth (the sandbox alone, as the local rehearsal does) builds no toolchain and
    # so needs no CLI pins.
    project = read_cdk_json()
    sandbox_only = dataclasses.replace(
        project, environments={"sandbox": project.environment("sandbox")}
    )
    app = app_in(tmp_path)
    app_module.build_app(app, sandbox_only)
    assert [child.node.id for child in app.node.children if isinstance(child, cdk.Stage)] == [
        "sandbox"
    ]
    assert app.node.try_find_child(app_module.TOOLCHAIN_ID) is None

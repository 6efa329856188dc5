"""The sessions of one command: the account behind the credentials is asked for once."""

from __future__ import annotations

from pathlib import Path

import boto3
import pytest

from tests.pipeline.commands.helpers import deploy, environment, register, run_cli


def test_sts_is_asked_once_per_command_when_cdk_json_names_no_account(
    aws: boto3.Session,
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
    aws_calls: list[str],
) -> None:
    # sandbox names no account, so a version number needs the caller's account to make its
    # ARN; the check of the credentials has already asked for it.
    env = environment(cdk_json, "sandbox")
    deploy(aws, env)
    one = register(aws, env, "job-one")
    register(aws, env, "job-two", parent=one.checkpoint_uri)
    common = ("--env", "sandbox", "--cdk-json", str(cdk_json))
    outputs = {}
    for argv in (
        ("lineage", "2", *common),
        ("metrics", "1", "2", "job-one", *common),
        ("approve", "1", "--override-gate", "no score yet", *common),
    ):
        aws_calls.clear()
        status, out, err = run_cli(capsys, *argv)
        assert (status, err) == (0, ""), argv
        assert aws_calls.count("sts.GetCallerIdentity") == 1, argv
        outputs[argv[0]] = out
    assert outputs["approve"] == (
        f"{one.model_package_arn}: Approved\nScore: none (never evaluated)\n"
        "Gate overridden: no score yet\n"
    )

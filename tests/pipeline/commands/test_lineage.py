"""`lineage` draws the registry as a tree, each run under the checkpoint it continued from."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.pipeline.commands.helpers import deploy, environment, register, run_cli


def test_lineage_nests_each_run_under_the_checkpoint_it_continued_from(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    one = register(aws, env, "job-one", approval="Approved", losses=(2.0, 1.5))
    register(aws, env, "job-two", parent=one.checkpoint_uri, losses=(1.4, 1.1, 0.9))
    register(aws, env, "job-three", technique="FullRank", approval="Rejected")

    status, out, _ = run_cli(capsys, "lineage", "--env", "dev", "--cdk-json", str(cdk_json))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "Checkpoints of dev (nova-sft-dev-checkpoints):"
    assert lines[1] == "nova-lite-2/prod"
    assert lines[2].startswith("├─ v1 Approved LoRA 2 steps loss 1.5000 ")
    assert lines[3].startswith("│  └─ v2 PendingManualApproval LoRA 3 steps loss 0.9000 ")
    assert lines[4].startswith("└─ v3 Rejected FullRank 4 steps loss 1.0000 ")
    assert lines[4].endswith("/job-three/step_4")


def test_lineage_of_a_package_keeps_its_ancestors_and_descendants_only(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    one = register(aws, env, "job-one")
    two = register(aws, env, "job-two", parent=one.checkpoint_uri)
    register(aws, env, "job-three", parent=two.checkpoint_uri)
    register(aws, env, "job-four")  # another line from the base model
    status, out, _ = run_cli(
        capsys,
        "lineage",
        two.model_package_arn,
        "--cdk-json",
        str(cdk_json),
        "--env",
        "dev",
        "--json",
    )
    assert status == 0
    [root] = json.loads(out)["roots"]
    assert root["started_from"] == "nova-lite-2/prod"
    [first] = root["checkpoints"]
    chain = [first["version"], first["children"][0]["version"]]
    chain.append(first["children"][0]["children"][0]["version"])
    assert chain == [1, 2, 3]
    assert first["children"][0]["parent"] == one.checkpoint_uri


def test_lineage_of_an_empty_group_says_so(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    status, out, _ = run_cli(capsys, "lineage", "--env", "dev", "--cdk-json", str(cdk_json))
    assert (status, out) == (0, "No checkpoints in nova-sft-dev-checkpoints yet.\n")

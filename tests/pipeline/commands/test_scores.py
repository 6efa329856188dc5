"""Scores in the operator commands: lineage and metrics show them, approve respects the gate."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from tests.pipeline.commands.helpers import deploy, environment, register, run_cli

ROUND_ONE = {"rougeL": 0.4301, "rougeL_stderr": 0.0118, "bleu": 21.7}
ROUND_TWO = {"rougeL": 0.4501, "rougeL_stderr": 0.0101, "bleu": 22.9}
GATE = {"GateMetric": "rougeL", "GateThreshold": 0.3, "GateRequiresImprovement": True}


def two_rounds(session: boto3.Session, cdk_json: Path) -> None:
    env = environment(cdk_json, "dev")
    deploy(session, env)
    one = register(session, env, "job-one", scores=ROUND_ONE, gate={**GATE, "GateThreshold": 0.5})
    register(session, env, "job-two", parent=one.checkpoint_uri, scores=ROUND_TWO, gate=GATE)


def cli(capsys: pytest.CaptureFixture[str], cdk_json: Path, *argv: str) -> tuple[int, str, str]:
    return run_cli(capsys, *argv, "--env", "dev", "--cdk-json", str(cdk_json))


def test_lineage_shows_each_score_its_change_and_the_verdict(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_rounds(aws, cdk_json)
    status, out, _ = cli(capsys, cdk_json, "lineage")
    assert status == 0
    lines = out.splitlines()
    assert lines[2].startswith("└─ v1 Rejected LoRA")
    assert (
        lines[3]
        .strip()
        .startswith(
            "score: gen_qa rougeL 0.4301 (no comparable parent score); "
            "gate: rejected: rougeL 0.4301 lt threshold 0.5"
        )
    )
    assert lines[4].startswith("   └─ v2 PendingManualApproval LoRA")
    assert lines[5].strip() == (
        "score: gen_qa rougeL 0.4501 (+0.02 vs parent 0.4301); "
        "gate: passed: rougeL 0.4501 ge 0.3 beats the parent score 0.4301"
    )
    status, out, _ = cli(capsys, cdk_json, "lineage", "--json")
    [root] = json.loads(out)["roots"]
    child = root["checkpoints"][0]["children"][0]
    assert child["evaluation"]["change"] == pytest.approx(0.02)
    assert child["evaluation"]["metrics"] == {"bleu": 22.9, "rougeL": 0.4501}


def test_metrics_show_scores_next_to_the_loss_and_plot_them(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    two_rounds(aws, cdk_json)
    plot = tmp_path / "runs.png"
    status, out, err = cli(capsys, cdk_json, "metrics", "1", "2", "--plot", str(plot))
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[0].endswith("; score gen_qa rougeL 0.4301")
    assert lines[1].endswith("; score gen_qa rougeL 0.4501 (+0.02 vs parent)")
    assert plot.stat().st_size > 10_000


def test_approve_takes_a_checkpoint_that_passed_its_gate(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_rounds(aws, cdk_json)
    status, out, err = cli(capsys, cdk_json, "approve", "2")
    assert (status, err) == (0, "")
    assert out.splitlines()[1].startswith(
        "Score: gen_qa rougeL 0.4501 (+0.02 vs parent); gate: passed"
    )


def test_approve_refuses_a_failed_gate_unless_overridden_with_a_reason(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    two_rounds(aws, cdk_json)
    sm = aws.client("sagemaker")
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/nova-sft-dev-checkpoints/1"
    status, _, err = cli(capsys, cdk_json, "approve", "1")
    assert status == 1
    assert "failed its quality gate: rejected: rougeL 0.4301 lt threshold 0.5" in err
    assert '--override-gate "..."' in err
    assert sm.describe_model_package(ModelPackageName=arn)["ModelApprovalStatus"] == "Rejected"

    status, _, err = cli(capsys, cdk_json, "approve", "1", "--override-gate", " ")
    assert status == 2
    assert "--override-gate needs a reason" in err

    status, out, _ = cli(capsys, cdk_json, "approve", "1", "--override-gate", "judged by reviewers")
    assert status == 0
    assert out.splitlines()[-1] == "Gate overridden: judged by reviewers"
    described = sm.describe_model_package(ModelPackageName=arn)
    assert described["ModelApprovalStatus"] == "Approved"
    assert described["ApprovalDescription"].startswith("Gate overridden: judged by reviewers (")


def test_approve_refuses_a_checkpoint_without_a_score(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    record = register(aws, env, "job-one")
    status, _, err = cli(capsys, cdk_json, "approve", "1")
    assert status == 1
    assert "has no score: evaluate it first" in err
    described = aws.client("sagemaker").describe_model_package(
        ModelPackageName=record.model_package_arn
    )
    assert described["ModelApprovalStatus"] == "PendingManualApproval"

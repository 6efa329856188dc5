"""`make demo`'s serving: round 2's checkpoint approved, served by the state machine read from
cdk.out on the stand-in Bedrock, answering a prompt, then rejected and taken down."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.rehearsal.options import Options
from pipeline.rehearsal.run import rehearse
from pipeline.rehearsal.serving import serving_rule_pattern
from tests.cloud_assembly import Assembly


@pytest.fixture(scope="module")
def cdk_out(assembly: Assembly) -> Path:
    return assembly.outdir


def test_the_rehearsal_serves_round_twos_checkpoint_then_takes_it_down(
    cdk_out: Path, tmp_path: Path
) -> None:
    lines: list[str] = []
    result = rehearse(
        Options(cdk_out=cdk_out, out_dir=tmp_path, plot=False, other_technique_round=False),
        log=lines.append,
    )
    assert result.succeeded
    serving = result.serving
    assert serving is not None
    assert serving.package_arn == result.lineage[0].model_package_arn
    (approve, approved, after_approval), (reject, rejected, after_rejection) = serving.executions
    assert (approve, approved.status, after_approval["ServingStatus"]) == (
        "approve",
        "SUCCEEDED",
        "Deployed",
    )
    assert "ImportModel" in approved.states
    assert "WaitForModel" in approved.states  # it waited for the import on the clock
    assert after_approval["ServingDeploymentArn"].startswith(
        "arn:aws:bedrock:us-east-1:123456789012:custom-model-deployment/"
    )
    assert serving.answers == 1
    assert (reject, rejected.status, after_rejection["ServingStatus"]) == (
        "reject",
        "SUCCEEDED",
        "TakenDown",
    )
    assert "DeleteDeployment" in rejected.states
    assert any(line.startswith("  deployments left: none; custom models kept:") for line in lines)


def test_without_serving_the_rehearsal_serves_nothing(cdk_out: Path, tmp_path: Path) -> None:
    result = rehearse(
        Options(
            cdk_out=cdk_out,
            out_dir=tmp_path,
            plot=False,
            other_technique_round=False,
            serving=False,
        ),
        log=lambda _line: None,
    )
    assert result.succeeded
    assert result.serving is None


def test_the_rule_that_starts_serving_is_read_from_the_templates(cdk_out: Path) -> None:
    pattern = serving_rule_pattern(cdk_out, "sandbox")
    assert pattern["detail"]["ModelApprovalStatus"] == ["Approved", "Rejected"]
    assert json.dumps(pattern).count("nova-sft-sandbox-checkpoints") == 1

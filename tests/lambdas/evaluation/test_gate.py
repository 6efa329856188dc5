"""The quality gate (lambdas/evaluation/gate.py): higher is better, never approves."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from lambdas.evaluation import Comparison, Gate, decide
from lambdas.evaluation.gate import verdict_entry
from lambdas.evaluation.parent import missing_baseline
from lambdas.registry import metadata_problem

PENDING = "PendingManualApproval"
PARENT = Comparison("s3://escrow/job-1/step_100", {"rougeL": 0.41}, "arn:parent")
NO_PARENT = Comparison("nova-lite-2/prod", reason="no baseline of nova-lite-2/prod")


def test_no_gate_keeps_the_requested_status() -> None:
    verdict = decide(None, "rougeL", 0.2, PARENT, PENDING)
    assert verdict.passed is None
    assert verdict.status == PENDING
    assert verdict.text == "no gate: rougeL 0.2"


def test_a_score_at_the_threshold_passes_and_stays_pending() -> None:
    verdict = decide(Gate("rougeL", 0.3), "rougeL", 0.3, NO_PARENT, PENDING)
    assert verdict.passed is True
    assert verdict.status == PENDING
    assert verdict.text == "passed: rougeL 0.3 >= 0.3"
    assert verdict.description == ""


def test_a_score_below_the_threshold_is_rejected_with_the_reason() -> None:
    verdict = decide(Gate("rougeL", 0.3), "rougeL", 0.25, PARENT, PENDING)
    assert verdict.passed is False
    assert verdict.status == "Rejected"
    assert verdict.text == "rejected: rougeL 0.25 < threshold 0.3"
    assert "rougeL 0.25 < threshold 0.3" in verdict.description
    assert "--override-gate" in verdict.description


def test_improvement_required_and_beaten() -> None:
    verdict = decide(Gate("rougeL", 0.3, True), "rougeL", 0.43, PARENT, PENDING)
    assert verdict.passed is True
    assert verdict.text == "passed: rougeL 0.43 >= 0.3, beats the parent score 0.41"


def test_improvement_required_and_equal_is_rejected_naming_the_parent_value() -> None:
    verdict = decide(Gate("rougeL", 0.3, True), "rougeL", 0.41, PARENT, PENDING)
    assert verdict.status == "Rejected"
    assert "rougeL 0.41 does not beat the parent score 0.41 (arn:parent)" in verdict.text


def test_improvement_required_without_a_comparable_parent_score_is_rejected() -> None:
    verdict = decide(Gate("rougeL", 0.3, True), "rougeL", 0.9, NO_PARENT, PENDING)
    assert verdict.status == "Rejected"
    assert "no comparable parent score (no baseline of nova-lite-2/prod)" in verdict.text


def test_a_parent_without_the_gate_metric_is_no_comparable_score() -> None:
    parent = Comparison("s3://escrow/job-1/step_100", {"bleu": 20.0}, "arn:parent")
    verdict = decide(Gate("rougeL", 0.3, True), "rougeL", 0.9, parent, PENDING)
    assert "the parent's evaluation (arn:parent) has no rougeL" in verdict.text


def test_the_verdict_fits_the_registry_metadata_alphabet() -> None:
    verdict = decide(Gate("rougeL", 0.3, True), "rougeL", 0.2, PARENT, PENDING)
    entry = verdict_entry(verdict.text)
    assert metadata_problem("GateVerdict", entry) is None
    assert entry.startswith("rejected: rougeL 0.2 lt threshold 0.3")


@pytest.mark.parametrize(
    ("code", "missing"),
    [
        ("NoSuchKey", True),
        ("AccessDenied", True),  # S3's answer to a missing key without s3:ListBucket
        ("KMS.AccessDeniedException", False),
        ("SlowDown", False),
    ],
)
def test_a_baseline_that_is_not_there_is_no_comparable_score(code: str, missing: bool) -> None:
    error = ClientError({"Error": {"Code": code, "Message": "m"}}, "GetObject")
    found = missing_baseline(error, "nova-lite-2/prod", "gen_qa", "a" * 64, "s3://b/k.json")
    assert (found is not None) == missing
    if found is not None:
        assert found.scores == {}
        assert "python -m pipeline evaluate --base-model" in found.why_not("rougeL")

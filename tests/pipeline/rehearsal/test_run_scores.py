"""The rehearsal prints each evaluated version's score under it and plots the scores."""

from __future__ import annotations

from pathlib import Path

from lambdas.checkpoint import LossSummary
from lambdas.registry import CheckpointRecord
from pipeline.commands import LossCurve
from pipeline.rehearsal.run import _log_lineage, _with_scores

BASE = "nova-lite-2/prod"


def record(version: int, parent: str, **scores: str) -> CheckpointRecord:
    return CheckpointRecord(
        model_package_arn=f"arn:aws:sagemaker:us-east-1:123456789012:model-package/g/{version}",
        version=version,
        approval_status="PendingManualApproval",
        creation_time=None,
        metadata={
            "CheckpointS3Uri": f"s3://escrow/job-{version}/step_4",
            "ParentModel": parent,
            "TrainingJobName": f"job-{version}",
            "Technique": "LoRA",
            "FinalTrainingLoss": "1.0",
            **scores,
        },
    )


SCORED = {
    "EvaluationTask": "gen_qa",
    "EvaluationMetric": "rougeL",
    "EvaluationScore": "0.45",
    "ParentEvaluationScore": "0.43",
    "EvaluationScoreChange": "+0.02",
    "GateVerdict": "passed: rougeL 0.45 ge 0.3",
    "Metric.rougeL": "0.45 stderr 0.01",
}


def test_the_lineage_log_shows_each_score_and_its_change() -> None:
    first = record(1, BASE)
    second = record(2, first.checkpoint_uri, **SCORED)
    lines: list[str] = []
    _log_lineage([second, first], lines.append)
    assert lines[2].startswith("  └─ v1 s3://escrow/job-1/step_4")
    assert lines[3].startswith("     └─ v2 s3://escrow/job-2/step_4")
    assert lines[4] == (
        "        score: gen_qa rougeL 0.45 (+0.02 vs parent 0.43); gate: passed: rougeL 0.45 ge 0.3"
    )
    assert len(lines) == 5  # v1 was not evaluated: no score line


def test_the_plot_gets_the_scores_of_the_runs_checkpoints(tmp_path: Path) -> None:
    summary = LossSummary(4, 2.0, 1.0, 1.0)
    curves = [
        LossCurve("run 1", "job-1", "s3://a", ((1, 2.0), (4, 1.0)), summary),
        LossCurve("run 2", "job-2", "s3://b", ((1, 2.0), (4, 1.0)), summary),
    ]
    scored = _with_scores(
        curves, [record(2, "s3://escrow/job-1/step_4", **SCORED), record(1, BASE)]
    )
    assert scored[0].score is None
    assert scored[1].score is not None
    assert scored[1].score.score == 0.45

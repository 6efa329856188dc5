"""The steps' evaluation inputs (lambdas/evaluation/inputs.py), as the pipeline passes them."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas.evaluation import EvaluationInputs, Gate

EVENT: dict[str, Any] = {
    "EvaluationTask": "gen_qa",
    "EvaluationJobName": "eval-job-1",
    "EvaluationModelArtifactsS3Uri": "s3://art/runs/x/evaluation/eval-job-1/output/model.tar.gz",
    "EvaluationDataS3Uri": "s3://data/eval/gen_qa.jsonl",
    "EvaluationDataSha256": "b" * 64,
    "EvaluationRunName": "eval-run",
    "EvaluationReportS3Uri": "s3://art/runs/x/evaluation/statistics.json",
    "BaselineS3Prefix": "s3://art/baselines/",
}


@pytest.mark.parametrize(
    ("threshold", "improve", "expected"),
    [
        (0.3, False, Gate("rougeL", 0.3, False)),
        ("0.3", "true", Gate("rougeL", 0.3, True)),
        (1, "False", Gate("rougeL", 1.0, False)),
    ],
)
def test_gate_values_as_numbers_or_text(threshold: Any, improve: Any, expected: Gate) -> None:
    event = {
        **EVENT,
        "GateMetric": "rougeL",
        "GateThreshold": threshold,
        "GateRequiresImprovement": improve,
    }
    inputs = EvaluationInputs.from_event(event, with_gate=True)
    assert inputs is not None
    assert inputs.gate == expected
    assert inputs.output_archive_uri.endswith("/eval-job-1/output/output.tar.gz")


def test_a_benchmark_has_no_data_and_the_record_step_no_gate() -> None:
    event = {
        **EVENT,
        "EvaluationTask": "mmlu",
        "EvaluationDataS3Uri": "none",
        "EvaluationDataSha256": "none",
        "GateMetric": "accuracy",
    }
    inputs = EvaluationInputs.from_event(event, with_gate=False)
    assert inputs is not None
    assert (inputs.data_uri, inputs.data_sha256, inputs.gate) == ("", "", None)


def test_not_evaluated_reads_nothing_else() -> None:
    assert EvaluationInputs.from_event({"EvaluationTask": "none"}, with_gate=True) is None
    assert EvaluationInputs.from_event({}, with_gate=True) is None


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"GateRequiresImprovement": "yes"}, "must be true or false"),
        ({"GateMetric": "none", "GateRequiresImprovement": True}, "name the metric"),
        ({"GateThreshold": "nan"}, "must be a finite number"),
        ({"GateThreshold": True}, "must be a finite number"),
        ({"EvaluationModelArtifactsS3Uri": "none"}, "EvaluationModelArtifactsS3Uri is missing"),
        ({"BaselineS3Prefix": "s3://art/baselines"}, "must be an s3://bucket/prefix/"),
        ({"EvaluationTask": "Gen QA"}, "not a task name"),
    ],
)
def test_bad_inputs_are_named(change: dict[str, Any], expected: str) -> None:
    event = {**EVENT, "GateMetric": "rougeL", "GateThreshold": 0.3, **change}
    with pytest.raises(ValueError, match=expected):
        EvaluationInputs.from_event(event, with_gate=True)

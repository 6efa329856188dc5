"""Scoring a model from its evaluation job's output: read, compare, judge, report.

`assess(...)` is what both the register step and the record step do with an evaluation: stream
the results from the job's output.tar.gz (`results`), find the parent's comparable scores
(`parent`), judge the gate's metric (`gate`), write the statistics report to
`EvaluationReportS3Uri`, and return the metadata entries for the package (`scores`). It writes
the report before anything is registered or updated, so a package never points to a missing
report; any problem raises before the report is written, naming the object and the fix.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from lambdas.evaluation import scores
from lambdas.evaluation.gate import Verdict, decide, verdict_entry
from lambdas.evaluation.inputs import EvaluationInputs
from lambdas.evaluation.parent import Comparison, write_json
from lambdas.evaluation.results import (
    EvaluationResults,
    EvaluationResultsError,
    read_evaluation_results,
)
from lambdas.registry.errors import RegistrationError
from lambdas.registry.registration import read_s3_archive

REPORT_SCHEMA = "nova-sft-evaluation-statistics/1"
REPORT_CONTENT_TYPE = "application/json"


def read_results(s3: Any, inputs: EvaluationInputs) -> EvaluationResults:
    """Stream the evaluation job's output.tar.gz from S3 and read its scores."""
    uri = inputs.output_archive_uri
    return read_s3_archive(
        s3,
        uri,
        missing=(
            f"evaluation job {inputs.job_name} left no output archive beside "
            f"{inputs.artifacts_uri}; check that the evaluation job completed"
        ),
        read=lambda stream: read_evaluation_results(stream, source=uri, run_name=inputs.run_name),
    )


@dataclass(frozen=True)
class Assessment:
    """What an evaluation says about a model, and what is recorded of it."""

    inputs: EvaluationInputs
    results: EvaluationResults
    metric: str
    score: float
    comparison: Comparison
    verdict: Verdict
    report: dict[str, Any]
    entries: dict[str, str]

    @property
    def change(self) -> float | None:
        return self.comparison.change(self.metric, self.score)

    def outputs(self) -> dict[str, str]:
        """EvaluationScore, GateVerdict and ScoreChange, as the steps return them."""
        return {
            "EvaluationScore": scores.number_text(self.score),
            "GateVerdict": self.verdict.text,
            "ScoreChange": scores.change_text(self.change),
        }

    def model_metrics(self) -> dict[str, Any]:
        """CreateModelPackage's ModelMetrics: the statistics report, where the registry shows it."""
        return {
            "ModelQuality": {
                "Statistics": {
                    "ContentType": REPORT_CONTENT_TYPE,
                    "S3Uri": self.inputs.report_uri,
                }
            }
        }


NOT_EVALUATED_OUTPUTS = {
    "EvaluationScore": scores.NOT_EVALUATED,
    "GateVerdict": "not evaluated",
    "ScoreChange": scores.NOT_EVALUATED,
}


def build_report(
    *,
    inputs: EvaluationInputs,
    results: EvaluationResults,
    metric: str,
    comparison: Comparison,
    verdict: Verdict,
    model: str,
    model_package_arn: str,
    pipeline_execution_arn: str,
) -> dict[str, Any]:
    """The statistics report: every metric with its stderr (as value and standard_deviation,
    the pair SageMaker's model quality statistics use), the parent's values and the changes,
    the gate, and where each number came from. No timestamp: a rerun writes the same bytes."""
    value = results.metrics[metric]
    changes = {
        name: comparison.change(name, v)
        for name, v in sorted(results.metrics.items())
        if comparison.value(name) is not None
    }
    return {
        "schema": REPORT_SCHEMA,
        "model": model,
        "model_package_arn": model_package_arn or None,
        "pipeline_execution_arn": pipeline_execution_arn or None,
        "task": inputs.task,
        "evaluation_data": {
            "s3_uri": inputs.data_uri or None,
            "sha256": inputs.data_sha256 or None,
        },
        "evaluation_job": inputs.job_name,
        "results": {
            "archive": results.source,
            "member": results.member,
            "timestamp": results.timestamp,
            "ignored": list(results.ignored),
            "note": results.note() or None,
        },
        "metrics": {
            name: {"value": v, "standard_deviation": results.stderr.get(name)}
            for name, v in sorted(results.metrics.items())
        },
        "primary_metric": metric,
        "score": value,
        "parent": {
            "model": comparison.parent or None,
            "source": comparison.source or None,
            "scores": dict(sorted(comparison.scores.items())),
            "score": comparison.value(metric),
            "change": comparison.change(metric, value),
            "changes": changes,
            "no_comparable_score": comparison.why_not(metric) or None,
        },
        "gate": {
            "verdict": verdict.text,
            "passed": verdict.passed,
            "status": verdict.status,
            "approval_description": verdict.description or None,
        },
    }


def assess(
    sm: Any,
    s3: Any,
    *,
    inputs: EvaluationInputs,
    model: str,
    comparison_of: Any,
    requested_status: str,
    pipeline_execution_arn: str,
    room: int,
    model_package_arn: str = "",
) -> Assessment:
    """Read, compare, judge and report an evaluation (module docstring).

    `comparison_of(metric)` returns the parent's Comparison (called once the results are read,
    so that a broken results file costs no registry lookup); `room` is how many metadata
    entries the scores may take.
    """
    results = read_results(s3, inputs)
    gate_metric = inputs.gate.metric if inputs.gate is not None else ""
    if gate_metric and gate_metric not in results.metrics:
        raise EvaluationResultsError(
            f"the gate's metric {gate_metric} is not in results.all of {results.member!r} in "
            f"{results.source} (metrics: {', '.join(sorted(results.metrics))}); set GateMetric "
            f"to one of them for task {inputs.task}, and run again"
        )
    metric = scores.primary_metric(inputs.task, results.metrics, gate_metric)
    value = results.metrics[metric]
    comparison: Comparison = comparison_of(metric)
    verdict = decide(inputs.gate, metric, value, comparison, requested_status)
    report = build_report(
        inputs=inputs,
        results=results,
        metric=metric,
        comparison=comparison,
        verdict=verdict,
        model=model,
        model_package_arn=model_package_arn,
        pipeline_execution_arn=pipeline_execution_arn,
    )
    parent_value = comparison.value(metric)
    fixed = {
        scores.KEY_TASK: inputs.task,
        scores.KEY_DATA: inputs.data_uri,
        scores.KEY_DATA_SHA256: inputs.data_sha256,
        scores.KEY_JOB: inputs.job_name,
        scores.KEY_REPORT: inputs.report_uri,
        scores.KEY_METRIC: metric,
        scores.KEY_SCORE: scores.number_text(value),
        scores.KEY_PARENT_SCORE: (
            scores.NOT_EVALUATED if parent_value is None else scores.number_text(parent_value)
        ),
        scores.KEY_CHANGE: scores.change_text(comparison.change(metric, value)),
    }
    if verdict.passed is not None:
        fixed[scores.KEY_VERDICT] = verdict_entry(verdict.text)
    try:
        entries = scores.score_entries(
            fixed=fixed,
            metrics=results.metrics,
            stderr=results.stderr,
            primary=metric,
            room=room,
        )
    except ValueError as error:
        raise RegistrationError(f"{error}; nothing was recorded") from None
    write_json(s3, inputs.report_uri, report)
    return Assessment(inputs, results, metric, value, comparison, verdict, report, entries)

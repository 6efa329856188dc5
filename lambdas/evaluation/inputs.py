"""The evaluation inputs of the register and record steps, parsed and checked.

The pipeline passes them as strings (the literal `none` where a branch did not evaluate);
`GateThreshold` arrives as a number or its text, `GateRequiresImprovement` as a boolean or
`true`/`false`. `EvaluationInputs.from_event(event, with_gate=...)` returns None when the event
carries no `EvaluationTask` or `none`: nothing was evaluated, and nothing of it is read.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.recipe.validation import is_s3_uri

NONE = "none"
TASK_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
METRIC_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
RUN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
JOB_NAME = re.compile(r"[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}")
SHA256 = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True)
class Gate:
    """A run's quality gate: `metric` must be >= `threshold` and, with `requires_improvement`,
    greater than the parent's comparable score (lambdas.evaluation.gate)."""

    metric: str
    threshold: float
    requires_improvement: bool = False


@dataclass(frozen=True)
class EvaluationInputs:
    """What was evaluated and where its outputs are. Optional values are "" when `none`."""

    task: str
    job_name: str
    artifacts_uri: str
    run_name: str
    report_uri: str
    baseline_prefix: str
    data_uri: str = ""
    data_sha256: str = ""
    gate: Gate | None = None

    @property
    def output_archive_uri(self) -> str:
        """The evaluation job's output.tar.gz, beside its model.tar.gz."""
        return self.artifacts_uri.rsplit("/", 1)[0] + "/output.tar.gz"

    @classmethod
    def from_event(cls, event: Mapping[str, Any], *, with_gate: bool) -> EvaluationInputs | None:
        """Parse the evaluation inputs; None when not evaluated. ValueError lists every problem."""
        task = str(event.get("EvaluationTask") or NONE).strip()
        gate_metric = str(event.get("GateMetric") or NONE).strip() if with_gate else NONE
        if task == NONE:
            if gate_metric != NONE:
                raise ValueError(
                    f"GateMetric={gate_metric!r} but EvaluationTask is none: a gate needs a "
                    "score; set EvaluationTask, or GateMetric to none"
                )
            return None
        problems: list[str] = []

        def text(
            key: str, pattern: re.Pattern[str] | None, rule: str, optional: bool = False
        ) -> str:
            value = event.get(key)
            shown = str(value).strip() if value is not None else ""
            if optional and shown in ("", NONE):
                return ""
            if not shown or shown == NONE:
                problems.append(f"{key} is missing: the register step passes it when it evaluates")
                return ""
            if pattern is not None and not pattern.fullmatch(shown):
                problems.append(f"{key}={shown[:200]!r}: {rule}")
            return shown

        if not TASK_NAME.fullmatch(task):
            problems.append(f"EvaluationTask={task[:80]!r}: not a task name (e.g. gen_qa, mmlu)")
        job = text("EvaluationJobName", JOB_NAME, "not a training job name")
        artifacts = text("EvaluationModelArtifactsS3Uri", None, "")
        if artifacts and not (
            is_s3_uri(artifacts, object_key_required=True) and artifacts.endswith("/model.tar.gz")
        ):
            problems.append(
                f"EvaluationModelArtifactsS3Uri={artifacts[:200]!r}: must be the evaluation job's "
                "s3://.../<job>/output/model.tar.gz"
            )
        run_name = text("EvaluationRunName", RUN_NAME, "not a run name")
        report = text("EvaluationReportS3Uri", None, "")
        if report and not (
            is_s3_uri(report, object_key_required=True) and report.endswith(".json")
        ):
            problems.append(
                f"EvaluationReportS3Uri={report[:200]!r}: must be an s3://... .json URI"
            )
        prefix = text("BaselineS3Prefix", None, "")
        if prefix and not (is_s3_uri(prefix) and prefix.endswith("/")):
            problems.append(f"BaselineS3Prefix={prefix[:200]!r}: must be an s3://bucket/prefix/")
        data = text("EvaluationDataS3Uri", None, "", optional=True)
        if data and not is_s3_uri(data, object_key_required=True):
            problems.append(f"EvaluationDataS3Uri={data[:200]!r}: must be an s3://bucket/key URI")
        sha = text("EvaluationDataSha256", SHA256, "not a lowercase sha256", optional=True)
        if data and not sha:
            problems.append(
                "EvaluationDataSha256 is missing: the data check's sha256 of EvaluationDataS3Uri "
                "identifies what was scored"
            )
        gate = _gate(event, gate_metric, problems) if with_gate else None
        if problems:
            raise ValueError("the evaluation inputs are invalid:\n- " + "\n- ".join(problems))
        return cls(task, job, artifacts, run_name, report, prefix, data, sha, gate)


def _gate(event: Mapping[str, Any], metric: str, problems: list[str]) -> Gate | None:
    improvement = _boolean(event.get("GateRequiresImprovement", False), problems)
    if metric == NONE:
        if improvement:
            problems.append(
                "GateRequiresImprovement is true but GateMetric is none: name the metric that "
                "must improve"
            )
        return None
    if not METRIC_NAME.fullmatch(metric) or metric.endswith("_stderr"):
        problems.append(f"GateMetric={metric[:100]!r}: not a metric name (e.g. rougeL)")
    raw = event.get("GateThreshold")
    try:
        threshold = float(str(raw).strip()) if not isinstance(raw, bool) else math.nan
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        problems.append(f"GateThreshold={str(raw)[:40]!r}: must be a finite number")
    return Gate(metric, threshold, improvement)


def _boolean(value: Any, problems: list[str]) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "false"):
        return text == "true"
    problems.append(f"GateRequiresImprovement={str(value)[:40]!r}: must be true or false")
    return False

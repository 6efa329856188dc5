"""Where a checkpoint's scores live in its model package, and how they are read back.

The full scores (every metric and stderr, the parent's values, the gate) go to a statistics
report in S3 (`lambdas.evaluation.report`), which `ModelMetrics.ModelQuality.Statistics` points
to. CustomerMetadataProperties, which the lineage reads without S3, holds at most 50 entries of
at most 256 characters from a restricted alphabet (botocore's CustomerMetadataMap), and a run's
own record takes up to 28 of them; so the scores take a fixed set of keys plus one key per
metric while the 50 last (`Metric.<name>` = `<value> stderr <stderr>`), the primary metric
first; metrics that do not fit are counted under `EvaluationMetricsInReportOnly` and stay in
the report (docs/decisions/0018-scores-in-the-registry.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from lambdas.registry.metadata import MAX_METADATA_ENTRIES, metadata_problem

KEY_TASK = "EvaluationTask"
KEY_DATA = "EvaluationDataS3Uri"
KEY_DATA_SHA256 = "EvaluationDataSha256"
KEY_JOB = "EvaluationJobName"
KEY_REPORT = "EvaluationReportS3Uri"
KEY_METRIC = "EvaluationMetric"
KEY_SCORE = "EvaluationScore"
KEY_PARENT_SCORE = "ParentEvaluationScore"
KEY_CHANGE = "EvaluationScoreChange"
KEY_VERDICT = "GateVerdict"
KEY_OMITTED = "EvaluationMetricsInReportOnly"
METRIC_PREFIX = "Metric."
# Every key an evaluation writes; a new evaluation replaces all of them but the gate's verdict,
# which belongs to the registration.
FIXED_KEYS: tuple[str, ...] = (
    KEY_TASK,
    KEY_DATA,
    KEY_DATA_SHA256,
    KEY_JOB,
    KEY_REPORT,
    KEY_METRIC,
    KEY_SCORE,
    KEY_PARENT_SCORE,
    KEY_CHANGE,
    KEY_OMITTED,
)
NOT_EVALUATED = "none"
# The metric a task is judged by when no gate names one (AWS's evaluation page: accuracy for
# the text benchmarks, exact_match for math, deflection for strong_reject; ROUGE for gen_qa).
DEFAULT_METRICS: dict[str, str] = {
    "gen_qa": "rougeL",
    "math": "exact_match",
    "strong_reject": "deflection",
}
_STDERR_WORD = " stderr "


def primary_metric(task: str, metrics: Mapping[str, float], gate_metric: str = "") -> str:
    """The metric a score means: the gate's, else the task's usual one, else `accuracy`, else
    the first by name."""
    if gate_metric:
        return gate_metric
    for candidate in (DEFAULT_METRICS.get(task, ""), "accuracy"):
        if candidate in metrics:
            return candidate
    return sorted(metrics)[0]


def number_text(value: float) -> str:
    """A score as recorded: the shortest text that reads back as the same float."""
    return repr(float(value))


def change_text(change: float | None) -> str:
    """A signed difference, rounded to 12 significant digits (float noise), or "none"."""
    if change is None:
        return NOT_EVALUATED
    return f"{change:+.12g}"


def metric_value(value: float, stderr: float | None) -> str:
    return number_text(value) + ("" if stderr is None else _STDERR_WORD + number_text(stderr))


def parse_metric_value(text: str) -> tuple[float, float | None] | None:
    """(value, stderr) of a `Metric.<name>` entry, or None when it is not one."""
    value, _, stderr = text.partition(_STDERR_WORD)
    try:
        return float(value), (float(stderr) if stderr else None)
    except ValueError:
        return None


@dataclass(frozen=True)
class ScoreCard:
    """The scores a model package records, read back from its metadata (`scorecard_of`)."""

    task: str
    metric: str
    score: float | None
    parent_score: float | None
    change: float | None
    verdict: str
    data_sha256: str
    report_uri: str
    metrics: dict[str, float] = field(default_factory=dict)

    def describe(self) -> str:
        """One line for the lineage and approve: `gen_qa rougeL 0.43 (+0.02)`."""
        score = "n/a" if self.score is None else f"{self.score:.4g}"
        change = "" if self.change is None else f" ({self.change:+.4g} vs parent)"
        return f"{self.task} {self.metric} {score}{change}"


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text not in (None, "", NOT_EVALUATED) else None
    except ValueError:
        return None


def scorecard_of(metadata: Mapping[str, str]) -> ScoreCard | None:
    """The scores recorded in a package's metadata, or None when it was never evaluated."""
    task = metadata.get(KEY_TASK, "")
    if not task or task == NOT_EVALUATED:
        return None
    metrics: dict[str, float] = {}
    for key, text in metadata.items():
        if key.startswith(METRIC_PREFIX) and (parsed := parse_metric_value(text)) is not None:
            metrics[key.removeprefix(METRIC_PREFIX)] = parsed[0]
    return ScoreCard(
        task=task,
        metric=metadata.get(KEY_METRIC, ""),
        score=_float(metadata.get(KEY_SCORE)),
        parent_score=_float(metadata.get(KEY_PARENT_SCORE)),
        change=_float(metadata.get(KEY_CHANGE)),
        verdict=metadata.get(KEY_VERDICT, ""),
        data_sha256=metadata.get(KEY_DATA_SHA256, ""),
        report_uri=metadata.get(KEY_REPORT, ""),
        metrics=metrics,
    )


def without_scores(metadata: Mapping[str, str]) -> dict[str, str]:
    """The metadata minus an earlier evaluation's entries (the gate's verdict is kept)."""
    return {
        key: value
        for key, value in metadata.items()
        if key not in FIXED_KEYS and not key.startswith(METRIC_PREFIX)
    }


def score_entries(
    *,
    fixed: Mapping[str, str],
    metrics: Mapping[str, float],
    stderr: Mapping[str, float],
    primary: str,
    room: int,
) -> dict[str, str]:
    """The metadata entries of an evaluation: `fixed` (empty values left out), then one entry
    per metric, the primary first, while `room` entries last. ValueError when even the fixed
    entries do not fit, or a value would be refused."""
    entries = {key: value for key, value in fixed.items() if value}
    problems = [p for key, value in entries.items() if (p := metadata_problem(key, value))]
    if problems:
        raise ValueError(
            "the scores would be refused by the model registry: " + "; ".join(problems)
        )
    order = [primary, *sorted(name for name in metrics if name != primary)]
    candidates = {
        METRIC_PREFIX + name: metric_value(metrics[name], stderr.get(name))
        for name in order
        if name in metrics
    }
    # A metric whose name the registry refuses as a key stays in the report only.
    recordable = {
        key: value
        for key, value in candidates.items()
        if len(key) <= 128 and metadata_problem(key, key) is None
    }
    free = room - len(entries)
    if free < 1:
        raise ValueError(
            f"no room for the scores: {MAX_METADATA_ENTRIES - room} metadata entries are taken "
            f"and the scores need {len(entries) + 1} of the registry's {MAX_METADATA_ENTRIES}"
        )
    unrecordable = len(candidates) - len(recordable)
    if len(recordable) + (1 if unrecordable else 0) <= free:
        kept = recordable
    else:
        # The primary metric always; the rest while the room lasts, one entry kept for the note.
        kept = dict(list(recordable.items())[: max(free - 1, 1)])
    entries.update(kept)
    left_out = len(candidates) - len(kept)
    if left_out and len(entries) < room:
        entries[KEY_OMITTED] = f"{left_out} metrics only in the report"
    return entries

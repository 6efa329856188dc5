"""How scores fit CustomerMetadataProperties (lambdas/evaluation/scores.py)."""

from __future__ import annotations

import pytest

from lambdas.evaluation.scores import (
    KEY_OMITTED,
    primary_metric,
    score_entries,
    scorecard_of,
)
from lambdas.registry import MAX_METADATA_ENTRIES, metadata_problem
from tests.lambdas.evaluation.archives import GEN_QA

METRICS = {k: v for k, v in GEN_QA.items() if not k.endswith("_stderr")}
STDERR = {k.removesuffix("_stderr"): v for k, v in GEN_QA.items() if k.endswith("_stderr")}
FIXED = {"EvaluationTask": "gen_qa", "EvaluationMetric": "rougeL", "EvaluationScore": "0.4301"}


def test_gen_qa_records_each_metric_with_its_stderr() -> None:
    entries = score_entries(fixed=FIXED, metrics=METRICS, stderr=STDERR, primary="rougeL", room=22)
    assert entries["Metric.bleu"] == "21.734 stderr 1.245"
    assert len([k for k in entries if k.startswith("Metric.")]) == 8
    assert all(metadata_problem(k, v) is None and len(k) <= 128 for k, v in entries.items())
    card = scorecard_of(entries)
    assert card is not None
    assert card.metrics == METRICS


def test_without_room_the_primary_metric_stays_and_the_rest_is_counted() -> None:
    entries = score_entries(fixed=FIXED, metrics=METRICS, stderr=STDERR, primary="rougeL", room=6)
    assert len(entries) == 6
    assert "Metric.rougeL" in entries
    assert entries[KEY_OMITTED] == "6 metrics only in the report"


def test_a_metric_name_the_registry_refuses_stays_in_the_report() -> None:
    metrics = {"rougeL": 0.4, "bad(name)": 1.0}
    entries = score_entries(fixed=FIXED, metrics=metrics, stderr={}, primary="rougeL", room=20)
    assert "Metric.bad(name)" not in entries
    assert entries[KEY_OMITTED] == "1 metrics only in the report"


def test_no_room_at_all_is_an_error() -> None:
    with pytest.raises(ValueError, match="no room for the scores"):
        score_entries(fixed=FIXED, metrics=METRICS, stderr=STDERR, primary="rougeL", room=3)
    assert MAX_METADATA_ENTRIES == 50


@pytest.mark.parametrize(
    ("task", "metrics", "gate", "expected"),
    [
        ("gen_qa", METRICS, "", "rougeL"),
        ("gen_qa", METRICS, "bleu", "bleu"),
        ("mmlu", {"accuracy": 0.7, "accuracy_norm": 0.6}, "", "accuracy"),
        ("math", {"exact_match": 0.4}, "", "exact_match"),
        ("custom", {"zeta": 1.0, "alpha": 2.0}, "", "alpha"),
    ],
)
def test_primary_metric(task: str, metrics: dict[str, float], gate: str, expected: str) -> None:
    assert primary_metric(task, metrics, gate) == expected


def test_a_package_never_evaluated_has_no_scorecard() -> None:
    assert scorecard_of({"CheckpointS3Uri": "s3://b/k"}) is None
    assert scorecard_of({"EvaluationTask": "none"}) is None

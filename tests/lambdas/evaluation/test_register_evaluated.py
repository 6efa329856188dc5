"""The register step with an evaluation (lambdas/register_checkpoint.py, lambdas/evaluation/),
against the moto server over HTTP: scores, statistics report, parent comparison and gate."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas import register_checkpoint as module
from lambdas.evaluation import EvaluationResultsError
from lambdas.evaluation.scores import scorecard_of
from lambdas.recipe.spec import BASE_MODEL, FULL_RANK
from lambdas.registry import MAX_METADATA_ENTRIES, RegistrationError, metadata_problem
from tests.lambdas.checkpoint.archives import Member, tar_gz
from tests.lambdas.evaluation.archives import GEN_QA, eval_archive, results_json, results_member
from tests.lambdas.evaluation.staging import (
    BASELINES,
    DATA_SHA,
    exists,
    gate,
    read_json,
    stage_evaluation,
)
from tests.lambdas.test_register_checkpoint import escrow, stage_run, versions

EVALUATION_OUTPUTS = {"EvaluationScore", "GateVerdict", "ScoreChange"}


@pytest.fixture(autouse=True)
def clients_in_handler(clients: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    # The handler builds its own clients from the environment (the moto server's URL).
    module._clients.cache_clear()


def register(s3: Any, job: str, parent: str = BASE_MODEL, **extra: Any) -> dict[str, str]:
    event: dict[str, Any] = {**stage_run(s3, job, parent=parent), **stage_evaluation(s3, job)}
    event.update(extra)
    return module.handler(event)


def describe(sm: Any, arn: str) -> dict[str, Any]:
    return dict(sm.describe_model_package(ModelPackageName=arn))


def test_registers_with_scores_report_and_pending_status(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    result = register(s3, "job-1", **gate())
    assert set(result) >= EVALUATION_OUTPUTS
    assert result["EvaluationScore"] == "0.4301"
    assert result["GateVerdict"] == "passed: rougeL 0.4301 >= 0.3"
    assert result["ScoreChange"] == "none"
    package = describe(sm, result["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    report_uri = "s3://artifacts-bucket/runs/job-1/evaluation/statistics.json"
    assert package["ModelMetrics"]["ModelQuality"]["Statistics"] == {
        "ContentType": "application/json",
        "S3Uri": report_uri,
    }
    metadata = package["CustomerMetadataProperties"]
    assert metadata["EvaluationTask"] == "gen_qa"
    assert metadata["EvaluationDataSha256"] == DATA_SHA
    assert metadata["EvaluationJobName"] == "job-1-eval"
    assert metadata["Metric.rougeL"] == "0.4301 stderr 0.0118"
    assert metadata["ParentEvaluationScore"] == "none"
    report = read_json(s3, report_uri)
    assert report["metrics"]["bleu"] == {"value": 21.734, "standard_deviation": 1.245}
    assert report["model"] == escrow("job-1")
    assert "no baseline of nova-lite-2/prod" in report["parent"]["no_comparable_score"]
    assert report["gate"]["status"] == "PendingManualApproval"


def test_every_gen_qa_metric_fits_beside_the_largest_run_record(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    # LoRA records the most hyperparameters; add a source package and validation data too.
    validation = "s3://data-bucket/val/part-0.jsonl"
    event = {
        **stage_run(s3, "job-1", ValidationDataS3Uri=validation, ValCheckInterval="4"),
        **stage_evaluation(s3, "job-1"),
        "ValidationDataS3Uri": validation,
        "MaxRuntimeSeconds": "86400",
        "SourceModelPackageArn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1",
        **gate(),
    }
    result = module.handler(event)
    metadata = describe(sm, result["ModelPackageArn"])["CustomerMetadataProperties"]
    assert len(metadata) <= MAX_METADATA_ENTRIES
    metrics = {k for k in metadata if k.startswith("Metric.")}
    assert len(metrics) == 8
    assert all(metadata_problem(k, v) is None for k, v in metadata.items())
    card = scorecard_of(metadata)
    assert card is not None
    assert card.metrics["f1_score_quasi"] == GEN_QA["f1_score_quasi"]


def test_a_score_below_the_threshold_is_registered_rejected(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    result = register(s3, "job-1", **gate(threshold=0.5))
    package = describe(sm, result["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "Rejected"
    assert (
        "Quality gate failed: rougeL 0.4301 < threshold 0.5" in package["ModelPackageDescription"]
    )
    assert package["ModelPackageDescription"].startswith(
        "Nova 2 Lite SFT (LoRA) checkpoint of training job job-1"
    )
    assert result["GateVerdict"] == "rejected: rougeL 0.4301 < threshold 0.5"
    assert package["CustomerMetadataProperties"]["GateVerdict"].startswith("rejected")


def test_round_two_is_compared_with_round_one(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    first = register(s3, "job-1", **gate())
    better = {**GEN_QA, "rougeL": 0.4501}
    event = {
        **stage_run(s3, "job-2", parent=first["CheckpointS3Uri"]),
        **stage_evaluation(s3, "job-2", archive=eval_archive(scores=better)),
        **gate(improve=True),
    }
    second = module.handler(event)
    assert second["ScoreChange"] == "+0.02"
    assert second["GateVerdict"] == "passed: rougeL 0.4501 >= 0.3, beats the parent score 0.4301"
    metadata = describe(sm, second["ModelPackageArn"])["CustomerMetadataProperties"]
    assert metadata["ParentEvaluationScore"] == "0.4301"
    assert metadata["EvaluationScoreChange"] == "+0.02"


def test_no_improvement_over_the_parent_is_rejected(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    first = register(s3, "job-1", **gate())
    worse = {**GEN_QA, "rougeL": 0.4001}
    second = module.handler(
        {
            **stage_run(s3, "job-2", parent=first["CheckpointS3Uri"], technique=FULL_RANK)
            | {"Technique": FULL_RANK},
            **stage_evaluation(s3, "job-2", archive=eval_archive(scores=worse)),
            **gate(improve=True),
        }
    )
    package = describe(sm, second["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "Rejected"
    assert "does not beat the parent score 0.4301" in package["ModelPackageDescription"]
    assert second["ScoreChange"] == "-0.03"


def test_other_evaluation_data_is_not_comparable(clients: tuple[Any, Any]) -> None:
    _, s3 = clients
    first = register(s3, "job-1", **gate())
    second = module.handler(
        {
            **stage_run(s3, "job-2", parent=first["CheckpointS3Uri"]),
            **stage_evaluation(s3, "job-2"),
            "EvaluationDataSha256": "b" * 64,
            **gate(improve=True),
        }
    )
    assert second["ScoreChange"] == "none"
    assert "no comparable parent score" in second["GateVerdict"]
    assert f"evaluation data sha256 {DATA_SHA}" in second["GateVerdict"]


def test_a_baseline_of_the_base_model_is_the_first_runs_parent(clients: tuple[Any, Any]) -> None:
    _, s3 = clients
    key = f"baselines/nova-lite-2_prod/gen_qa/{DATA_SHA}.json"
    s3.put_object(
        Bucket="artifacts-bucket",
        Key=key,
        Body=(
            '{"model": "nova-lite-2/prod", "task": "gen_qa", "data_sha256": "'
            + DATA_SHA
            + '", "metrics": {"rougeL": 0.3301}}'
        ),
    )
    assert BASELINES + key.removeprefix("baselines/") == f"s3://artifacts-bucket/{key}"
    result = register(s3, "job-1", **gate(improve=True))
    assert result["ScoreChange"] == "+0.1"
    assert "beats the parent score 0.3301" in result["GateVerdict"]


def test_running_the_step_again_returns_the_same_package(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), **stage_evaluation(s3, "job-1"), **gate(threshold=0.5)}
    first = module.handler(event)
    again = module.handler(event)
    assert again["ModelPackageArn"] == first["ModelPackageArn"]
    assert again["EvaluationScore"] == first["EvaluationScore"]
    assert again["GateVerdict"].startswith("rejected: rougeL 0.4301 lt threshold 0.5")
    assert len(versions(sm)) == 1


@pytest.mark.parametrize(
    ("archive", "expected"),
    [
        (tar_gz(Member("./inference_output.jsonl", b"{}\n")), "no eval-job-1/eval_results"),
        (tar_gz(Member(results_member(), b"{")), "is not valid JSON"),
        (tar_gz(Member(results_member(), results_json({"bleu": 20.0}))), "gate's metric rougeL"),
    ],
)
def test_a_broken_results_file_registers_nothing(
    clients: tuple[Any, Any], archive: bytes, expected: str
) -> None:
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), **stage_evaluation(s3, "job-1", archive=archive), **gate()}
    with pytest.raises(EvaluationResultsError, match=expected):
        module.handler(event)
    assert versions(sm) == []
    assert not exists(s3, event["EvaluationReportS3Uri"])


def test_a_missing_evaluation_archive_registers_nothing(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), **stage_evaluation(s3, "job-1"), **gate()}
    s3.delete_object(
        Bucket="artifacts-bucket", Key="runs/job-1/evaluation/job-1-eval/output/output.tar.gz"
    )
    with pytest.raises(RegistrationError, match="left no output archive"):
        module.handler(event)
    assert versions(sm) == []


def test_not_evaluated_registers_as_before_and_says_so(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = {
        **stage_run(s3, "job-1"),
        "EvaluationTask": "none",
        "EvaluationJobName": "none",
        "EvaluationModelArtifactsS3Uri": "none",
        "GateMetric": "none",
        "GateThreshold": 0.0,
        "GateRequiresImprovement": False,
    }
    result = module.handler(event)
    assert result["GateVerdict"] == "not evaluated"
    assert result["EvaluationScore"] == "none"
    package = describe(sm, result["ModelPackageArn"])
    assert "ModelMetrics" not in package or not package["ModelMetrics"]
    assert "EvaluationTask" not in package["CustomerMetadataProperties"]


def test_a_gate_without_evaluation_is_refused(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), "EvaluationTask": "none", **gate()}
    with pytest.raises(ValueError, match="a gate needs a score"):
        module.handler(event)
    assert versions(sm) == []


def test_bad_evaluation_inputs_are_listed_at_once(clients: tuple[Any, Any]) -> None:
    _, s3 = clients
    event = {
        **stage_run(s3, "job-1"),
        **stage_evaluation(s3, "job-1"),
        "EvaluationDataSha256": "none",
        "GateMetric": "rougeL_stderr",
        "GateThreshold": "high",
    }
    with pytest.raises(ValueError, match="the evaluation inputs are invalid") as caught:
        module.handler(event)
    message = str(caught.value)
    assert "EvaluationDataSha256 is missing" in message
    assert "GateMetric='rougeL_stderr'" in message
    assert "GateThreshold='high'" in message


def test_several_results_files_are_said_in_the_description_and_report(
    clients: tuple[Any, Any],
) -> None:
    sm, s3 = clients
    older = results_member(stamp="2026-12-03T09-00-00.000000")
    archive = tar_gz(
        Member(results_member(), results_json()),
        Member(older, results_json({**GEN_QA, "rougeL": 0.1})),
    )
    event = {**stage_run(s3, "job-1"), **stage_evaluation(s3, "job-1", archive=archive), **gate()}
    result = module.handler(event)
    assert result["EvaluationScore"] == "0.4301"
    description = describe(sm, result["ModelPackageArn"])["ModelPackageDescription"]
    assert "2 results files in s3://artifacts-bucket/runs/job-1/evaluation/" in description
    assert older in description
    report = read_json(s3, event["EvaluationReportS3Uri"])
    assert report["results"]["ignored"] == [older]

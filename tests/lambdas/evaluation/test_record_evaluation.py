"""The evaluate-only pipeline's record step (lambdas/record_evaluation.py) against the moto
server over HTTP: a package's scores as metadata, the base model's baseline."""

from __future__ import annotations

from typing import Any

import pytest

from lambdas import record_evaluation as module
from lambdas.evaluation import RecordRequest, record_evaluation
from lambdas.evaluation.scores import scorecard_of
from lambdas.recipe.spec import BASE_MODEL
from lambdas.registry import RegistrationError
from tests.lambdas.evaluation.archives import GEN_QA, eval_archive
from tests.lambdas.evaluation.staging import BASELINES, DATA_SHA, gate, read_json, stage_evaluation
from tests.lambdas.test_register_checkpoint import GROUP, register, stage_run

BASELINE = f"{BASELINES}nova-lite-2_prod/gen_qa/{DATA_SHA}.json"


def record_event(s3: Any, run: str, model: str, arn: str = "none", **extra: Any) -> dict[str, Any]:
    return {
        **stage_evaluation(s3, run, **extra),
        "ModelNameOrPath": model,
        "ModelPackageArn": arn,
        "ModelPackageGroupName": GROUP,
    }


def test_the_base_model_becomes_the_baseline(clients: tuple[Any, Any]) -> None:
    _, s3 = clients
    module._clients.cache_clear()
    result = module.handler(record_event(s3, "exec-base", BASE_MODEL))
    assert result == {"EvaluationScore": "0.4301", "ScoreChange": "none"}
    baseline = read_json(s3, BASELINE)
    assert baseline["metrics"]["rougeL"] == 0.4301
    assert baseline["stderr"]["bleu"] == 1.245
    assert baseline["task"] == "gen_qa"
    assert baseline["data_sha256"] == DATA_SHA
    report = read_json(s3, "s3://artifacts-bucket/runs/exec-base/evaluation/statistics.json")
    assert report["parent"]["no_comparable_score"].startswith("the base model is the baseline")


def test_the_baseline_is_what_the_next_run_from_the_base_model_is_compared_with(
    clients: tuple[Any, Any],
) -> None:
    from lambdas import register_checkpoint

    _, s3 = clients
    low = {**GEN_QA, "rougeL": 0.2}
    record_evaluation(
        clients[0],
        s3,
        RecordRequest.from_event(
            record_event(s3, "exec-base", BASE_MODEL, archive=eval_archive(scores=low))
        ),
    )
    register_checkpoint._clients.cache_clear()
    event = {**stage_run(s3, "job-1"), **stage_evaluation(s3, "job-1"), **gate(improve=True)}
    result = register_checkpoint.handler(event)
    assert result["ScoreChange"] == "+0.2301"
    assert "beats the parent score 0.2" in result["GateVerdict"]


def test_a_package_gets_its_scores_and_keeps_everything_else(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    registered = register(sm, s3, stage_run(s3, "job-1"))
    arn = registered["ModelPackageArn"]
    before = sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    sent: list[dict[str, Any]] = []
    sm.meta.events.register(
        "provide-client-params.sagemaker.UpdateModelPackage",
        lambda params, **_: sent.append(dict(params)),
    )
    request = RecordRequest.from_event(
        record_event(s3, "exec-eval", registered["CheckpointS3Uri"], arn)
    )
    result = record_evaluation(sm, s3, request)
    assert result == {"EvaluationScore": "0.4301", "ScoreChange": "none"}
    after = sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    assert {k: after[k] for k in before} == before
    card = scorecard_of(after)
    assert card is not None
    assert card.score == 0.4301
    assert len(card.metrics) == 8
    assert after["EvaluationReportS3Uri"].endswith("runs/exec-eval/evaluation/statistics.json")
    # The approval status is never sent: the record step cannot change it.
    assert len(sent) == 1
    assert "ModelApprovalStatus" not in sent[0]


def test_a_second_evaluation_replaces_the_first(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    registered = register(sm, s3, stage_run(s3, "job-1"))
    arn, uri = registered["ModelPackageArn"], registered["CheckpointS3Uri"]
    record_evaluation(sm, s3, RecordRequest.from_event(record_event(s3, "exec-1", uri, arn)))
    only_bleu = eval_archive(scores={"bleu": 30.0})
    event = {
        **record_event(s3, "exec-2", uri, arn, archive=only_bleu),
        "EvaluationTask": "mmlu",
        "EvaluationDataS3Uri": "none",
        "EvaluationDataSha256": "none",
    }
    record_evaluation(sm, s3, RecordRequest.from_event(event))
    after = sm.describe_model_package(ModelPackageName=arn)["CustomerMetadataProperties"]
    assert after["EvaluationTask"] == "mmlu"
    assert "EvaluationDataSha256" not in after
    assert [k for k in after if k.startswith("Metric.")] == ["Metric.bleu"]


def test_a_package_of_another_checkpoint_is_refused(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    registered = register(sm, s3, stage_run(s3, "job-1"))
    request = RecordRequest.from_event(
        record_event(
            s3, "exec-eval", "s3://escrow-bucket/other/step_1", registered["ModelPackageArn"]
        )
    )
    with pytest.raises(RegistrationError, match="records checkpoint s3://customer-escrow"):
        record_evaluation(sm, s3, request)


def test_an_unregistered_checkpoint_gets_its_report_only(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    request = RecordRequest.from_event(record_event(s3, "exec-eval", "s3://escrow-bucket/x/step_1"))
    result = record_evaluation(sm, s3, request)
    assert result["EvaluationScore"] == "0.4301"
    report = read_json(s3, "s3://artifacts-bucket/runs/exec-eval/evaluation/statistics.json")
    assert "is not registered" in report["parent"]["no_comparable_score"]
    keys = s3.list_objects_v2(Bucket="artifacts-bucket", Prefix="baselines/").get("KeyCount", 0)
    assert keys == 0


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"EvaluationTask": "none"}, "needs a task to record"),
        ({"ModelPackageArn": "arn:nope"}, "must be a model package ARN"),
        ({"ModelNameOrPath": "nova-pro"}, "must be nova-lite-2/prod or an s3://"),
        ({"EvaluationReportS3Uri": "s3://b/report.txt"}, "must be an s3://... .json URI"),
    ],
)
def test_bad_inputs_are_refused(
    clients: tuple[Any, Any], change: dict[str, str], expected: str
) -> None:
    _, s3 = clients
    event = {**record_event(s3, "exec-eval", BASE_MODEL), **change}
    with pytest.raises(ValueError, match=expected):
        RecordRequest.from_event(event)

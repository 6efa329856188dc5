"""ValidateData's check of the evaluation file, against moto's S3 server over HTTP."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest

from lambdas.validate_dataset import DatasetAccessError, DatasetInvalidError, handler
from tests.lambdas.test_validate_dataset import ARTIFACTS, DATA, SAMPLE_DATA, event, put, s3

GEN_QA = SAMPLE_DATA.parent / "gen_qa.jsonl"
EVAL_REPORT_KEY = "runs/exec-1/data-validation/evaluation-report.json"
EVAL_REPORT_URI = f"s3://{ARTIFACTS}/{EVAL_REPORT_KEY}"

__all__ = ["s3"]  # the fixture, shared with the validation step's tests


def with_evaluation(s3: Any, body: bytes, key: str = "eval/gen_qa.jsonl") -> dict[str, Any]:
    train = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    return event(
        train,
        EvaluationTask="gen_qa",
        EvaluationDataS3Uri=put(s3, key, body),
        EvaluationReportS3Uri=EVAL_REPORT_URI,
    )


def report(s3: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        s3.get_object(Bucket=ARTIFACTS, Key=EVAL_REPORT_KEY)["Body"].read()
    )
    return document


def test_a_valid_file_gives_its_sha256_and_a_report(s3: Any) -> None:
    body = GEN_QA.read_bytes()
    outputs = handler(with_evaluation(s3, body))
    assert outputs["EvaluationDataSha256"] == hashlib.sha256(body).hexdigest()
    assert outputs["Samples"] == "64"
    document = report(s3)
    assert document["ok"] is True
    assert (document["format"], document["samples"]) == ("gen_qa", 20)
    assert document["evaluation_data_s3_uri"] == f"s3://{DATA}/eval/gen_qa.jsonl"


def test_no_evaluation_data_gives_none(s3: Any) -> None:
    train = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    assert handler(event(train))["EvaluationDataSha256"] == "none"


def test_a_broken_file_fails_the_step_naming_the_parameter_and_the_report(s3: Any) -> None:
    body = GEN_QA.read_bytes() + b'{"query": "q"}\n'
    with pytest.raises(DatasetInvalidError) as error:
        handler(with_evaluation(s3, body))
    message = str(error.value)
    assert message.startswith("EvaluationDataS3Uri: ")
    assert "line 21 $.response [field.missing]" in message
    assert EVAL_REPORT_URI in message
    assert report(s3)["ok"] is False


def test_a_missing_file_names_the_object_and_the_parameter(s3: Any) -> None:
    request = with_evaluation(s3, GEN_QA.read_bytes())
    request["EvaluationDataS3Uri"] = f"s3://{DATA}/eval/missing.jsonl"
    with pytest.raises(DatasetAccessError, match="evaluation data there or correct Evaluation"):
        handler(request)


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"EvaluationDataS3Uri": f"s3://{DATA}/eval/"}, "reads exactly one file"),
        ({"EvaluationDataS3Uri": ""}, "EvaluationDataS3Uri is empty"),
        ({"EvaluationReportS3Uri": None}, "no EvaluationReportS3Uri"),
    ],
)
def test_bad_inputs_are_refused(s3: Any, changes: dict[str, Any], words: str) -> None:
    request = {**with_evaluation(s3, GEN_QA.read_bytes()), **changes}
    with pytest.raises(ValueError, match=words):
        handler(request)


def test_a_file_named_other_than_jsonl_is_refused(s3: Any) -> None:
    with pytest.raises(DatasetInvalidError, match=r"file\.name"):
        handler(with_evaluation(s3, GEN_QA.read_bytes(), key="eval/gen_qa.json"))


def test_the_evaluate_only_pipeline_checks_the_evaluation_file_alone(s3: Any) -> None:
    body = GEN_QA.read_bytes()
    request = {
        "EvaluationOnly": "true",
        "EvaluationTask": "gen_qa",
        "EvaluationDataS3Uri": put(s3, "eval/gen_qa.jsonl", body),
        "EvaluationReportS3Uri": EVAL_REPORT_URI,
    }
    assert handler(request) == {"EvaluationDataSha256": hashlib.sha256(body).hexdigest()}
    assert handler({"EvaluationOnly": "true", "EvaluationTask": "mmlu"}) == {
        "EvaluationDataSha256": "none"
    }

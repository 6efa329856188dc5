"""The validation step's Lambda handler against moto's S3 server over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from lambdas import validate_dataset
from lambdas.dataset.validator import CHUNK_BYTES
from lambdas.validate_dataset import (
    FAILURE_REASON_CHARS,
    DatasetAccessError,
    DatasetInvalidError,
    handler,
    list_dataset_keys,
    parse_event,
    validate_s3_dataset,
)
from lambdas.validate_dataset import (
    validate_dataset as run_validation,
)

SAMPLE_DATA = (
    Path(__file__).resolve().parents[2] / "pipeline" / "rehearsal" / "sample_data" / "train.jsonl"
)
DATA = "data-bucket"
ARTIFACTS = "artifacts-bucket"
REPORT_KEY = "runs/exec-1/data-validation/report.json"
REPORT_URI = f"s3://{ARTIFACTS}/{REPORT_KEY}"


def sample(question: str = "What is 2 + 2?", answer: str = "4") -> str:
    return json.dumps(
        {
            "schemaVersion": "bedrock-conversation-2024",
            "messages": [
                {"role": "user", "content": [{"text": question}]},
                {"role": "assistant", "content": [{"text": answer}]},
            ],
        }
    )


def event(train_uri: str, **overrides: Any) -> dict[str, Any]:
    body = {
        "TrainDataS3Uri": train_uri,
        "GlobalBatchSize": "32",
        "ReasoningEnabled": "false",
        "ReportS3Uri": REPORT_URI,
    }
    body.update(overrides)
    return body


@pytest.fixture
def s3(aws: boto3.Session) -> Iterator[Any]:
    client = aws.client("s3")
    client.create_bucket(Bucket=DATA)
    client.create_bucket(Bucket=ARTIFACTS)
    # The handler builds its client once per container; build it here against this server.
    validate_dataset._s3_client.cache_clear()
    yield client
    validate_dataset._s3_client.cache_clear()


def put(s3: Any, key: str, body: bytes | str) -> str:
    s3.put_object(Bucket=DATA, Key=key, Body=body.encode() if isinstance(body, str) else body)
    return f"s3://{DATA}/{key}"


def read_report(s3: Any) -> dict[str, Any]:
    document: dict[str, Any] = json.loads(
        s3.get_object(Bucket=ARTIFACTS, Key=REPORT_KEY)["Body"].read()
    )
    return document


def report_exists(s3: Any) -> bool:
    return "Contents" in s3.list_objects_v2(Bucket=ARTIFACTS, Prefix=REPORT_KEY)


def test_a_valid_object_returns_the_sample_count_and_writes_the_report(s3: Any) -> None:
    uri = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    assert handler(event(uri)) == {
        "Samples": "64",
        "Findings": "0",
        "Warnings": "",
        "ValidationSamples": "none",
        "EvaluationDataSha256": "none",
    }
    report = read_report(s3)
    assert report["ok"] is True
    assert report["samples"] == 64
    assert report["train_data_s3_uri"] == uri
    assert report["settings"]["global_batch_size"] == 32
    assert report["settings"]["dataset_bucket"] == DATA


VALIDATION_REPORT_KEY = "runs/exec-1/data-validation/validation-report.json"
VALIDATION_REPORT_URI = f"s3://{ARTIFACTS}/{VALIDATION_REPORT_KEY}"


def with_validation(train_uri: str, validation_uri: str) -> dict[str, Any]:
    return event(
        train_uri,
        ValidationDataS3Uri=validation_uri,
        ValidationReportS3Uri=VALIDATION_REPORT_URI,
    )


def test_validation_data_is_checked_and_reported_like_the_training_data(s3: Any) -> None:
    lines = SAMPLE_DATA.read_text(encoding="utf-8").splitlines(keepends=True)
    train = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    validation = put(s3, "validation/validation.jsonl", "".join(lines[:40]))
    outputs = handler(with_validation(train, validation))
    assert outputs == {
        "Samples": "64",
        "Findings": "0",
        "Warnings": "",
        "ValidationSamples": "40",
        "EvaluationDataSha256": "none",
    }
    document = json.loads(s3.get_object(Bucket=ARTIFACTS, Key=VALIDATION_REPORT_KEY)["Body"].read())
    assert document["validation_data_s3_uri"] == validation
    assert (document["ok"], document["samples"]) == (True, 40)
    assert read_report(s3)["train_data_s3_uri"] == train


def test_invalid_validation_data_fails_the_step_naming_the_parameter(s3: Any) -> None:
    lines = SAMPLE_DATA.read_text(encoding="utf-8").splitlines(keepends=True)
    train = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    # The same rules as the training data: fewer samples than GlobalBatchSize is a finding.
    validation = put(s3, "validation/validation.jsonl", "".join(lines[:10]))
    with pytest.raises(DatasetInvalidError) as raised:
        handler(with_validation(train, validation))
    reason = str(raised.value)
    assert reason.startswith("ValidationDataS3Uri: dataset invalid")
    assert "samples.batch_size" in reason
    assert reason.endswith(f"Full report: {VALIDATION_REPORT_URI}")
    assert "TrainDataS3Uri" not in reason  # the training data was valid
    assert len(reason) <= FAILURE_REASON_CHARS


def test_both_invalid_datasets_are_reported_within_the_reason_limit(s3: Any) -> None:
    bad = "\n".join(sample(question=f"User: {i}" + " pad" * 200) for i in range(40)) + "\n"
    train = put(s3, "train/train.jsonl", bad)
    validation = put(s3, "validation/validation.jsonl", bad)
    with pytest.raises(DatasetInvalidError) as raised:
        handler(with_validation(train, validation))
    reason = str(raised.value)
    assert len(reason) <= FAILURE_REASON_CHARS
    assert reason.startswith("TrainDataS3Uri: dataset invalid")
    assert "\nValidationDataS3Uri: dataset invalid" in reason
    assert f"Full report: {REPORT_URI}" in reason
    assert reason.endswith(f"Full report: {VALIDATION_REPORT_URI}")


def test_unreadable_validation_data_is_refused_by_name_before_training(s3: Any) -> None:
    train = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    with pytest.raises(DatasetAccessError) as raised:
        handler(with_validation(train, f"s3://{DATA}/validation/missing.jsonl"))
    message = str(raised.value)
    assert "the object does not exist" in message
    assert "upload the validation data there or correct ValidationDataS3Uri" in message
    # The access check is the one the training data gets: a bucket the run cannot see.
    with pytest.raises(DatasetAccessError, match="bucket no-such-bucket-x does not exist"):
        handler(with_validation(train, "s3://no-such-bucket-x/validation.jsonl"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"ValidationDataS3Uri": ""}, "ValidationDataS3Uri is empty: pass none"),
        ({"ValidationDataS3Uri": "s3://data-bucket/v.jsonl"}, "the event has no ValidationReport"),
        ({"ValidationDataS3Uri": "https://x/v.jsonl"}, "ValidationDataS3Uri must be an s3://"),
    ],
)
def test_a_bad_validation_input_is_named(overrides: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_event(event(f"s3://{DATA}/t.jsonl", **overrides))


def test_none_and_an_absent_input_both_mean_no_validation_data() -> None:
    from lambdas.recipe.spec import NO_VALIDATION_DATA

    assert validate_dataset.NO_VALIDATION_DATA == NO_VALIDATION_DATA
    train = f"s3://{DATA}/t.jsonl"
    assert parse_event(event(train)).validation is None
    assert parse_event(event(train, ValidationDataS3Uri="none")).validation is None


def test_an_invalid_object_fails_with_the_first_findings_and_the_report_location(
    s3: Any,
) -> None:
    good = SAMPLE_DATA.read_text(encoding="utf-8").splitlines()
    broken = [*good[:2], "{not json", *good[2:10], sample(question="User: where is it?")]
    uri = put(s3, "train/train.jsonl", "\n".join(broken) + "\n")
    with pytest.raises(DatasetInvalidError) as raised:
        handler(event(uri))
    reason = str(raised.value)
    assert len(reason) <= FAILURE_REASON_CHARS
    assert reason.startswith("dataset invalid: 3 errors and 1 warning in 12 samples")
    # The file is named once, then only when it changes, to keep the reason short.
    assert reason.count(f"s3://{DATA}/train/train.jsonl line") == 1
    assert f"\ns3://{DATA}/train/train.jsonl line 3 $ [json.invalid]: not valid JSON" in reason
    assert "\nline 12 $.messages[0].content[0].text [text.reserved]" in reason
    # Errors come first; the warning follows them.
    assert reason.index("[text.reserved]") < reason.index("[warning parts.consistency]")
    assert "samples.batch_size" in reason
    assert reason.endswith(f"Full report: {REPORT_URI}")
    report = read_report(s3)
    assert report["ok"] is False
    assert report["counts_by_rule"] == {
        "json.invalid": 1,
        "parts.consistency": 1,  # the appended sample has no system prompt
        "samples.batch_size": 1,
        "text.reserved": 1,
    }
    assert [f["line"] for f in report["findings"] if f["rule"] == "text.reserved"] == [12]


def test_a_large_object_is_streamed_in_chunks_with_exact_line_numbers(s3: Any) -> None:
    filler = sample(answer="A long answer. " * 400)
    count = 3 * CHUNK_BYTES // len(filler) + 10  # well over three chunks
    body = [filler] * count
    body[count - 5] = sample(answer="")
    uri = put(s3, "train/big.jsonl", "\n".join(body))
    with pytest.raises(DatasetInvalidError, match=rf"line {count - 4} "):
        handler(event(uri))
    report = read_report(s3)
    assert report["samples"] == count
    assert report["counts_by_rule"] == {"text.empty": 1}


def test_a_prefix_is_one_dataset_of_every_object_under_it(s3: Any) -> None:
    lines = SAMPLE_DATA.read_text(encoding="utf-8").splitlines(keepends=True)
    put(s3, "train/", b"")  # a console-made folder marker is not a file
    put(s3, "train/part-1.jsonl", "".join(lines[:40]))
    put(s3, "train/part-2.jsonl", "".join(lines[40:]))
    assert handler(event(f"s3://{DATA}/train/")) == {
        "Samples": "64",
        "Findings": "0",
        "Warnings": "",
        "ValidationSamples": "none",
        "EvaluationDataSha256": "none",
    }
    assert [s["source"] for s in read_report(s3)["sources"]] == [
        f"s3://{DATA}/train/part-1.jsonl",
        f"s3://{DATA}/train/part-2.jsonl",
    ]


def test_a_file_that_is_not_jsonl_under_the_prefix_is_a_finding(s3: Any) -> None:
    put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    put(s3, "train/notes.txt", "remember to dedupe")
    with pytest.raises(DatasetInvalidError, match=r"file\.name"):
        handler(event(f"s3://{DATA}/train/"))
    report = read_report(s3)
    assert report["counts_by_rule"] == {"file.name": 1}
    assert report["findings"][0]["source"] == f"s3://{DATA}/train/notes.txt"


def test_validating_without_a_report_location_reads_and_writes_nothing_else(s3: Any) -> None:
    # The operator command's path: no report is written, and reasoning may be left unknown.
    uri = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    report = validate_s3_dataset(s3, uri, global_batch_size=32, reasoning_enabled=None)
    assert report.ok
    assert report.samples == 64
    assert "Contents" not in s3.list_objects_v2(Bucket=ARTIFACTS)
    assert [item["Key"] for item in s3.list_objects_v2(Bucket=DATA)["Contents"]] == [
        "train/train.jsonl"
    ]


def test_a_missing_object_names_it_and_writes_no_report(s3: Any) -> None:
    with pytest.raises(DatasetAccessError) as raised:
        handler(event(f"s3://{DATA}/train/missing.jsonl"))
    message = str(raised.value)
    assert f"s3://{DATA}/train/missing.jsonl" in message
    assert "does not exist" in message
    assert "TrainDataS3Uri" in message
    assert not report_exists(s3)


def test_a_prefix_without_a_slash_gets_a_hint(s3: Any) -> None:
    put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    with pytest.raises(DatasetAccessError, match="must end with '/'"):
        handler(event(f"s3://{DATA}/train"))


def test_a_missing_bucket_is_named(s3: Any) -> None:
    with pytest.raises(DatasetAccessError, match="bucket no-such-bucket does not exist"):
        handler(event("s3://no-such-bucket/train.jsonl"))


def test_an_empty_prefix_says_what_to_upload(s3: Any) -> None:
    with pytest.raises(DatasetAccessError, match=r"no objects under s3://data-bucket/empty/"):
        handler(event(f"s3://{DATA}/empty/"))


def test_a_missing_report_bucket_is_named_and_nothing_is_returned(s3: Any) -> None:
    uri = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    request = parse_event(event(uri, ReportS3Uri="s3://no-such-artifacts/report.json"))
    with pytest.raises(DatasetAccessError, match="cannot write s3://no-such-artifacts/report"):
        run_validation(s3, request)


def test_reasoning_enabled_true_refuses_data_without_reasoning(s3: Any) -> None:
    uri = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    with pytest.raises(DatasetInvalidError, match=r"reasoning\.enabled: 64"):
        handler(event(uri, ReasoningEnabled="TRUE"))


def with_warnings() -> str:
    """The sample data with a blank line in the middle and one sample without schemaVersion."""
    good = SAMPLE_DATA.read_text(encoding="utf-8").splitlines()
    unversioned = json.loads(good[5])
    del unversioned["schemaVersion"]
    return "\n".join([*good[:3], "", *good[3:5], json.dumps(unversioned), *good[6:]]) + "\n"


def test_warnings_alone_pass_the_step_and_are_in_its_outputs_and_report(s3: Any) -> None:
    uri = put(s3, "train/train.jsonl", with_warnings())
    assert handler(event(uri)) == {
        "Samples": "64",
        "Findings": "2",
        "Warnings": "line.blank: 1, schema.version: 1",
        "ValidationSamples": "none",
        "EvaluationDataSha256": "none",
    }
    report = read_report(s3)
    assert (report["ok"], report["errors_total"], report["warnings_total"]) == (True, 0, 2)
    assert {(f["rule"], f["severity"], f["line"]) for f in report["findings"]} == {
        ("line.blank", "warning", 4),
        ("schema.version", "warning", 7),
    }


def test_strict_fails_the_step_on_warnings(s3: Any) -> None:
    uri = put(s3, "train/train.jsonl", with_warnings())
    with pytest.raises(DatasetInvalidError) as raised:
        handler(event(uri, Strict="true"))
    assert str(raised.value).startswith("dataset invalid: 2 errors and 0 warnings in 64 samples")
    report = read_report(s3)
    assert report["settings"]["strict"] is True
    assert report["ok"] is False


def test_global_batch_size_above_the_sample_count_is_refused(s3: Any) -> None:
    uri = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    with pytest.raises(DatasetInvalidError, match="fewer than GlobalBatchSize 128"):
        handler(event(uri, GlobalBatchSize="128"))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"TrainDataS3Uri": ""}, "no TrainDataS3Uri"),
        ({"TrainDataS3Uri": "https://bucket/train.jsonl"}, "TrainDataS3Uri must be an s3://"),
        ({"TrainDataS3Uri": f"s3://{DATA}/"}, "names a whole bucket"),
        ({"ReportS3Uri": f"s3://{ARTIFACTS}/runs/"}, "ReportS3Uri must name an object"),
        ({"GlobalBatchSize": "0"}, "GlobalBatchSize must be a positive integer"),
        ({"GlobalBatchSize": "thirty-two"}, "GlobalBatchSize must be a positive integer"),
        ({"ReasoningEnabled": "maybe"}, "ReasoningEnabled must be 'true' or 'false'"),
        ({"Strict": "sometimes"}, "Strict must be 'true' or 'false'"),
    ],
)
def test_a_bad_event_is_refused_by_input_name(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_event(event(f"s3://{DATA}/train/train.jsonl", **overrides))


def test_event_values_may_also_arrive_typed(s3: Any) -> None:
    put(s3, "train/a.jsonl", sample())
    put(s3, "train/b.jsonl", sample())
    put(s3, "other.jsonl", sample())
    request = parse_event(event(f"s3://{DATA}/train/", GlobalBatchSize=64, ReasoningEnabled=True))
    assert (request.global_batch_size, request.reasoning_enabled) == (64, True)
    # The folder URI is kept as a prefix: the dataset is every object under it.
    assert (request.train_bucket, request.train_key) == (DATA, "train/")
    keys = list_dataset_keys(s3, request.train_bucket, request.train_key)
    assert keys == ["train/a.jsonl", "train/b.jsonl"]


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("AccessDenied", "access denied; grant the validation function's role s3:GetObject"),
        ("KMS.AccessDeniedException", "kms:Decrypt"),
        ("SlowDown", "SlowDown"),
    ],
)
def test_client_errors_become_messages_that_name_the_object_and_fix(
    code: str, expected: str
) -> None:
    # moto does not enforce IAM, so denial is shown with the error botocore would raise.
    error = ClientError({"Error": {"Code": code, "Message": "nope"}}, "GetObject")
    message = str(
        validate_dataset._access_error(error, f"s3://{DATA}/t.jsonl", "read", "s3:GetObject")
    )
    assert message.startswith(f"cannot read s3://{DATA}/t.jsonl")
    assert expected in message


def test_warnings_of_the_validation_data_count_in_the_outputs_too(s3: Any) -> None:
    train = put(s3, "train/train.jsonl", SAMPLE_DATA.read_bytes())
    validation = put(s3, "validation/validation.jsonl", with_warnings())
    assert handler(with_validation(train, validation)) == {
        "Samples": "64",
        "Findings": "2",
        "Warnings": "line.blank: 1, schema.version: 1",
        "ValidationSamples": "64",
        "EvaluationDataSha256": "none",
    }


def test_the_outputs_are_the_ones_the_pipeline_step_declares(s3: Any) -> None:
    from pipeline.definition import VALIDATE_OUTPUTS

    uri = put(s3, "train/train.jsonl", with_warnings())
    assert sorted(handler(event(uri))) == sorted(VALIDATE_OUTPUTS)

"""The evaluation data's part of the ValidateData step: check the gen_qa file before training.

A run that evaluates on its own data (EvaluationTask gen_qa) names one `.jsonl` object in
`EvaluationDataS3Uri`. ValidateData (`lambdas.validate_dataset.handler`) reads it with the same
role and the same streamed reads as the training data, checks it with `lambdas.dataset.gen_qa`,
writes its report to `EvaluationReportS3Uri`
(`s3://<artifacts>/runs/<execution id>/data-validation/evaluation-report.json`) and returns its
sha256 as `EvaluationDataSha256` ("none" when the run has no evaluation data), so that a broken
evaluation file is found before hours of training, and the score is tied to the exact bytes.

Event keys read here: `EvaluationTask` (absent: "none"), `EvaluationDataS3Uri` (absent or
"none": no data), `EvaluationReportS3Uri` (required with data).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.dataset.gen_qa import GenQaFormat
from lambdas.dataset.report import Report
from lambdas.dataset.validator import CHUNK_BYTES, Validator, check_object_key
from lambdas.validate_dataset import (
    DatasetAccessError,
    access_error,
    report_location,
    split_data_uri,
    write_report,
)

EVALUATION_PARAMETER = "EvaluationDataS3Uri"
NO_EVALUATION_DATA = "none"
SHA256_OUTPUT = "EvaluationDataSha256"


@dataclass(frozen=True)
class EvaluationData:
    """The run's evaluation file and where its report goes."""

    data_uri: str
    report_uri: str


def parse_evaluation(event: Mapping[str, Any]) -> EvaluationData | None:
    """The evaluation file of the event, or None; ValueError names the bad input."""
    raw = event.get(EVALUATION_PARAMETER, NO_EVALUATION_DATA)
    if raw == "":
        raise ValueError(
            f"{EVALUATION_PARAMETER} is empty: pass {NO_EVALUATION_DATA} for no evaluation data "
            "(SageMaker refuses an empty parameter value)"
        )
    if raw is None or raw == NO_EVALUATION_DATA:
        return None
    bucket, key = split_data_uri(raw, EVALUATION_PARAMETER)
    if key.endswith("/"):
        raise ValueError(
            f"{EVALUATION_PARAMETER} names a folder: the evaluation reads exactly one file, "
            "give the .jsonl object"
        )
    report = report_location(event.get("EvaluationReportS3Uri"), "EvaluationReportS3Uri")
    return EvaluationData(f"s3://{bucket}/{key}", report)


def _hashing(chunks: Iterator[bytes], digest: Any) -> Iterator[bytes]:
    for chunk in chunks:
        digest.update(chunk)
        yield chunk


def validate_evaluation_data(
    s3: Any, data: EvaluationData, *, strict: bool = False
) -> tuple[Report, str]:
    """Stream the file through the gen_qa rules, hashing it as it goes; write the report
    (valid or not). Returns the report and the file's hex sha256."""
    bucket, key = split_data_uri(data.data_uri, EVALUATION_PARAMETER)
    validator = Validator(
        global_batch_size=1, reasoning_enabled=None, strict=strict, data_format=GenQaFormat
    )
    problem = check_object_key(key)
    if problem is not None:
        validator.add_file_finding(data.data_uri, "file.name", problem)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        raise access_error(
            error, data.data_uri, "read", "s3:GetObject", EVALUATION_PARAMETER
        ) from error
    digest = hashlib.sha256()
    try:
        validator.feed_chunks(_hashing(body.iter_chunks(CHUNK_BYTES), digest), source=data.data_uri)
    except (BotoCoreError, ClientError) as error:
        raise DatasetAccessError(
            f"reading {data.data_uri} failed part way ({error}); start the execution again"
        ) from error
    finally:
        body.close()
    report = validator.finish()
    write_report(s3, data.report_uri, data.data_uri, report, EVALUATION_PARAMETER)
    return report, digest.hexdigest()


def check_evaluation_file(
    s3: Any, event: Mapping[str, Any], *, strict: bool = False
) -> dict[str, str]:
    """The step's outputs for the evaluation file: {SHA256_OUTPUT: hex, or "none" without data}.

    Raises DatasetInvalidError (the step's failure reason: first findings and the report's
    location) when the file breaks a rule, DatasetAccessError when it cannot be read.
    """
    from lambdas.validate_dataset import DatasetInvalidError, failure_reason

    data = parse_evaluation(event)
    if data is None:
        return {SHA256_OUTPUT: NO_EVALUATION_DATA}
    report, sha256 = validate_evaluation_data(s3, data, strict=strict)
    if not report.ok:
        raise DatasetInvalidError(
            f"{EVALUATION_PARAMETER}: " + failure_reason(report, data.report_uri)
        )
    return {SHA256_OUTPUT: sha256}

"""The pipeline's first step: refuse bad training data before any training instance starts.

A LambdaStep invokes `handler` with string inputs:

- `TrainDataS3Uri`: `s3://bucket/key.jsonl` (one file), or `s3://bucket/prefix/` ending in "/"
  (every object under the prefix, in key order, checked as one dataset, as the training
  channel would read them all);
- `ValidationDataS3Uri`: the validation data, in the same forms, or "none" (also when absent);
- `GlobalBatchSize`: the recipe's global batch size, e.g. "32";
- `ReasoningEnabled`: "true" or "false", the recipe's reasoning_enabled;
- `ReportS3Uri`: `s3://bucket/key` where the training data's full JSON report is written,
  valid or not; `ValidationReportS3Uri` likewise for the validation data (required with it);
- `Strict` (optional): "true" records every warning as an error; absent or "false" by default;
- the evaluation file's inputs (`lambdas.evaluation_data`); with `EvaluationOnly` "true" (the
  evaluate-only pipeline) only the evaluation file is checked and the only output is
  `EvaluationDataSha256`.

The validation data is checked exactly as the training data (the same rules, the same reads
with this function's role), because the job reads it through a channel of its own. The data
is streamed from S3 in 1 MiB chunks (memory does not grow with the file) and checked by
`lambdas.dataset`. Only errors fail the step: data with warnings alone returns
`{"Samples": "<n>", "Findings": "<warnings>", "Warnings": "<rule: count, ...>",
"ValidationSamples": "<n>" or "none"}` ("0" and "" when clean; warnings of both datasets
counted), and the warnings are in the reports. Invalid data raises `DatasetInvalidError`, whose
message (the step's failure reason) holds the first findings of each invalid dataset and its
report location. Unreadable data raises `DatasetAccessError` naming the object
and the fix; a bad event raises `ValueError` naming the input. Media sizes are not checked
(it would take one HEAD request per media object; see docs/decisions/0006).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.aws_errors import ACCESS_DENIED, NOT_FOUND, error_code
from lambdas.dataset.validator import CHUNK_BYTES, Report, Validator, check_object_key

# SageMaker keeps a limited failure reason; stay well inside it.
FAILURE_REASON_CHARS = 1000
# A prefix holding more files than this is almost certainly the wrong prefix.
MAX_FILES = 1000
TRAIN_PARAMETER = "TrainDataS3Uri"
VALIDATION_PARAMETER = "ValidationDataS3Uri"
# The parameter's "no validation data" (lambdas.recipe.spec.NO_VALIDATION_DATA; this module
# keeps to lambdas.dataset and the standard library, so the value is repeated and tested).
NO_VALIDATION_DATA = "none"
EVALUATION_PARAMETER = "EvaluationDataS3Uri"
_WHAT = {
    TRAIN_PARAMETER: "training data",
    VALIDATION_PARAMETER: "validation data",
    EVALUATION_PARAMETER: "evaluation data",
}
# The key that names each dataset in its report.
_REPORT_LABELS = {
    TRAIN_PARAMETER: "train_data_s3_uri",
    VALIDATION_PARAMETER: "validation_data_s3_uri",
    EVALUATION_PARAMETER: "evaluation_data_s3_uri",
}

_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.*)")

_LOG = logging.getLogger(__name__)
_LOG.setLevel(logging.INFO)


class DatasetInvalidError(Exception):
    """The dataset breaks at least one rule; the message is the failure reason."""


class DatasetAccessError(Exception):
    """The dataset or the report location cannot be read or written; the message says why."""


@dataclass(frozen=True)
class ExtraDataset:
    """A dataset checked beside the training data (the validation data) and its report."""

    data_uri: str
    report_uri: str
    parameter: str = VALIDATION_PARAMETER


@dataclass(frozen=True)
class Request:
    """A parsed event. `train_key` is an object key, or a prefix when it ends with "/";
    `validation` is None when the run has no validation data."""

    train_bucket: str
    train_key: str
    global_batch_size: int
    reasoning_enabled: bool
    report_bucket: str
    report_key: str
    validation: ExtraDataset | None = None
    strict: bool = False

    @property
    def train_uri(self) -> str:
        return f"s3://{self.train_bucket}/{self.train_key}"

    @property
    def report_uri(self) -> str:
        return f"s3://{self.report_bucket}/{self.report_key}"


def _required(event: Mapping[str, Any], name: str) -> Any:
    if name not in event or event[name] is None or event[name] == "":
        raise ValueError(f"the event has no {name}: pass it as an input of the validation step")
    return event[name]


def _split_uri(value: object, name: str) -> tuple[str, str]:
    match = _S3_URI.fullmatch(value) if isinstance(value, str) else None
    if match is None:
        raise ValueError(f"{name} must be an s3://bucket/key URI, got {value!r}")
    return match.group(1), match.group(2)


def _data_uri(value: object, name: str) -> tuple[str, str]:
    bucket, key = _split_uri(value, name)
    if not key:
        raise ValueError(
            f"{name} names a whole bucket: give the .jsonl object, or a folder ending in '/'"
        )
    return bucket, key


def _report_uri(value: object, name: str) -> tuple[str, str]:
    bucket, key = _split_uri(value, name)
    if not key or key.endswith("/"):
        raise ValueError(f"{name} must name an object, not a folder: got {key!r}")
    return bucket, key


def split_data_uri(value: object, name: str) -> tuple[str, str]:
    """(bucket, key) of a dataset URI given in input `name`; ValueError says what it must be."""
    return _data_uri(value, name)


def report_location(value: object, name: str) -> str:
    """The report object URI given in input `name` (required); ValueError names the input."""
    if value is None or value == "":
        raise ValueError(f"the event has no {name}: pass it as an input of the validation step")
    bucket, key = _report_uri(value, name)
    return f"s3://{bucket}/{key}"


def _validation_part(event: Mapping[str, Any]) -> ExtraDataset | None:
    """The validation data and its report location, or None for "none" (or no such input)."""
    raw = event.get(VALIDATION_PARAMETER, NO_VALIDATION_DATA)
    if raw == "":
        raise ValueError(
            f"{VALIDATION_PARAMETER} is empty: pass {NO_VALIDATION_DATA} for no validation data "
            "(SageMaker refuses an empty parameter value)"
        )
    if raw is None or raw == NO_VALIDATION_DATA:
        return None
    bucket, key = _data_uri(raw, VALIDATION_PARAMETER)
    report_bucket, report_key = _report_uri(
        _required(event, "ValidationReportS3Uri"), "ValidationReportS3Uri"
    )
    return ExtraDataset(f"s3://{bucket}/{key}", f"s3://{report_bucket}/{report_key}")


def parse_event(event: Mapping[str, Any]) -> Request:
    """The event's inputs, checked; ValueError names the input and what it must be."""
    if not isinstance(event, Mapping):
        raise ValueError(f"the event must be a JSON object, got {type(event).__name__}")
    train_bucket, train_key = _data_uri(_required(event, TRAIN_PARAMETER), TRAIN_PARAMETER)
    report_bucket, report_key = _report_uri(_required(event, "ReportS3Uri"), "ReportS3Uri")
    validation = _validation_part(event)

    raw_batch = _required(event, "GlobalBatchSize")
    text_batch = str(raw_batch).strip()
    if isinstance(raw_batch, bool) or not text_batch.isdigit() or int(text_batch) < 1:
        raise ValueError(f"GlobalBatchSize must be a positive integer, got {raw_batch!r}")

    raw_reasoning = _required(event, "ReasoningEnabled")
    reasoning = str(raw_reasoning).strip().lower()
    if reasoning not in ("true", "false"):
        raise ValueError(f"ReasoningEnabled must be 'true' or 'false', got {raw_reasoning!r}")

    raw_strict = event.get("Strict")
    strict = "false" if raw_strict in (None, "") else str(raw_strict).strip().lower()
    if strict not in ("true", "false"):
        raise ValueError(f"Strict must be 'true' or 'false', got {raw_strict!r}")

    return Request(
        train_bucket=train_bucket,
        train_key=train_key,
        global_batch_size=int(text_batch),
        reasoning_enabled=reasoning == "true",
        report_bucket=report_bucket,
        report_key=report_key,
        validation=validation,
        strict=strict == "true",
    )


def _access_error(
    error: ClientError,
    uri: str,
    action: str,
    permission: str,
    parameter: str = TRAIN_PARAMETER,
) -> DatasetAccessError:
    """One clear message per failure kind, naming the object, the parameter and the fix."""
    code = error_code(error)
    bucket = uri.split("/")[2]
    if code == "NoSuchBucket":
        return DatasetAccessError(
            f"cannot {action} {uri}: bucket {bucket} does not exist; correct the URI"
        )
    if code in NOT_FOUND:
        hint = "" if uri.endswith((".jsonl", "/")) else " (a folder URI must end with '/')"
        return DatasetAccessError(
            f"cannot {action} {uri}: the object does not exist; upload the "
            f"{_WHAT.get(parameter, 'data')} there or correct {parameter}{hint}"
        )
    if code in ACCESS_DENIED:
        return DatasetAccessError(
            f"cannot {action} {uri}: access denied; grant the validation function's role "
            f"{permission} on it (and kms:Decrypt/kms:GenerateDataKey on the bucket's key). "
            "Without s3:ListBucket, S3 also answers this for an object that does not exist"
        )
    return DatasetAccessError(f"cannot {action} {uri}: {code or 'error'}: {error}")


access_error = _access_error


def list_dataset_keys(
    s3: Any, bucket: str, key: str, parameter: str = TRAIN_PARAMETER
) -> list[str]:
    """The keys that make up the dataset at `key` (an object, or a prefix ending in "/"), in key
    order, folder markers left out. DatasetAccessError when a prefix is empty or unreadable;
    messages name `parameter`, the pipeline parameter that gave the location."""
    what = _WHAT.get(parameter, "data")
    uri = f"s3://{bucket}/{key}"
    if not key.endswith("/"):
        return [key]
    keys: list[str] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=key):
            for item in page.get("Contents", []):
                if item["Key"].endswith("/"):
                    continue
                keys.append(item["Key"])
                if len(keys) > MAX_FILES:
                    raise DatasetAccessError(
                        f"{uri} holds more than {MAX_FILES} objects: point {parameter} at the "
                        f"folder that holds only the {what}"
                    )
    except ClientError as error:
        raise _access_error(error, uri, "list", "s3:ListBucket", parameter) from error
    if not keys:
        raise DatasetAccessError(
            f"no objects under {uri}: upload the {what} (.jsonl) there or correct {parameter}"
        )
    return keys


def validate_s3_dataset(
    s3: Any,
    train_uri: str,
    *,
    global_batch_size: int,
    reasoning_enabled: bool | None,
    max_findings: int = 1000,
    parameter: str = TRAIN_PARAMETER,
    strict: bool = False,
    data_format: Any = None,
) -> Report:
    """Stream the dataset at `train_uri` (an object, or a prefix ending in "/") through the
    validator; nothing is written. Media must be in the dataset's bucket. The same rules apply
    to any dataset; `parameter` names where the URI came from in messages. `strict` records
    every warning as an error; `data_format` is another format's factory (`Validator`), e.g.
    `lambdas.dataset.gen_qa.GenQaFormat` for evaluation data.

    ValueError for a malformed URI; DatasetAccessError when an object cannot be listed or read.
    """
    bucket, key = _split_uri(train_uri, parameter)
    is_prefix = key.endswith("/")
    validator = Validator(
        global_batch_size=global_batch_size,
        reasoning_enabled=reasoning_enabled,
        dataset_bucket=bucket,
        max_findings=max_findings,
        strict=strict,
        data_format=data_format,
    )
    for object_key in list_dataset_keys(s3, bucket, key, parameter):
        uri = f"s3://{bucket}/{object_key}"
        problem = check_object_key(object_key)
        if problem is not None and is_prefix and not object_key.endswith(".jsonl"):
            # Another kind of file beside the data: report it, and do not parse it line by line.
            validator.add_file_finding(uri, "file.name", problem)
            continue
        try:
            body = s3.get_object(Bucket=bucket, Key=object_key)["Body"]
        except ClientError as error:
            raise _access_error(error, uri, "read", "s3:GetObject", parameter) from error
        if problem is not None:
            validator.add_file_finding(uri, "file.name", problem)
        try:
            validator.feed_chunks(body.iter_chunks(CHUNK_BYTES), source=uri)
        except (BotoCoreError, ClientError) as error:
            raise DatasetAccessError(
                f"reading {uri} failed part way ({error}); start the execution again"
            ) from error
        finally:
            body.close()
    return validator.finish()


def write_report(
    s3: Any,
    report_uri: str,
    train_uri: str,
    report: Report,
    parameter: str = TRAIN_PARAMETER,
) -> None:
    """Write the full report as JSON; DatasetAccessError names the location and the fix.
    The report names its data under "train_data_s3_uri" or "validation_data_s3_uri"."""
    bucket, key = _split_uri(report_uri, "ReportS3Uri")
    label = _REPORT_LABELS.get(parameter, "train_data_s3_uri")
    document = {label: train_uri, **report.to_dict()}
    try:
        s3.put_object(
            Bucket=bucket,
            Key=key,
            Body=json.dumps(document, indent=1).encode("utf-8"),
            ContentType="application/json",
        )
    except ClientError as error:
        raise _access_error(error, report_uri, "write", "s3:PutObject") from error


def validate_dataset(s3: Any, request: Request) -> Report:
    """The step's work for the training data: validate it, then write its report (valid or
    not). Nothing is written unless every object was read to the end."""
    report = validate_s3_dataset(
        s3,
        request.train_uri,
        global_batch_size=request.global_batch_size,
        reasoning_enabled=request.reasoning_enabled,
        strict=request.strict,
    )
    write_report(s3, request.report_uri, request.train_uri, report)
    return report


def validate_extra_dataset(s3: Any, request: Request, extra: ExtraDataset) -> Report:
    """The validation data, checked exactly as the training data, and its report written."""
    report = validate_s3_dataset(
        s3,
        extra.data_uri,
        global_batch_size=request.global_batch_size,
        reasoning_enabled=request.reasoning_enabled,
        parameter=extra.parameter,
        strict=request.strict,
    )
    write_report(s3, extra.report_uri, extra.data_uri, report, extra.parameter)
    return report


def failure_reason(
    report: Report, report_uri: str, budget_chars: int = FAILURE_REASON_CHARS
) -> str:
    """The short text a failed step shows: first findings, then where the full report is."""
    suffix = f"\nFull report: {report_uri}"
    budget = max(budget_chars - len(suffix), 200)
    return report.summary(limit=5, max_chars=budget) + suffix


@functools.cache
def _s3_client() -> Any:
    # Built once per Lambda container; standard retries ride out S3 throttling.
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, str]:
    """LambdaStep entry point: see the module docstring for the event and the outcomes."""
    if isinstance(event, Mapping) and event.get("EvaluationOnly") == "true":
        # The evaluate-only pipeline checks its evaluation file and nothing else.
        return _evaluation_outputs(_s3_client(), event, strict=False)
    request = parse_event(event)
    s3 = _s3_client()
    checked = [(TRAIN_PARAMETER, request.report_uri, validate_dataset(s3, request))]
    if request.validation is not None:
        extra = request.validation
        checked.append(
            (extra.parameter, extra.report_uri, validate_extra_dataset(s3, request, extra))
        )
    for parameter, report_uri, report in checked:
        _LOG.info("%s: %s (report %s)", parameter, report.summary(limit=0), report_uri)
    invalid = [(parameter, uri, report) for parameter, uri, report in checked if not report.ok]
    if invalid:
        # Each invalid dataset gets its share of the failure reason, named by its parameter.
        share = FAILURE_REASON_CHARS // len(invalid)
        raise DatasetInvalidError(
            "\n".join(
                (f"{parameter}: " if len(checked) > 1 else "")
                + failure_reason(report, uri, share - len(parameter) - 3)
                for parameter, uri, report in invalid
            )
        )
    validation_samples = str(checked[1][2].samples) if len(checked) > 1 else NO_VALIDATION_DATA
    return {
        **step_outputs([report for _parameter, _uri, report in checked]),
        "ValidationSamples": validation_samples,
        **_evaluation_outputs(s3, event, request.strict),
    }


def _evaluation_outputs(s3: Any, event: Mapping[str, Any], strict: bool) -> dict[str, str]:
    """The evaluation file's check (`lambdas.evaluation_data`), after the training data passed:
    {"EvaluationDataSha256": hex or "none"}; DatasetInvalidError when it is invalid."""
    from lambdas.evaluation_data import check_evaluation_file  # it builds on this module

    return check_evaluation_file(s3, event, strict=strict)


def step_outputs(reports: Sequence[Report]) -> dict[str, str]:
    """The outputs of a step that passed: the training data's sample count, and the findings of
    every dataset checked, all warnings (counted, and by rule)."""
    counts: Counter[str] = Counter()
    for report in reports:
        counts.update(report.counts_by_rule)
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0]))
    return {
        "Samples": str(reports[0].samples),
        "Findings": str(sum(report.total_findings for report in reports)),
        "Warnings": ", ".join(f"{rule}: {count}" for rule, count in ranked),
    }

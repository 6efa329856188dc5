"""The pipeline's first step: refuse bad training data before any training instance starts.

A LambdaStep invokes `handler` with string inputs:

- `TrainDataS3Uri`: `s3://bucket/key.jsonl` (one file), or `s3://bucket/prefix/` ending in "/"
  (every object under the prefix, in key order, checked as one dataset, as the training
  channel would read them all);
- `GlobalBatchSize`: the recipe's global batch size, e.g. "32";
- `ReasoningEnabled`: "true" or "false", the recipe's reasoning_enabled;
- `ReportS3Uri`: `s3://bucket/key` where the full JSON report is written, valid or not;
- `Strict` (optional): "true" records every warning as an error; absent or "false" by default.

The data is streamed from S3 in 1 MiB chunks (memory does not grow with the file) and checked
by `lambdas.dataset`. Only errors fail the step: a dataset with warnings alone returns
`{"Samples": "<n>", "Findings": "<warnings>", "Warnings": "<rule: count, ...>"}` ("0" and "" when
clean), and the warnings are in the report. An invalid dataset raises `DatasetInvalidError`, whose
message (the step's failure reason) holds the first findings and the report location.
Unreadable data raises `DatasetAccessError` naming the object and the fix; a bad event raises
`ValueError` naming the input. Media sizes are not checked
(it would take one HEAD request per media object; see docs/decisions/0006).
"""

from __future__ import annotations

import functools
import json
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.aws_errors import ACCESS_DENIED, NOT_FOUND, error_code
from lambdas.dataset import CHUNK_BYTES, Report, Validator, check_object_key

# SageMaker keeps a limited failure reason; stay well inside it.
FAILURE_REASON_CHARS = 1000
# A prefix holding more files than this is almost certainly the wrong prefix.
MAX_FILES = 1000

_S3_URI = re.compile(r"s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.*)")

_LOG = logging.getLogger(__name__)
_LOG.setLevel(logging.INFO)


class DatasetInvalidError(Exception):
    """The dataset breaks at least one rule; the message is the failure reason."""


class DatasetAccessError(Exception):
    """The dataset or the report location cannot be read or written; the message says why."""


@dataclass(frozen=True)
class Request:
    """A parsed event. `train_key` is an object key, or a prefix when it ends with "/"."""

    train_bucket: str
    train_key: str
    global_batch_size: int
    reasoning_enabled: bool
    report_bucket: str
    report_key: str
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


def parse_event(event: Mapping[str, Any]) -> Request:
    """The event's inputs, checked; ValueError names the input and what it must be."""
    if not isinstance(event, Mapping):
        raise ValueError(f"the event must be a JSON object, got {type(event).__name__}")
    train_bucket, train_key = _split_uri(_required(event, "TrainDataS3Uri"), "TrainDataS3Uri")
    if not train_key:
        raise ValueError(
            "TrainDataS3Uri names a whole bucket: give the .jsonl object, or a folder ending in '/'"
        )
    report_bucket, report_key = _split_uri(_required(event, "ReportS3Uri"), "ReportS3Uri")
    if not report_key or report_key.endswith("/"):
        raise ValueError(f"ReportS3Uri must name an object, not a folder: got {report_key!r}")

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
        strict=strict == "true",
    )


def _access_error(error: ClientError, uri: str, action: str, permission: str) -> DatasetAccessError:
    """One clear message per failure kind, naming the object and the fix."""
    code = error_code(error)
    bucket = uri.split("/")[2]
    if code == "NoSuchBucket":
        return DatasetAccessError(
            f"cannot {action} {uri}: bucket {bucket} does not exist; correct the URI"
        )
    if code in NOT_FOUND:
        hint = "" if uri.endswith((".jsonl", "/")) else " (a folder URI must end with '/')"
        return DatasetAccessError(
            f"cannot {action} {uri}: the object does not exist; upload the training data there "
            f"or correct TrainDataS3Uri{hint}"
        )
    if code in ACCESS_DENIED:
        return DatasetAccessError(
            f"cannot {action} {uri}: access denied; grant the validation function's role "
            f"{permission} on it (and kms:Decrypt/kms:GenerateDataKey on the bucket's key). "
            "Without s3:ListBucket, S3 also answers this for an object that does not exist"
        )
    return DatasetAccessError(f"cannot {action} {uri}: {code or 'error'}: {error}")


def list_dataset_keys(s3: Any, bucket: str, key: str) -> list[str]:
    """The keys that make up the dataset at `key` (an object, or a prefix ending in "/"), in key
    order, folder markers left out. DatasetAccessError when a prefix is empty or unreadable."""
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
                        f"{uri} holds more than {MAX_FILES} objects: point TrainDataS3Uri at the "
                        "folder that holds only the training data"
                    )
    except ClientError as error:
        raise _access_error(error, uri, "list", "s3:ListBucket") from error
    if not keys:
        raise DatasetAccessError(
            f"no objects under {uri}: upload the training data (.jsonl) there or correct "
            "TrainDataS3Uri"
        )
    return keys


def validate_s3_dataset(
    s3: Any,
    train_uri: str,
    *,
    global_batch_size: int,
    reasoning_enabled: bool | None,
    max_findings: int = 1000,
    strict: bool = False,
) -> Report:
    """Stream the dataset at `train_uri` (an object, or a prefix ending in "/") through the
    validator; nothing is written. Media must be in the dataset's bucket. `strict` records every
    warning as an error.

    ValueError for a malformed URI; DatasetAccessError when an object cannot be listed or read.
    """
    bucket, key = _split_uri(train_uri, "TrainDataS3Uri")
    is_prefix = key.endswith("/")
    validator = Validator(
        global_batch_size=global_batch_size,
        reasoning_enabled=reasoning_enabled,
        dataset_bucket=bucket,
        max_findings=max_findings,
        strict=strict,
    )
    for object_key in list_dataset_keys(s3, bucket, key):
        uri = f"s3://{bucket}/{object_key}"
        problem = check_object_key(object_key)
        if problem is not None and is_prefix and not object_key.endswith(".jsonl"):
            # Another kind of file beside the data: report it, and do not parse it line by line.
            validator.add_file_finding(uri, "file.name", problem)
            continue
        try:
            body = s3.get_object(Bucket=bucket, Key=object_key)["Body"]
        except ClientError as error:
            raise _access_error(error, uri, "read", "s3:GetObject") from error
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


def write_report(s3: Any, report_uri: str, train_uri: str, report: Report) -> None:
    """Write the full report as JSON; DatasetAccessError names the location and the fix."""
    bucket, key = _split_uri(report_uri, "ReportS3Uri")
    document = {"train_data_s3_uri": train_uri, **report.to_dict()}
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
    """The step's work: validate the dataset, then write the report (valid or not).

    Nothing is written unless every object was read to the end.
    """
    report = validate_s3_dataset(
        s3,
        request.train_uri,
        global_batch_size=request.global_batch_size,
        reasoning_enabled=request.reasoning_enabled,
        strict=request.strict,
    )
    write_report(s3, request.report_uri, request.train_uri, report)
    return report


def failure_reason(report: Report, report_uri: str) -> str:
    """The short text a failed step shows: first findings, then where the full report is."""
    suffix = f"\nFull report: {report_uri}"
    budget = max(FAILURE_REASON_CHARS - len(suffix), 200)
    return report.summary(limit=5, max_chars=budget) + suffix


@functools.cache
def _s3_client() -> Any:
    # Built once per Lambda container; standard retries ride out S3 throttling.
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, str]:
    """LambdaStep entry point: see the module docstring for the event and the outcomes."""
    request = parse_event(event)
    report = validate_dataset(_s3_client(), request)
    _LOG.info("%s: %s (report %s)", request.train_uri, report.summary(limit=0), request.report_uri)
    if not report.ok:
        raise DatasetInvalidError(failure_reason(report, request.report_uri))
    return step_outputs(report)


def step_outputs(report: Report) -> dict[str, str]:
    """The outputs of a step that passed: its findings are all warnings (counted, and by rule)."""
    ranked = sorted(report.counts_by_rule.items(), key=lambda item: (-item[1], item[0]))
    return {
        "Samples": str(report.samples),
        "Findings": str(report.total_findings),
        "Warnings": ", ".join(f"{rule}: {count}" for rule, count in ranked),
    }

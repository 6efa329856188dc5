"""The parent's comparable score: what a checkpoint's score is compared with.

The parent is what the run started from (`ModelNameOrPath`): a checkpoint, found in the group by
its URI (`lambdas.registry.continuity.find_checkpoint_record`, the lookup the technique check
makes), or the base model, whose scores are the baseline object the record step writes at
`<BaselineS3Prefix><model>/<task>/<data sha256 or "benchmark">.json`. A score is comparable only
for the same task and the same evaluation data (same sha256; a benchmark has none); otherwise
the comparison records "no comparable parent score" and why.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lambdas.aws_errors import NOT_FOUND, error_code
from lambdas.evaluation.scores import KEY_OMITTED, scorecard_of
from lambdas.recipe import starts_from_checkpoint
from lambdas.registry.continuity import find_checkpoint_record
from lambdas.registry.errors import RegistrationError, s3_read_error, sagemaker_error, split_s3_uri

BENCHMARK_DATA = "benchmark"
# A baseline is one JSON object of a few KB; anything larger is not one.
MAX_BASELINE_BYTES = 1024 * 1024


@dataclass(frozen=True)
class Comparison:
    """The parent and its comparable scores (`scores` is empty when there are none; `reason`
    then says why). `source` is where the scores came from (a package ARN or a baseline URI)."""

    parent: str
    scores: dict[str, float] = field(default_factory=dict)
    source: str = ""
    reason: str = ""

    def value(self, metric: str) -> float | None:
        return self.scores.get(metric)

    def change(self, metric: str, value: float) -> float | None:
        parent = self.scores.get(metric)
        return None if parent is None else value - parent

    def why_not(self, metric: str) -> str:
        """Why there is no comparable parent score for `metric` ("" when there is one)."""
        if metric in self.scores:
            return ""
        if self.reason:
            return self.reason
        return f"the parent's evaluation ({self.source}) has no {metric}"


def model_slug(model: str) -> str:
    """A model name as one S3 key segment: `nova-lite-2/prod` -> `nova-lite-2_prod`."""
    return re.sub(r"[^A-Za-z0-9._-]", "_", model)


def baseline_uri(prefix: str, model: str, task: str, data_sha256: str) -> str:
    return f"{prefix}{model_slug(model)}/{task}/{data_sha256 or BENCHMARK_DATA}.json"


def _data_text(data_sha256: str) -> str:
    return f"evaluation data sha256 {data_sha256}" if data_sha256 else "its benchmark data"


def missing_baseline(
    error: ClientError, model: str, task: str, data_sha256: str, uri: str
) -> Comparison | None:
    """ "No comparable score" when the baseline does not exist, else None (the error stands).

    S3 answers a missing key with 403 AccessDenied, not 404, to a caller without s3:ListBucket
    (the functions have GetObject on `baselines/*` only), so a plain denial means "no baseline
    yet" too; a KMS denial means the object exists and stays an error.
    """
    code = error_code(error)
    if code not in NOT_FOUND and code not in ("AccessDenied", "403"):
        return None
    return Comparison(
        model,
        reason=(
            f"no baseline of {model} for {task} on {_data_text(data_sha256)} ({uri}); "
            "score the base model first: python -m pipeline evaluate --base-model"
        ),
    )


def read_baseline(s3: Any, prefix: str, model: str, task: str, data_sha256: str) -> Comparison:
    """The base model's scores for this task and data, from its baseline object."""
    uri = baseline_uri(prefix, model, task, data_sha256)
    bucket, key = split_s3_uri(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
        data = body.read(MAX_BASELINE_BYTES + 1)
        body.close()
    except ClientError as error:
        missing = missing_baseline(error, model, task, data_sha256, uri)
        if missing is None:
            raise s3_read_error(error, uri, "") from error
        return missing
    try:
        document = json.loads(data[:MAX_BASELINE_BYTES])
        metrics = document["metrics"]
        scores = {str(k): float(v) for k, v in metrics.items()}
        same = document.get("task") == task and document.get("data_sha256", "") == data_sha256
    except (ValueError, TypeError, KeyError, AttributeError) as error:
        return Comparison(model, reason=f"the baseline {uri} is unreadable ({error}); rewrite it")
    if not same:
        return Comparison(model, reason=f"the baseline {uri} is for another task or data")
    return Comparison(model, scores, uri)


def _package_scores(s3: Any, metadata: Mapping[str, str]) -> dict[str, float]:
    """A package's recorded metrics; those only in its report are read from the report."""
    card = scorecard_of(metadata)
    if card is None:
        return {}
    scores = dict(card.metrics)
    if card.score is not None and card.metric:
        scores.setdefault(card.metric, card.score)
    if card.report_uri and KEY_OMITTED in metadata:
        bucket, key = split_s3_uri(card.report_uri)
        try:
            report = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            for name, entry in report.get("metrics", {}).items():
                scores.setdefault(str(name), float(entry["value"]))
        except (ClientError, BotoCoreError, ValueError, TypeError, KeyError, AttributeError):
            pass  # the metadata's scores stand; the report only adds the metrics left out
    return scores


def find_parent_scores(
    sm: Any,
    s3: Any,
    *,
    group: str,
    parent: str,
    task: str,
    data_sha256: str,
    baseline_prefix: str,
) -> Comparison:
    """The parent's scores comparable with an evaluation of `task` on `data_sha256`."""
    if not starts_from_checkpoint(parent):
        return read_baseline(s3, baseline_prefix, parent, task, data_sha256)
    try:
        record, _ = find_checkpoint_record(sm, group, parent)
    except ClientError as error:
        raise sagemaker_error(error, f"model package group {group} (the parent's score)") from error
    except BotoCoreError as error:
        raise RegistrationError(
            f"cannot read model package group {group} ({error}); retry"
        ) from error
    if record is None:
        return Comparison(
            parent, reason=f"the parent checkpoint {parent} is not registered in {group}"
        )
    card = scorecard_of(record.metadata)
    where = f"the parent v{record.version} ({record.model_package_arn})"
    if card is None:
        return Comparison(parent, source=record.model_package_arn, reason=f"{where} has no score")
    if card.task != task or card.data_sha256 != data_sha256:
        return Comparison(
            parent,
            source=record.model_package_arn,
            reason=(
                f"{where} was scored on {card.task} with {_data_text(card.data_sha256)}, "
                f"this checkpoint on {task} with {_data_text(data_sha256)}"
            ),
        )
    return Comparison(parent, _package_scores(s3, record.metadata), record.model_package_arn)


def write_json(s3: Any, uri: str, document: Mapping[str, Any]) -> None:
    """Write a JSON document to S3 (the bucket's default encryption applies)."""
    bucket, key = split_s3_uri(uri)
    body = json.dumps(document, indent=2, sort_keys=True).encode()
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/json")
    except ClientError as error:
        code = error_code(error)
        raise RegistrationError(
            f"cannot write {uri}: {code or error}; grant the function's role s3:PutObject on it "
            "and kms:GenerateDataKey on the bucket's key"
        ) from error

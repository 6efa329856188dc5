"""The evaluate-only pipeline's last step: record an evaluation's scores.

A LambdaStep invokes `handler` with string inputs: `ModelPackageArn` (`none` for the base model
or an unregistered checkpoint), `ModelNameOrPath` (what was evaluated), `ModelPackageGroupName`,
`PipelineExecutionArn`, and the evaluation inputs `EvaluationTask`, `EvaluationJobName`,
`EvaluationModelArtifactsS3Uri`, `EvaluationDataS3Uri`, `EvaluationDataSha256`,
`EvaluationRunName`, `EvaluationReportS3Uri`, `BaselineS3Prefix`.

It writes the statistics report, then records the scores as the package's metadata (every other
field kept, the approval status never touched) or, for the base model, as the baseline object
later runs compare with (lambdas.evaluation.steps.record_evaluation). It returns
`EvaluationScore` and `ScoreChange` as strings. Any problem raises with a message naming the
object and the fix, before anything is recorded.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config

from lambdas.evaluation import RecordRequest, record_evaluation


@functools.cache
def _clients() -> tuple[Any, Any]:
    # Built once per Lambda container; standard retries ride out throttling.
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return boto3.client("sagemaker", config=config), boto3.client("s3", config=config)


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, str]:
    """LambdaStep entry point: see the module docstring for the event and the outputs."""
    request = RecordRequest.from_event(event)
    sagemaker, s3 = _clients()
    return record_evaluation(sagemaker, s3, request)

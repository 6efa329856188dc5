"""The pipeline step after training: read the job's output and register its checkpoint.

A LambdaStep invokes `handler` with string inputs:

- `TrainingJobName`; `ModelArtifactsS3Uri` (the job's `.../<job>/output/model.tar.gz`; its
  `output.tar.gz` is read from the same folder);
- `ModelPackageGroupName`; `ModelNameOrPath` (what the run started from: the parent);
- `Technique`; `RecipeS3Uri` (the prepare step's output);
- optional: `PipelineExecutionArn`, `ModelApprovalStatus` (default PendingManualApproval),
  `RecipeSha256` (checked against the recipe when given), `TrainDataS3Uri`,
  `ValidationDataS3Uri`, `TrainingInstanceType`, `MaxRuntimeSeconds` (recorded for replays),
  `SourceModelPackageArn` (the package a replay replays, set by `promote`; "none" otherwise);
- the evaluation inputs (`EvaluationTask`, `EvaluationJobName`, `EvaluationModelArtifactsS3Uri`,
  `EvaluationDataS3Uri`, `EvaluationDataSha256`, `EvaluationRunName`, `GateMetric`,
  `GateThreshold`, `GateRequiresImprovement`, `EvaluationReportS3Uri`, `BaselineS3Prefix`;
  lambdas.evaluation.inputs). With a task other than `none`, the package is created with its
  scores, statistics report and the gate's status (lambdas.evaluation.steps).

It returns, all as strings: `CheckpointS3Uri`, `ModelPackageArn`, `ParentModel`,
`FinalTrainingLoss` ("" when the metrics are unavailable) and `TrainingSteps` (likewise); and,
when the event carries `EvaluationTask` (even `none`), `EvaluationScore`, `GateVerdict` and
`ScoreChange` ("none", "not evaluated", "none" when not evaluated).
A second call for the same training job returns the same package and creates nothing.
Any problem raises with a message naming the object and the fix, before anything is
registered (lambdas.registry.register_checkpoint).

When the environment tracks experiments, three more inputs name the MLflow run
(`MlflowTrackingArn`, `MlflowExperimentName`, `MlflowRunName`): after registering, the step tags
that run with the checkpoint URI, the package ARN and the parent, and logs the evaluation's
scores as metrics and its task, data, verdict and change as params; a tracker failure is a warning
in the log, never a lost registration (lambdas.tracking.registration).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import boto3
from botocore.config import Config

from lambdas.evaluation import (
    NOT_EVALUATED_OUTPUTS,
    EvaluationInputs,
    ScoreCard,
    register_evaluated,
    scorecard_of,
)
from lambdas.registry import (
    KEY_FINAL_LOSS,
    KEY_TRAINING_STEPS,
    Registered,
    RegistrationRequest,
    register_checkpoint,
)
from lambdas.tracking.registration import log_registration, tracking_target


def outputs(registered: Registered) -> dict[str, str]:
    """The step's outputs for a registration (new or found again)."""
    record = registered.record
    return {
        "CheckpointS3Uri": record.checkpoint_uri,
        "ModelPackageArn": record.model_package_arn,
        "ParentModel": record.parent,
        "FinalTrainingLoss": record.metadata.get(KEY_FINAL_LOSS, ""),
        "TrainingSteps": record.metadata.get(KEY_TRAINING_STEPS, ""),
    }


def score_params(scores: ScoreCard | None) -> dict[str, str]:
    """The evaluation's facts that MLflow keeps as the run's params (its scores are metrics)."""
    if scores is None:
        return {}
    facts = {
        "evaluation_task": scores.task,
        "evaluation_data_sha256": scores.data_sha256,
        "gate_metric": scores.metric,
        "gate_verdict": scores.verdict,
        "parent_score": "" if scores.parent_score is None else str(scores.parent_score),
        "score_change": "" if scores.change is None else str(scores.change),
    }
    return {key: value for key, value in facts.items() if value}


@functools.cache
def _clients() -> tuple[Any, Any]:
    # Built once per Lambda container; standard retries ride out throttling.
    config = Config(retries={"mode": "standard", "max_attempts": 5})
    return boto3.client("sagemaker", config=config), boto3.client("s3", config=config)


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, str]:
    """LambdaStep entry point: see the module docstring for the event and the outputs."""
    request = RegistrationRequest.from_event(event)
    tracking = tracking_target(event)  # checked before anything is registered
    evaluation = EvaluationInputs.from_event(event, with_gate=True)
    sagemaker, s3 = _clients()
    scored: dict[str, str] = {}
    if evaluation is not None:
        registered, scored = register_evaluated(sagemaker, s3, request, evaluation)
    else:
        registered = register_checkpoint(sagemaker, s3, request)
        if "EvaluationTask" in event:
            # A definition that passes the evaluation inputs also declares their outputs.
            scored = dict(NOT_EVALUATED_OUTPUTS)
    if tracking is not None:
        record = registered.record
        scores = scorecard_of(record.metadata)
        log_registration(
            tracking,
            checkpoint_uri=record.checkpoint_uri,
            model_package_arn=record.model_package_arn,
            parent=record.parent,
            training_job=request.training_job_name,
            metrics=scores.metrics if scores is not None else {},
            params=score_params(scores),
        )
    return {**outputs(registered), **scored}

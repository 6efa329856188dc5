"""The two pipeline steps that record scores: registration with an evaluation, and the
evaluate-only pipeline's record step.

- `register_evaluated(sm, s3, request, inputs)`: the register step when the run evaluated its
  checkpoint. The package is created once, with its scores (metadata and ModelMetrics), its
  statistics report already in S3, and the gate's verdict as its status: no partial
  registration, no later update (UpdateModelPackage cannot set ModelMetrics).
- `record_evaluation(sm, s3, request)`: the evaluate-only pipeline's last step. A registered
  package gets the scores as metadata (UpdateModelPackage, every other field kept, the
  approval status never sent); the base model's scores become the baseline object that later
  runs compare with; an unregistered checkpoint gets its report only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from lambdas.evaluation import scores
from lambdas.evaluation.inputs import NONE, EvaluationInputs
from lambdas.evaluation.parent import Comparison, baseline_uri, find_parent_scores, write_json
from lambdas.evaluation.recording import NOT_EVALUATED_OUTPUTS, Assessment, assess
from lambdas.recipe import starts_from_checkpoint
from lambdas.recipe.spec import BASE_MODEL
from lambdas.recipe.validation import SAGEMAKER_NAME, is_s3_uri
from lambdas.registry import (
    MAX_METADATA_ENTRIES,
    MODEL_PACKAGE_ARN,
    CheckpointRecord,
    PackageExtras,
    Registered,
    RegistrationError,
    RegistrationRequest,
    describe_checkpoint,
    register_checkpoint,
    sagemaker_error,
)


def register_evaluated(
    sm: Any, s3: Any, request: RegistrationRequest, inputs: EvaluationInputs
) -> tuple[Registered, dict[str, str]]:
    """Register the checkpoint with its scores and the gate's status; (registered, outputs)."""
    found: list[Assessment] = []

    def extras(checkpoint_uri: str, metadata: Mapping[str, str]) -> PackageExtras:
        assessment = assess(
            sm,
            s3,
            inputs=inputs,
            model=checkpoint_uri,
            comparison_of=lambda _metric: find_parent_scores(
                sm,
                s3,
                group=request.group,
                parent=request.parent,
                task=inputs.task,
                data_sha256=inputs.data_sha256,
                baseline_prefix=inputs.baseline_prefix,
            ),
            requested_status=request.approval_status,
            pipeline_execution_arn=request.pipeline_execution_arn,
            room=MAX_METADATA_ENTRIES - len(metadata),
        )
        found.append(assessment)
        return PackageExtras(
            approval_status=assessment.verdict.status,
            metadata=assessment.entries,
            model_metrics=assessment.model_metrics(),
            # A rejection's reason, and which results file was read when there were several.
            description_note=" ".join(
                part for part in (assessment.verdict.description, assessment.results.note()) if part
            ),
        )

    registered = register_checkpoint(sm, s3, request, extras=extras)
    if found:
        return registered, found[0].outputs()
    return registered, recorded_outputs(registered.record.metadata)


def recorded_outputs(metadata: Mapping[str, str]) -> dict[str, str]:
    """The evaluation outputs of a version registered before (the step ran again)."""
    card = scores.scorecard_of(metadata)
    if card is None or card.score is None:
        return dict(NOT_EVALUATED_OUTPUTS)
    return {
        "EvaluationScore": scores.number_text(card.score),
        "GateVerdict": card.verdict or f"no gate: {card.metric} {card.score:.6g}",
        "ScoreChange": scores.change_text(card.change),
    }


@dataclass(frozen=True)
class RecordRequest:
    """The record step's event, checked. `package_arn` is "" for the base model or an
    unregistered checkpoint."""

    model: str
    package_arn: str
    group: str
    pipeline_execution_arn: str
    inputs: EvaluationInputs

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> RecordRequest:
        problems: list[str] = []
        model = str(event.get("ModelNameOrPath") or "").strip()
        if not (model == BASE_MODEL or is_s3_uri(model, object_key_required=True)):
            problems.append(
                f"ModelNameOrPath={model[:200]!r}: must be {BASE_MODEL} or an s3:// checkpoint URI"
            )
        arn = str(event.get("ModelPackageArn") or NONE).strip()
        arn = "" if arn == NONE else arn
        if arn and not MODEL_PACKAGE_ARN.fullmatch(arn):
            problems.append(f"ModelPackageArn={arn[:200]!r}: must be a model package ARN, or none")
        if arn and not starts_from_checkpoint(model):
            problems.append(
                f"ModelPackageArn={arn} with ModelNameOrPath={model}: a package is a checkpoint; "
                "give its checkpoint URI, or ModelPackageArn none for the base model"
            )
        group = str(event.get("ModelPackageGroupName") or "").strip()
        if not SAGEMAKER_NAME.fullmatch(group):
            problems.append(f"ModelPackageGroupName={group[:80]!r}: not a group name")
        execution = str(event.get("PipelineExecutionArn") or "").strip()
        try:
            inputs = EvaluationInputs.from_event(event, with_gate=False)
        except ValueError as error:
            problems.append(str(error))
            inputs = None
        if inputs is None and not problems:
            problems.append("EvaluationTask is none: the evaluate pipeline needs a task to record")
        if problems or inputs is None:
            raise ValueError("the record step's inputs are invalid:\n- " + "\n- ".join(problems))
        return cls(model, arn, group, execution, inputs)


def _package(sm: Any, request: RecordRequest) -> CheckpointRecord:
    try:
        record = describe_checkpoint(sm, request.package_arn)
    except ClientError as error:
        raise sagemaker_error(error, f"model package {request.package_arn}") from error
    if record.checkpoint_uri != request.model:
        raise RegistrationError(
            f"{request.package_arn} records checkpoint {record.checkpoint_uri or 'none'}, but "
            f"the evaluation scored {request.model}: start the evaluation with the package's "
            "own checkpoint (python -m pipeline evaluate --package ...)"
        )
    return record


def record_evaluation(sm: Any, s3: Any, request: RecordRequest) -> dict[str, str]:
    """Record an evaluation of a package, the base model or an unregistered checkpoint
    (module docstring); returns the step's outputs EvaluationScore and ScoreChange."""
    inputs = request.inputs
    record = _package(sm, request) if request.package_arn else None
    kept = scores.without_scores(record.metadata) if record is not None else {}

    def comparison_of(_metric: str) -> Comparison:
        if record is not None:
            return find_parent_scores(
                sm,
                s3,
                group=request.group,
                parent=record.parent,
                task=inputs.task,
                data_sha256=inputs.data_sha256,
                baseline_prefix=inputs.baseline_prefix,
            )
        if request.model == BASE_MODEL:
            return Comparison("", reason="the base model is the baseline: it has no parent")
        return Comparison("", reason=f"{request.model} is not registered: its parent is unknown")

    assessment = assess(
        sm,
        s3,
        inputs=inputs,
        model=request.model,
        comparison_of=comparison_of,
        requested_status="",
        pipeline_execution_arn=request.pipeline_execution_arn,
        room=MAX_METADATA_ENTRIES - len(kept),
        model_package_arn=request.package_arn,
    )
    if record is not None:
        _update_metadata(sm, record, {**kept, **assessment.entries})
    elif request.model == BASE_MODEL:
        write_json(
            s3,
            baseline_uri(inputs.baseline_prefix, request.model, inputs.task, inputs.data_sha256),
            baseline_document(assessment),
        )
    outputs = assessment.outputs()
    return {"EvaluationScore": outputs["EvaluationScore"], "ScoreChange": outputs["ScoreChange"]}


def baseline_document(assessment: Assessment) -> dict[str, Any]:
    """The base model's scores as later runs read them (lambdas.evaluation.parent)."""
    inputs = assessment.inputs
    return {
        "model": BASE_MODEL,
        "task": inputs.task,
        "data_sha256": inputs.data_sha256,
        "evaluation_data": inputs.data_uri or None,
        "evaluation_job": inputs.job_name,
        "report": inputs.report_uri,
        "metrics": dict(sorted(assessment.results.metrics.items())),
        "stderr": dict(sorted(assessment.results.stderr.items())),
    }


def _update_metadata(sm: Any, record: CheckpointRecord, metadata: dict[str, str]) -> None:
    """Replace the package's scores, keeping every other field.

    The approval status is never sent: AWS keeps what an update does not name, and the record
    role may not send Approved, so resending an approved package's status would be refused (and
    a status read before an approval and sent after it would undo the approval). Entries of an
    earlier evaluation that this one does not set are removed by name.
    """
    stale = sorted(set(record.metadata) - set(metadata))
    update: dict[str, Any] = {
        "ModelPackageArn": record.model_package_arn,
        "CustomerMetadataProperties": metadata,
    }
    if stale:
        update["CustomerMetadataPropertiesToRemove"] = stale
    try:
        sm.update_model_package(**update)
    except ClientError as error:
        raise sagemaker_error(error, f"model package {record.model_package_arn}") from error

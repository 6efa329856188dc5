"""What a registered checkpoint records: the metadata keys and `CheckpointRecord`.

Each model package version carries its facts in CustomerMetadataProperties under the `KEY_*`
names and the knob names of `lambdas.recipe.spec.KNOBS` (docs/decisions/0003-model-package-
fields.md); `CheckpointRecord.replay_parameters()` turns them back into pipeline parameters.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lambdas.recipe.spec import KNOBS

# -- CustomerMetadataProperties keys: stable, read by the operator commands and replays --------
KEY_CHECKPOINT = "CheckpointS3Uri"
KEY_PARENT = "ParentModel"
KEY_TRAINING_JOB = "TrainingJobName"
KEY_TECHNIQUE = "Technique"
KEY_RECIPE_URI = "RecipeS3Uri"
KEY_RECIPE_SHA256 = "RecipeSha256"
KEY_PIPELINE_EXECUTION = "PipelineExecutionArn"
KEY_TRAIN_DATA = "TrainDataS3Uri"
KEY_VALIDATION_DATA = "ValidationDataS3Uri"
KEY_INSTANCE_TYPE = "TrainingInstanceType"
KEY_INSTANCE_COUNT = "TrainingInstanceCount"
KEY_RUN_NAME = "RunName"
KEY_TRAINING_STEPS = "TrainingSteps"
KEY_FIRST_LOSS = "FirstTrainingLoss"
KEY_FINAL_LOSS = "FinalTrainingLoss"
KEY_MIN_LOSS = "MinTrainingLoss"
KEY_METRICS_UNAVAILABLE = "MetricsUnavailable"
KEY_RECORD_VERSION = "RecordVersion"
# What a replay needs beyond the recipe: the job's time limit, and the package it replays.
KEY_MAX_RUNTIME = "MaxRuntimeSeconds"
KEY_SOURCE_PACKAGE = "SourceModelPackageArn"
RECORD_VERSION = "1"
# What a pipeline parameter holds for "nothing": "" (older definitions) or the sentinel "none".
NOTHING: tuple[str, ...] = ("", "none")
# Each applicable hyperparameter is recorded under its pipeline parameter name (e.g. MaxSteps).
HYPERPARAMETER_KEYS: tuple[str, ...] = tuple(knob.name for knob in KNOBS)

APPROVAL_STATUSES: tuple[str, ...] = ("PendingManualApproval", "Approved", "Rejected")
DEFAULT_APPROVAL_STATUS = "PendingManualApproval"
# What a run may register: approving is an act of its own (approve, the console), never a
# side effect of starting an execution.
REGISTRATION_STATUSES: tuple[str, ...] = ("PendingManualApproval", "Rejected")


@dataclass(frozen=True)
class CheckpointRecord:
    """One registered checkpoint: a model package version and the metadata it carries."""

    model_package_arn: str
    version: int
    approval_status: str
    creation_time: datetime | None
    metadata: Mapping[str, str] = field(repr=False)

    @property
    def checkpoint_uri(self) -> str:
        return self.metadata.get(KEY_CHECKPOINT, "")

    @property
    def parent(self) -> str:
        """What the run started from: the base model name or an earlier checkpoint's URI."""
        return self.metadata.get(KEY_PARENT, "")

    @property
    def training_job_name(self) -> str:
        return self.metadata.get(KEY_TRAINING_JOB, "")

    @property
    def technique(self) -> str:
        return self.metadata.get(KEY_TECHNIQUE, "")

    @property
    def source_model_package_arn(self) -> str:
        """The package this run replayed (another environment's), or "" for an original run."""
        return self.metadata.get(KEY_SOURCE_PACKAGE, "")

    @property
    def final_loss(self) -> float | None:
        value = self.metadata.get(KEY_FINAL_LOSS)
        return float(value) if value else None

    @property
    def training_steps(self) -> int | None:
        value = self.metadata.get(KEY_TRAINING_STEPS)
        return int(value) if value else None

    def replay_parameters(self) -> dict[str, str]:
        """The pipeline parameters this run was started with, as far as they were recorded.

        Keys are pipeline parameter names (Technique, ModelNameOrPath, TrainingInstanceType,
        TrainingInstanceCount, MaxRuntimeSeconds, the knobs, TrainDataS3Uri,
        ValidationDataS3Uri). ModelNameOrPath is the parent, which only exists in the account
        that trained it. A recorded "" or "none" means "not given" and is left out, as is the
        package a replay replayed (a replay of this run names this package instead).
        """
        names = {
            KEY_TECHNIQUE: "Technique",
            KEY_PARENT: "ModelNameOrPath",
            KEY_INSTANCE_TYPE: "TrainingInstanceType",
            KEY_INSTANCE_COUNT: "TrainingInstanceCount",
            KEY_MAX_RUNTIME: "MaxRuntimeSeconds",
            KEY_TRAIN_DATA: "TrainDataS3Uri",
            KEY_VALIDATION_DATA: "ValidationDataS3Uri",
            **{key: key for key in HYPERPARAMETER_KEYS},
        }
        return {
            name: self.metadata[key]
            for key, name in names.items()
            if self.metadata.get(key, "") not in NOTHING
        }


def record_of(description: Mapping[str, Any]) -> CheckpointRecord:
    return CheckpointRecord(
        model_package_arn=str(description["ModelPackageArn"]),
        version=int(description.get("ModelPackageVersion", 0)),
        approval_status=str(description.get("ModelApprovalStatus", "")),
        creation_time=description.get("CreationTime"),
        metadata=dict(description.get("CustomerMetadataProperties") or {}),
    )

"""The register_checkpoint event, parsed and checked into a `RegistrationRequest`."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from lambdas.recipe.spec import BASE_MODEL, NO_VALIDATION_DATA, TECHNIQUES
from lambdas.recipe.validation import S3_URI, SAGEMAKER_NAME, is_s3_uri
from lambdas.registry.records import DEFAULT_APPROVAL_STATUS, NOTHING, REGISTRATION_STATUSES

_ARN = re.compile(r"arn:aws[a-z-]*:sagemaker:[a-z0-9-]+:[0-9]{12}:pipeline/[A-Za-z0-9/_.:=+@-]+")
MODEL_PACKAGE_ARN = re.compile(
    r"arn:aws[a-z-]*:sagemaker:([a-z0-9-]+):([0-9]{12}):model-package/([A-Za-z0-9-]+)/([0-9]+)"
)
# SageMaker's limit on a training job's MaxRuntimeInSeconds (CreateTrainingJob API reference).
MAX_RUNTIME_LIMIT = 2_419_200


@dataclass(frozen=True)
class RegistrationRequest:
    """A register_checkpoint event, checked. Optional values are "" when not given."""

    training_job_name: str
    model_artifacts_uri: str
    group: str
    parent: str
    technique: str
    recipe_uri: str
    approval_status: str = DEFAULT_APPROVAL_STATUS
    pipeline_execution_arn: str = ""
    recipe_sha256: str = ""
    train_data_uri: str = ""
    validation_data_uri: str = ""
    training_instance_type: str = ""
    max_runtime_seconds: str = ""
    source_model_package_arn: str = ""

    @property
    def output_archive_uri(self) -> str:
        """output.tar.gz, which the job writes beside model.tar.gz."""
        return self.model_artifacts_uri.rsplit("/", 1)[0] + "/output.tar.gz"

    @classmethod
    def from_event(cls, event: Mapping[str, Any]) -> RegistrationRequest:
        """Parse and check an event; ValueError lists every bad or missing input at once."""
        if not isinstance(event, Mapping):
            raise ValueError(f"the event must be a JSON object, got {type(event).__name__}")
        problems: list[str] = []

        def text(key: str, default: str | None = None) -> str:
            value = event.get(key)
            if value is None or value == "":
                if default is None:
                    problems.append(f"{key} is missing: pass it as an input of the register step")
                return default or ""
            if not isinstance(value, str):
                problems.append(f"{key}={value!r} must be text")
                return ""
            return value.strip()

        def check(key: str, value: str, ok: bool, rule: str) -> None:
            if value and not ok:
                problems.append(f"{key}={value[:200]!r}: {rule}")

        job = text("TrainingJobName")
        check(
            "TrainingJobName", job, bool(SAGEMAKER_NAME.fullmatch(job)), "not a training job name"
        )
        artifacts = text("ModelArtifactsS3Uri")
        check(
            "ModelArtifactsS3Uri",
            artifacts,
            bool(S3_URI.fullmatch(artifacts)) and artifacts.endswith("/output/model.tar.gz"),
            "must be the job's s3://.../<job>/output/model.tar.gz",
        )
        group = text("ModelPackageGroupName")
        check(
            "ModelPackageGroupName",
            group,
            bool(SAGEMAKER_NAME.fullmatch(group)),
            "not a group name",
        )
        parent = text("ModelNameOrPath")
        check(
            "ModelNameOrPath",
            parent,
            parent == BASE_MODEL or is_s3_uri(parent),
            f"must be {BASE_MODEL} or an s3:// checkpoint URI",
        )
        technique = text("Technique")
        check("Technique", technique, technique in TECHNIQUES, f"must be one of {TECHNIQUES}")
        recipe = text("RecipeS3Uri")
        check(
            "RecipeS3Uri",
            recipe,
            is_s3_uri(recipe, object_key_required=True),
            "must be the prepare step's s3://... recipe URI",
        )
        status = text("ModelApprovalStatus", DEFAULT_APPROVAL_STATUS)
        check(
            "ModelApprovalStatus",
            status,
            status in REGISTRATION_STATUSES,
            "a run registers its checkpoint PendingManualApproval or Rejected, never approved; "
            "approve it afterwards with `python -m pipeline approve <package>` or in the console"
            if status == "Approved"
            else f"must be one of {', '.join(REGISTRATION_STATUSES)}",
        )
        execution = text("PipelineExecutionArn", "")
        check("PipelineExecutionArn", execution, bool(_ARN.fullmatch(execution)), "not an ARN")
        sha = text("RecipeSha256", "").lower()
        check("RecipeSha256", sha, bool(re.fullmatch(r"[0-9a-f]{64}", sha)), "not a sha256")
        train = text("TrainDataS3Uri", "")
        check("TrainDataS3Uri", train, is_s3_uri(train, object_key_required=True), "not s3://")
        validation = text("ValidationDataS3Uri", "")
        if validation == NO_VALIDATION_DATA:
            validation = ""  # the run had no validation data; nothing to check or record
        check(
            "ValidationDataS3Uri",
            validation,
            is_s3_uri(validation, object_key_required=True),
            "not s3://",
        )
        instance_type = text("TrainingInstanceType", "")
        check(
            "TrainingInstanceType",
            instance_type,
            bool(re.fullmatch(r"ml\.[a-z0-9]+\.[a-z0-9]+", instance_type)),
            "not an instance type",
        )
        max_runtime = _max_runtime(event.get("MaxRuntimeSeconds"), problems)
        source = text("SourceModelPackageArn", "")
        source = "" if source in NOTHING else source
        check(
            "SourceModelPackageArn",
            source,
            bool(MODEL_PACKAGE_ARN.fullmatch(source)),
            "must be a model package ARN, or none",
        )
        if problems:
            raise ValueError("the register step's inputs are invalid:\n- " + "\n- ".join(problems))
        return cls(
            training_job_name=job,
            model_artifacts_uri=artifacts,
            group=group,
            parent=parent,
            technique=technique,
            recipe_uri=recipe,
            approval_status=status,
            pipeline_execution_arn=execution,
            recipe_sha256=sha,
            train_data_uri=train,
            validation_data_uri=validation,
            training_instance_type=instance_type,
            max_runtime_seconds=max_runtime,
            source_model_package_arn=source,
        )


def _max_runtime(value: object, problems: list[str]) -> str:
    """MaxRuntimeSeconds as recorded text ("" when not given): a pipeline Integer parameter
    reaches the function as a number, or as text."""
    if value is None or value == "":
        return ""
    text = str(value).strip()
    if isinstance(value, bool) or not text.isdigit() or not 1 <= int(text) <= MAX_RUNTIME_LIMIT:
        problems.append(
            f"MaxRuntimeSeconds={str(value)[:40]!r}: must be a whole number of seconds from 1 "
            f"to {MAX_RUNTIME_LIMIT}"
        )
        return ""
    return str(int(text))

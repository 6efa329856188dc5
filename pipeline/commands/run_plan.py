"""Planning a run of an environment's pipeline, shared by `start` and `promote`; starts nothing.

The pipeline, its parameters and their defaults are read from the *deployed* pipeline
(DescribePipeline), so a plan is checked against what will run, not against this checkout.
Run parameters are validated with `lambdas.recipe.validate_run`, the code the PrepareRecipe
step runs, and a run from a checkpoint is checked against the technique the registry records
for it, so a typo or a mismatch fails before an execution starts.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lambdas.aws_errors import error_code
from lambdas.recipe import RUN_KEYS, RecipeValidationError, is_s3_uri, validate_run
from lambdas.recipe.spec import BASE_MODEL
from lambdas.registry import CheckpointRecord, iter_checkpoints
from lambdas.registry.continuity import (
    ContinuityCheck,
    RegistryReadError,
    TechniqueMismatchError,
    check_continuity,
)
from pipeline.commands.common import InputError, OperationError, UsageError
from pipeline.commands.prices import Estimate, estimate
from pipeline.config import EnvironmentConfig
from pipeline.overrides import check as check_overrides
from pipeline.overrides import declared_of_specs

SOURCE_CHOICES = ("base", "latest", "latest-approved")
# Stands in for the RunName the pipeline derives from its execution id, for local validation.
_PREVIEW_RUN_NAME = "preview-run"


def check_typed_overrides(env: EnvironmentConfig, overrides: dict[str, str]) -> None:
    """Refuse what was typed by the service's own override rules before any AWS call: checked
    against this checkout's definition of the parameters (the deployed one is checked again
    once read); required parameters are checked later, when every value is known."""
    from pipeline.definition import parameter_specs

    _, problems = check_overrides(
        declared_of_specs(parameter_specs(env)), overrides.items(), require=False
    )
    if problems:
        raise UsageError(
            f"{len(problems)} parameter problem(s), nothing was started:\n- "
            + "\n- ".join(problems)
        )


def deployed_parameters(sm: Any, env: EnvironmentConfig) -> dict[str, dict[str, Any]]:
    """The deployed pipeline's parameters by name (Type, DefaultValue, EnumValues)."""
    try:
        described = sm.describe_pipeline(PipelineName=env.pipeline_name)
    except ClientError as error:
        if error_code(error) in ("ResourceNotFound", "ValidationException"):
            raise OperationError(
                f"pipeline {env.pipeline_name} does not exist in account/region of environment "
                f"{env.name} ({env.region}): deploy the environment's stacks first (cdk deploy)"
            ) from error
        raise OperationError(f"cannot describe pipeline {env.pipeline_name}: {error}") from error
    definition = json.loads(described["PipelineDefinition"])
    return {p["Name"]: p for p in definition.get("Parameters", [])}


def check_source_choice(choice: str) -> None:
    """InputError unless `choice` is a `--from` value (no AWS call, so it can run first)."""
    if choice in SOURCE_CHOICES:
        return
    if choice.startswith("s3://"):
        if not is_s3_uri(choice, object_key_required=True):
            raise InputError(f"--from {choice!r} is not an s3://bucket/key checkpoint URI")
        return
    raise InputError(
        f"--from {choice!r}: use one of {', '.join(SOURCE_CHOICES)} or an s3:// checkpoint URI"
    )


def resolve_source(
    sm: Any, env: EnvironmentConfig, choice: str
) -> tuple[str, CheckpointRecord | None]:
    """ModelNameOrPath for `--from`: base, latest, latest-approved or an s3:// checkpoint URI."""
    check_source_choice(choice)
    group = env.model_package_group_name
    if choice == "base":
        return BASE_MODEL, None
    if choice in ("latest", "latest-approved"):
        approved = choice == "latest-approved"
        # Newest first, read lazily: stops at the newest approved one, or (latest) the newest
        # one that nobody rejected.
        candidates = iter_checkpoints(sm, group, approved_only=approved)
        try:
            record = next((r for r in candidates if r.approval_status != "Rejected"), None)
        except ClientError as error:
            raise OperationError(f"cannot read model package group {group}: {error}") from error
        if record is None:
            kind = "approved checkpoint" if approved else "checkpoint that is not rejected"
            fix = (
                "approve one with `python -m pipeline approve <package>`"
                if approved
                else "run the pipeline once"
            )
            raise OperationError(
                f"no {kind} in {group} yet: {fix}, or start from the base model with --from base"
            )
        return record.checkpoint_uri, record
    return choice, None


def check_parameters(
    declared: Mapping[str, Mapping[str, Any]], overrides: Mapping[str, str]
) -> dict[str, Any]:
    """Every parameter's effective value; InputError lists every problem at once.

    The overrides must pass the service's own rules (`pipeline.overrides`: declared names,
    non-empty values, EnumValues, literal Integer/Float/Boolean forms, required parameters);
    the run's parameters must pass `validate_run`, and TrainDataS3Uri must be an s3:// object
    or folder.
    """
    typed, problems = check_overrides(
        declared, overrides.items(), hints={"TrainDataS3Uri": "pass --train s3://bucket/key.jsonl"}
    )
    if any(p.startswith("unknown parameter(s)") for p in problems):
        raise InputError(problems[0])
    effective: dict[str, Any] = {
        name: spec["DefaultValue"] for name, spec in declared.items() if "DefaultValue" in spec
    }
    effective.update(overrides)
    # Only overrides that passed the service's rules go on to the recipe's own checks, so one
    # bad value is reported once.
    checked = {k: v for k, v in effective.items() if k not in overrides or k in typed}
    train = str(checked.get("TrainDataS3Uri", ""))
    if train and not is_s3_uri(train, object_key_required=True):
        problems.append(f"TrainDataS3Uri={train!r}: must be an s3://bucket/key URI")
    run = {key: checked[key] for key in RUN_KEYS if key in checked}
    run["RunName"] = _PREVIEW_RUN_NAME
    try:
        validate_run(run)
    except RecipeValidationError as error:
        problems.extend(p for p in error.problems if p not in problems)
    if problems:
        raise InputError(
            f"{len(problems)} parameter problem(s), nothing was started:\n- "
            + "\n- ".join(problems)
        )
    return effective


def client_token(pipeline_name: str, overrides: Mapping[str, str], day: str) -> str:
    """StartPipelineExecution's idempotency token: the same pipeline, parameters and UTC day
    give the same token, so a retried command does not start a second execution."""
    seed = json.dumps([pipeline_name, sorted(overrides.items()), day])
    return hashlib.sha256(seed.encode()).hexdigest()


@dataclass(frozen=True)
class RunPlan:
    """What `start` will run. `overrides` are sent; `parameters` are all effective values."""

    env: EnvironmentConfig
    overrides: dict[str, str]
    parameters: dict[str, Any]
    source: CheckpointRecord | None
    estimate: Estimate
    client_token: str
    description: str
    continuity: ContinuityCheck | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "environment": self.env.name,
            "pipeline": self.env.pipeline_name,
            "parameters": {k: self.parameters[k] for k in sorted(self.parameters)},
            "overrides": dict(sorted(self.overrides.items())),
            "prior_checkpoint": (
                None
                if self.source is None
                else {
                    "model_package_arn": self.source.model_package_arn,
                    "checkpoint_s3_uri": self.source.checkpoint_uri,
                    "approval_status": self.source.approval_status,
                }
            ),
            "technique_check": None if self.continuity is None else self.continuity.to_dict(),
            "estimate": self.estimate.to_dict(),
            "client_token": self.client_token,
        }


def check_technique(
    sm: Any,
    env: EnvironmentConfig,
    parameters: Mapping[str, Any],
    source: CheckpointRecord | None = None,
) -> ContinuityCheck:
    """The run's Technique against its checkpoint's, as the PrepareRecipe step checks it
    (lambdas.registry.continuity): InputError on a mismatch, OperationError when the registry
    cannot be read. `source` is the checkpoint's record when it is already known (no lookup
    then)."""
    model = str(parameters.get("ModelNameOrPath", ""))
    technique = str(parameters.get("Technique", ""))
    try:
        return check_continuity(sm, env.model_package_group_name, model, technique, known=source)
    except TechniqueMismatchError as error:
        raise InputError(f"{error}; nothing was started") from None
    except RegistryReadError as error:
        raise OperationError(str(error)) from None


def plan_run(
    sm: Any,
    env: EnvironmentConfig,
    *,
    overrides: Mapping[str, str],
    source: CheckpointRecord | None = None,
    prices: dict[str, dict[str, float]] | None = None,
    description: str = "",
    token: str | None = None,
) -> RunPlan:
    """Check the run against the deployed pipeline and its checkpoint's technique, and estimate
    it; starts nothing."""
    declared = deployed_parameters(sm, env)
    effective = check_parameters(declared, overrides)
    continuity = check_technique(sm, env, effective, source)
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    return RunPlan(
        env=env,
        overrides=dict(overrides),
        parameters=effective,
        source=source,
        estimate=estimate(
            region=env.region,
            instance_type=str(effective["TrainingInstanceType"]),
            instance_count=int(effective["TrainingInstanceCount"]),
            max_runtime_seconds=int(effective["MaxRuntimeSeconds"]),
            prices=prices,
            evaluation_instance_type=(
                None
                if effective.get("EvaluationTask", "none") == "none"
                else str(effective.get("EvaluationInstanceType", "ml.p5.48xlarge"))
            ),
        ),
        client_token=token or client_token(env.pipeline_name, overrides, day),
        description=description[:3072],
        continuity=continuity,
    )

"""The pipeline step before training: validate this run's parameters and write its recipe.

A LambdaStep invokes `handler` with the run's parameters as inputs (every value may be a
string): the keys of `lambdas.recipe.RUN_KEYS`, `RecipeS3Prefix`, the S3 folder to write to
(e.g. `s3://<artifacts>/runs/<execution id>/recipe/`), and `ModelPackageGroupName`, the
environment's model registry, where a checkpoint's technique is looked up (read only for a run
from a checkpoint). It writes `recipe.yaml` there and returns, all as strings:

- `RecipeS3Uri`: the written object; `RecipeS3Prefix`: its folder, ending in "/";
- `RecipeSha256`: hex sha256 of the recipe bytes;
- `BaseModelHyperparameter`: `base_model_location` for an s3:// checkpoint, else `base_model`;
- `StartsFromCheckpoint`: "true" or "false";
- `HasValidationData`: "true" when ValidationDataS3Uri names data, "false" when it is "none"
  (the training step then sends no validation channel: SageMaker refuses an empty channel URI);
- `CheckpointCheck`: whether the checkpoint's technique was checked against the model registry
  (`lambdas.registry.continuity.ContinuityCheck.describe`): `base-model: ...`,
  `same-technique: ...`, or `unregistered: ...` for a checkpoint the registry does not know
  (allowed).

When the environment tracks experiments, two more inputs, `MlflowTrackingArn` and
`MlflowExperimentName`, go into the recipe's `run.mlflow_tracking_uri` and
`run.mlflow_experiment_name` (the run name is the run's `RunName`); without them the recipe is
what it always was (docs/decisions/0020-experiment-tracking.md).

Bad parameters raise `RecipeValidationError` listing every problem (the step's failure reason)
before anything is written, and so does a technique that differs from the one the checkpoint was
trained with (`lambdas.registry.continuity`); an S3 failure raises `RecipeWriteError` naming the
object and the fix. Running it twice with the same inputs writes the same bytes to the same key.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Mapping
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.aws_errors import ACCESS_DENIED, error_code
from lambdas.recipe import (
    MAX_URI_CHARS,
    S3_URI,
    SAGEMAKER_NAME,
    RecipeValidationError,
    RunSettings,
    is_s3_uri,
    render_recipe,
    validate_run,
)
from lambdas.registry.continuity import (
    BASE_MODEL_OUTCOME,
    UNCHECKED,
    ContinuityCheck,
    TechniqueMismatchError,
    check_continuity,
)
from lambdas.tracking.address import TrackingAddressError, tracking_address

RECIPE_FILE_NAME = "recipe.yaml"
PREFIX_KEY = "RecipeS3Prefix"
GROUP_KEY = "ModelPackageGroupName"
TRACKING_ARN_KEY = "MlflowTrackingArn"
EXPERIMENT_KEY = "MlflowExperimentName"
# Keys of the event that are not run parameters (validate_run refuses unknown keys).
_STEP_KEYS = (PREFIX_KEY, GROUP_KEY, TRACKING_ARN_KEY, EXPERIMENT_KEY)
# How much of a too-long prefix a message shows.
_SHOWN_PREFIX_CHARS = 80


class RecipeWriteError(RuntimeError):
    """The recipe could not be written to S3; the message names the object and the fix."""


def recipe_uri(prefix: object) -> tuple[str, str, str] | None:
    """(bucket, key, normalised prefix) of a RecipeS3Prefix; None if it is not an s3:// folder."""
    match = S3_URI.fullmatch(prefix) if isinstance(prefix, str) else None
    if match is None:
        return None
    bucket, folder = match.group(1), (match.group(2) or "").strip("/")
    key = f"{folder}/{RECIPE_FILE_NAME}" if folder else RECIPE_FILE_NAME
    normalised = f"s3://{bucket}/{folder}/" if folder else f"s3://{bucket}/"
    return bucket, key, normalised


def parse_event(event: Mapping[str, Any]) -> tuple[RunSettings, tuple[str, str, str], str]:
    """The run's settings, where to write, and the model package group ("" when not given);
    RecipeValidationError lists every problem at once."""
    if not isinstance(event, Mapping):
        raise RecipeValidationError(
            [f"the event must be a JSON object, got {type(event).__name__}"]
        )
    problems: list[str] = []
    raw_prefix = event.get(PREFIX_KEY)
    target = recipe_uri(raw_prefix)
    if target is None:
        problems.append(
            f"{PREFIX_KEY}={raw_prefix!r}: must be an s3://bucket/folder/ URI "
            "(the run's folder in the artifacts bucket)"
        )
    else:
        # The register step records the recipe URI as model registry metadata, which holds at
        # most MAX_URI_CHARS characters; refuse here rather than after training.
        uri = f"s3://{target[0]}/{target[1]}"
        if not is_s3_uri(uri, object_key_required=True):
            shown = str(raw_prefix)[:_SHOWN_PREFIX_CHARS]
            problems.append(
                f"{PREFIX_KEY}={shown!r}{'...' if len(str(raw_prefix)) > len(shown) else ''}: "
                f"the recipe URI it gives is {len(uri)} characters, over the {MAX_URI_CHARS} "
                "character limit of a RecipeS3Uri in the model registry; use a shorter folder"
            )
    group = event.get(GROUP_KEY) or ""
    if not (isinstance(group, str) and (group == "" or SAGEMAKER_NAME.fullmatch(group))):
        problems.append(f"{GROUP_KEY}={str(group)[:80]!r}: not a model package group name")
        group = ""
    settings: RunSettings | None = None
    try:
        settings = validate_run({k: v for k, v in event.items() if k not in _STEP_KEYS})
    except RecipeValidationError as error:
        problems.extend(error.problems)
    if settings is not None and settings.starts_from_checkpoint and not group:
        problems.append(
            f"{GROUP_KEY} is missing: a run from a checkpoint needs the model package group "
            "that records the checkpoint's technique"
        )
    if problems or settings is None or target is None:
        raise RecipeValidationError(problems)
    return settings, target, str(group)


def mlflow_settings(event: Mapping[str, Any]) -> dict[str, str] | None:
    """The recipe's MLflow fields from the event's tracking inputs; None when it has none.

    RecipeValidationError when only one is given or either is malformed."""
    arn, experiment = event.get(TRACKING_ARN_KEY), event.get(EXPERIMENT_KEY)
    if arn in (None, "") and experiment in (None, ""):
        return None
    problems = []
    try:
        tracking_address(str(arn or ""))
    except TrackingAddressError as error:
        problems.append(f"{TRACKING_ARN_KEY}: {error}")
    if not (isinstance(experiment, str) and SAGEMAKER_NAME.fullmatch(experiment)):
        problems.append(f"{EXPERIMENT_KEY}={str(experiment)[:80]!r}: not an experiment name")
    if problems:
        raise RecipeValidationError(problems)
    return {"tracking_uri": str(arn).strip(), "experiment_name": str(experiment)}


def check_technique(
    settings: RunSettings, group: str, sagemaker: Callable[[], Any] | None
) -> ContinuityCheck:
    """The checkpoint's technique against the run's; RecipeValidationError on a mismatch.

    `sagemaker` makes the SageMaker client, only for a run from a checkpoint. Without it such a
    run is `unchecked` (for callers that stage runs, such as tests; the handler always passes
    it)."""
    if not settings.starts_from_checkpoint:
        return ContinuityCheck(BASE_MODEL_OUTCOME, settings.model_name_or_path, settings.technique)
    if sagemaker is None:
        return ContinuityCheck(UNCHECKED, settings.model_name_or_path, settings.technique)
    try:
        return check_continuity(sagemaker(), group, settings.model_name_or_path, settings.technique)
    except TechniqueMismatchError as error:
        raise RecipeValidationError([str(error)]) from None


def prepare_recipe(
    s3: Any, event: Mapping[str, Any], *, sagemaker: Callable[[], Any] | None = None
) -> dict[str, str]:
    """Validate, check the technique, render and write the recipe; returns the step's outputs
    (module docstring). Nothing is written when a check fails."""
    settings, (bucket, key, prefix), group = parse_event(event)
    mlflow = mlflow_settings(event)
    continuity = check_technique(settings, group, sagemaker)
    body = render_recipe(settings, mlflow=mlflow)
    uri = f"s3://{bucket}/{key}"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body, ContentType="application/yaml")
    except ClientError as error:
        code = error_code(error) or "error"
        if code == "NoSuchBucket":
            fix = f"bucket {bucket} does not exist; correct {PREFIX_KEY}"
        elif code in ACCESS_DENIED:
            fix = (
                "access denied; grant the prepare function's role s3:PutObject there and "
                "kms:GenerateDataKey on the bucket's key"
            )
        else:
            fix = f"{code}: {error}"
        raise RecipeWriteError(f"cannot write the recipe to {uri}: {fix}") from error
    except BotoCoreError as error:
        raise RecipeWriteError(
            f"cannot write the recipe to {uri}: {error}; start the execution again"
        ) from error
    return {
        "RecipeS3Uri": uri,
        "RecipeS3Prefix": prefix,
        "RecipeSha256": hashlib.sha256(body).hexdigest(),
        "BaseModelHyperparameter": settings.base_model_hyperparameter,
        "StartsFromCheckpoint": "true" if settings.starts_from_checkpoint else "false",
        "HasValidationData": "true" if settings.has_validation_data else "false",
        "CheckpointCheck": continuity.describe(),
    }


_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


@functools.cache
def _s3_client() -> Any:
    # Built once per Lambda container; standard retries ride out S3 throttling.
    return boto3.client("s3", config=_RETRIES)


@functools.cache
def _sagemaker_client() -> Any:
    # Built on the first run from a checkpoint only: a run from the base model never needs it.
    return boto3.client("sagemaker", config=_RETRIES)


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, str]:
    """LambdaStep entry point: see the module docstring for the event and the outputs."""
    return prepare_recipe(_s3_client(), event, sagemaker=_sagemaker_client)

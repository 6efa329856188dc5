"""The pipeline step before training: validate this run's parameters and write its recipe.

A LambdaStep invokes `handler` with the run's parameters as inputs (every value may be a
string): the keys of `lambdas.recipe.RUN_KEYS` plus `RecipeS3Prefix`, the S3 folder to write to
(e.g. `s3://<artifacts>/runs/<execution id>/recipe/`). It writes `recipe.yaml` there and
returns, all as strings:

- `RecipeS3Uri`: the written object; `RecipeS3Prefix`: its folder, ending in "/";
- `RecipeSha256`: hex sha256 of the recipe bytes;
- `BaseModelHyperparameter`: `base_model_location` for an s3:// checkpoint, else `base_model`;
- `StartsFromCheckpoint`: "true" or "false";
- `CheckpointCheck`: whether the checkpoint's technique was checked against the model registry
  (`lambdas.continuity.ContinuityCheck.describe`): `base-model: ...`, `same-technique: ...`, or
  `unregistered: ...` for a checkpoint the registry does not know (allowed).

Bad parameters raise `RecipeValidationError` listing every problem (the step's failure reason)
before anything is written, and so does a technique that differs from the one the checkpoint was
trained with (the model package group is the function's `MODEL_PACKAGE_GROUP_NAME`, read only
for a run from a checkpoint); an S3 failure raises `RecipeWriteError` naming the object and the
fix. Running it twice with the same inputs writes the same bytes to the same key.
"""

from __future__ import annotations

import functools
import hashlib
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.aws_errors import ACCESS_DENIED, error_code
from lambdas.continuity import (
    BASE_MODEL_OUTCOME,
    UNCHECKED,
    ContinuityCheck,
    TechniqueMismatchError,
    check_continuity,
)
from lambdas.recipe import (
    MAX_URI_CHARS,
    S3_URI,
    RecipeValidationError,
    RunSettings,
    is_s3_uri,
    render_recipe,
    validate_run,
)

RECIPE_FILE_NAME = "recipe.yaml"
PREFIX_KEY = "RecipeS3Prefix"
# The function's environment variable naming its environment's model package group.
GROUP_VARIABLE = "MODEL_PACKAGE_GROUP_NAME"
# How much of a too-long prefix a message shows.
_SHOWN_PREFIX_CHARS = 80


class RecipeWriteError(RuntimeError):
    """The recipe could not be written to S3; the message names the object and the fix."""


@dataclass(frozen=True)
class Registry:
    """Where the technique of a checkpoint is looked up: the environment's model package group
    and a factory for the SageMaker client, called only for a run from a checkpoint."""

    group: str
    client: Callable[[], Any]


def recipe_uri(prefix: object) -> tuple[str, str, str] | None:
    """(bucket, key, normalised prefix) of a RecipeS3Prefix; None if it is not an s3:// folder."""
    match = S3_URI.fullmatch(prefix) if isinstance(prefix, str) else None
    if match is None:
        return None
    bucket, folder = match.group(1), (match.group(2) or "").strip("/")
    key = f"{folder}/{RECIPE_FILE_NAME}" if folder else RECIPE_FILE_NAME
    normalised = f"s3://{bucket}/{folder}/" if folder else f"s3://{bucket}/"
    return bucket, key, normalised


def parse_event(event: Mapping[str, Any]) -> tuple[RunSettings, tuple[str, str, str]]:
    """The run's settings and where to write; RecipeValidationError lists every problem at once."""
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
    settings: RunSettings | None = None
    try:
        settings = validate_run({k: v for k, v in event.items() if k != PREFIX_KEY})
    except RecipeValidationError as error:
        problems.extend(error.problems)
    if problems or settings is None or target is None:
        raise RecipeValidationError(problems)
    return settings, target


def check_technique(settings: RunSettings, registry: Registry | None) -> ContinuityCheck:
    """The checkpoint's technique against the run's; RecipeValidationError on a mismatch.

    Without a registry a run from a checkpoint is `unchecked` (only for callers that stage runs,
    such as tests; the handler always passes one)."""
    if not settings.starts_from_checkpoint:
        return ContinuityCheck(BASE_MODEL_OUTCOME, settings.model_name_or_path, settings.technique)
    if registry is None:
        return ContinuityCheck(UNCHECKED, settings.model_name_or_path, settings.technique)
    try:
        return check_continuity(
            registry.client(), registry.group, settings.model_name_or_path, settings.technique
        )
    except TechniqueMismatchError as error:
        raise RecipeValidationError([str(error)]) from None


def prepare_recipe(
    s3: Any, event: Mapping[str, Any], *, registry: Registry | None = None
) -> dict[str, str]:
    """Validate, check the technique, render and write the recipe; returns the step's outputs
    (module docstring). Nothing is written when a check fails."""
    settings, (bucket, key, prefix) = parse_event(event)
    continuity = check_technique(settings, registry)
    body = render_recipe(settings)
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


class ConfigurationError(RuntimeError):
    """The function was deployed without what it needs; the message names the fix."""


def _registry() -> Registry:
    group = os.environ.get(GROUP_VARIABLE, "")

    def client() -> Any:
        if not group:
            raise ConfigurationError(
                f"the prepare function has no {GROUP_VARIABLE} environment variable, so it "
                "cannot check the checkpoint's technique: deploy it with the training stack"
            )
        return _sagemaker_client()

    return Registry(group=group, client=client)


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, str]:
    """LambdaStep entry point: see the module docstring for the event and the outputs."""
    return prepare_recipe(_s3_client(), event, registry=_registry())

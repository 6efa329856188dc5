"""The pipeline step between training and evaluation: find the checkpoint, write the recipe.

A LambdaStep invokes `handler` with string inputs:

- `EvaluationTask`: a task of `lambdas.recipe.evaluation.EVALUATION_TASKS`;
- the model to score, one of: `ModelArtifactsS3Uri` (the training job's
  `.../<job>/output/model.tar.gz`: the checkpoint is read from `manifest.json` in the
  `output.tar.gz` beside it, streamed as the register step reads it), or `ModelNameOrPath`
  (the base model or a checkpoint URI, for the evaluate-only pipeline); the other absent or "none";
- `EvaluationDataS3Uri`: the gen_qa file, or "none" for a benchmark;
- `RunName`: the evaluation's run name (the recipe's `run.name`);
- `EvaluationS3Prefix`: the run's evaluation folder,
  `s3://<artifacts>/runs/<execution id>/evaluation/`.

It writes `recipe/recipe.yaml` there (the evaluation recipe with `run.model_name_or_path` = the
checkpoint) and, for gen_qa, copies the data to `data/gen_qa.jsonl`, the one file name the
evaluation container reads in its `train` channel (decision 0017). It returns, all as strings:
`RecipeS3Uri`, `RecipeS3Prefix`, `RecipeSha256`, `ModelNameOrPath` (what is evaluated),
`EvaluationRunName`, `DataS3Prefix` (the channel's folder, or "none"), `HasEvaluationData`
and `StartsFromCheckpoint` ("true" or "false").

A bad input raises `RecipeValidationError` listing every problem, a missing or malformed job
output `OutputArchiveError`, an S3 failure `EvaluationPrepareError` naming the object and the
fix; nothing is written until every check passed. Running it twice writes the same bytes.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from lambdas.aws_errors import ACCESS_DENIED, NOT_FOUND, error_code
from lambdas.checkpoint import ReadAhead, read_job_output
from lambdas.recipe import S3_URI, RecipeValidationError, is_s3_uri, starts_from_checkpoint
from lambdas.recipe.evaluation import (
    GEN_QA_FILE_NAME,
    NO_EVALUATION_DATA,
    render_evaluation_recipe,
)
from lambdas.recipe.evaluation_spec import TASKS

RECIPE_FILE_NAME = "recipe.yaml"
NONE = "none"
OUTPUTS: tuple[str, ...] = (
    "RecipeS3Uri",
    "RecipeS3Prefix",
    "RecipeSha256",
    "ModelNameOrPath",
    "EvaluationRunName",
    "DataS3Prefix",
    "HasEvaluationData",
    "StartsFromCheckpoint",
)


class EvaluationPrepareError(RuntimeError):
    """An object could not be read or written; the message names it and the fix."""


@dataclass(frozen=True)
class EvaluationRequest:
    """A checked event (module docstring); `model_artifacts_uri` or `model_name_or_path`."""

    task: str
    model_artifacts_uri: str | None
    model_name_or_path: str | None
    data_uri: str | None
    run_name: str
    bucket: str
    folder: str  # the evaluation folder's key, ending in "/"

    def uri(self, relative: str) -> str:
        return f"s3://{self.bucket}/{self.folder}{relative}"


def _given(event: Mapping[str, Any], key: str) -> str | None:
    value = event.get(key)
    return None if value in (None, NONE) else str(value)


def parse_event(event: Mapping[str, Any]) -> EvaluationRequest:
    """The event's inputs; RecipeValidationError lists every problem at once."""
    if not isinstance(event, Mapping):
        raise RecipeValidationError(
            [f"the event must be a JSON object, got {type(event).__name__}"]
        )
    problems: list[str] = []
    task = str(event.get("EvaluationTask", ""))
    if task not in TASKS:
        problems.append(
            f"EvaluationTask={task[:80]!r}: must be one of {', '.join(TASKS)} (the pipeline "
            "runs this step only when the run evaluates)"
        )
    artifacts = _given(event, "ModelArtifactsS3Uri")
    model = _given(event, "ModelNameOrPath")
    if (artifacts is None) == (model is None):
        problems.append(
            "give exactly one of ModelArtifactsS3Uri (a training job's model.tar.gz) and "
            "ModelNameOrPath (the model to evaluate)"
        )
    if artifacts is not None and not (is_s3_uri(artifacts) and artifacts.endswith(".tar.gz")):
        problems.append(
            f"ModelArtifactsS3Uri={artifacts[:80]!r}: must be the job's s3:// model.tar.gz"
        )
    data = _given(event, "EvaluationDataS3Uri")
    needs_data = task in TASKS and TASKS[task].needs_data
    if data is not None and not is_s3_uri(data, object_key_required=True):
        problems.append(f"EvaluationDataS3Uri={data[:80]!r}: must be an s3:// object URI")
    if task in TASKS and needs_data != (data is not None):
        problems.append(
            f"EvaluationTask={task} "
            + ("needs EvaluationDataS3Uri" if needs_data else "takes no EvaluationDataS3Uri")
        )
    prefix = str(event.get("EvaluationS3Prefix", ""))
    match = S3_URI.fullmatch(prefix)
    if match is None or not (match.group(2) or "").strip("/"):
        problems.append(
            f"EvaluationS3Prefix={prefix[:80]!r}: must be the run's s3://bucket/folder/ "
            "for evaluation files"
        )
    if problems or match is None:
        raise RecipeValidationError(problems)
    return EvaluationRequest(
        task=task,
        model_artifacts_uri=artifacts,
        model_name_or_path=model,
        data_uri=data,
        run_name=str(event.get("RunName", "")),
        bucket=match.group(1),
        folder=(match.group(2) or "").strip("/") + "/",
    )


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _s3_problem(error: ClientError, uri: str, action: str, permission: str) -> str:
    code = error_code(error)
    if code in NOT_FOUND or code == "NoSuchBucket":
        return f"cannot {action} {uri}: it does not exist"
    if code in ACCESS_DENIED:
        return (
            f"cannot {action} {uri}: access denied; grant the prepare-evaluation function's role "
            f"{permission} there and kms:Decrypt/kms:GenerateDataKey on the bucket's key"
        )
    return f"cannot {action} {uri}: {code or 'error'}: {error}"


def checkpoint_of_job(s3: Any, model_artifacts_uri: str) -> str:
    """The checkpoint URI in the job's output.tar.gz (manifest.json), read as a stream."""
    uri = model_artifacts_uri.rsplit("/", 1)[0] + "/output.tar.gz"
    bucket, key = _split(uri)
    try:
        body = s3.get_object(Bucket=bucket, Key=key)["Body"]
    except ClientError as error:
        problem = _s3_problem(error, uri, "read", "s3:GetObject")
        raise EvaluationPrepareError(
            f"{problem}; the training job leaves it beside {model_artifacts_uri}: check that the "
            "job completed"
        ) from error
    ahead = ReadAhead(body)
    try:
        return read_job_output(ahead, source=uri).checkpoint_uri
    except BotoCoreError as error:
        raise EvaluationPrepareError(
            f"reading {uri} failed part way ({error}); retry the step"
        ) from error
    finally:
        ahead.close()
        body.close()


def prepare_evaluation(s3: Any, event: Mapping[str, Any]) -> dict[str, str]:
    """Check, find the checkpoint, render and write; returns the step's outputs."""
    request = parse_event(event)
    model = request.model_name_or_path or checkpoint_of_job(s3, str(request.model_artifacts_uri))
    body = render_evaluation_recipe(request.task, request.run_name, model)
    recipe_uri = request.uri(f"recipe/{RECIPE_FILE_NAME}")
    data_prefix = NO_EVALUATION_DATA
    try:
        if request.data_uri is not None:
            data_prefix = request.uri("data/")
            source_bucket, source_key = _split(request.data_uri)
            target = f"{request.folder}data/{GEN_QA_FILE_NAME}"
            try:
                s3.copy_object(
                    Bucket=request.bucket,
                    Key=target,
                    CopySource={"Bucket": source_bucket, "Key": source_key},
                )
            except ClientError as error:
                raise EvaluationPrepareError(
                    _s3_problem(error, request.data_uri, "copy", "s3:GetObject")
                    + f" (to {request.uri('data/' + GEN_QA_FILE_NAME)}, which needs s3:PutObject)"
                ) from error
        try:
            s3.put_object(
                Bucket=request.bucket,
                Key=f"{request.folder}recipe/{RECIPE_FILE_NAME}",
                Body=body,
                ContentType="application/yaml",
            )
        except ClientError as error:
            raise EvaluationPrepareError(
                _s3_problem(error, recipe_uri, "write", "s3:PutObject")
            ) from error
    except BotoCoreError as error:
        raise EvaluationPrepareError(f"S3 failed ({error}); retry the step") from error
    return {
        "RecipeS3Uri": recipe_uri,
        "RecipeS3Prefix": request.uri("recipe/"),
        "RecipeSha256": hashlib.sha256(body).hexdigest(),
        "ModelNameOrPath": model,
        "EvaluationRunName": request.run_name,
        "DataS3Prefix": data_prefix,
        "HasEvaluationData": "true" if request.data_uri is not None else "false",
        "StartsFromCheckpoint": "true" if starts_from_checkpoint(model) else "false",
    }


@functools.cache
def _s3_client() -> Any:
    # Built once per Lambda container; standard retries ride out S3 throttling.
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 5}))


def handler(event: Mapping[str, Any], context: object = None) -> dict[str, str]:
    """LambdaStep entry point: see the module docstring for the event and the outputs."""
    return prepare_evaluation(_s3_client(), event)

"""A stand-in for the Nova training container, for the local rehearsal.

It receives the CreateTrainingJob request a training step would send, checks it the way the
container depends on it (image, channels, the recipe file in the recipe channel, hyperparameters
consistent with the recipe, one replica per instance, a validation channel exactly when the
recipe names validation data, and the same data), records the job in the SageMaker endpoint
and writes what a finished job leaves behind: `output.tar.gz` with `manifest.json` (an
escrow-style checkpoint URI) and `step_wise_training_metrics.csv` (a falling loss), beside an
empty `model.tar.gz`. A wrong request raises RequestMismatch: that is a wiring bug, not a
training failure. When the recipe names an MLflow tracking server (`run.mlflow_tracking_uri`),
it logs the loss curve to the recipe's experiment and run, as the container would, through
`lambdas.tracking` at the endpoint the rehearsal maps the ARN to
(`SAGEMAKER_MLFLOW_CUSTOM_ENDPOINT`, `pipeline.rehearsal.mlflow_server`).
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import posixpath
import tarfile
from typing import Any
from urllib.parse import urlparse

import yaml

from lambdas.recipe.spec import ALLOWED_REPLICAS, MODEL_TYPE, nova_sft_image_uri
from lambdas.tracking import (
    ENDPOINT_OVERRIDE,
    TrackingClient,
    find_or_create_run,
    finish_run,
    log_batch,
    tracking_address,
)
from pipeline.rehearsal.execution_record import DefinitionError

RECIPE_MOUNT = "/opt/ml/input/data/recipe/"
BASE_MODEL_START_LOSS = 2.4


class RequestMismatch(DefinitionError):
    """The CreateTrainingJob request does not match what the Nova container needs."""


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise RequestMismatch(f"{uri!r} is not an s3:// URI")
    return parsed.netloc, parsed.path.lstrip("/")


def _hyperparameter(request: dict[str, Any], name: str) -> str | None:
    """A hyperparameter as sent, or None if absent.

    The SDK's Nova recipe path sends these as plain strings (not JSON-encoded as for other
    PyTorch jobs), and the container reads them that way.
    """
    raw = request.get("HyperParameters", {}).get(name)
    return None if raw is None else str(raw)


def loss_curve(seed: str, steps: int, start: float) -> list[tuple[int, float]]:
    """A deterministic, falling, slightly noisy training loss from `start`."""
    digest = hashlib.sha256(seed.encode()).digest()
    floor = start * 0.45
    curve = []
    for step in range(1, steps + 1):
        noise = (digest[step % len(digest)] / 255.0 - 0.5) * 0.04 * start
        value = floor + (start - floor) * math.exp(-4.0 * step / steps) + noise
        curve.append((step, round(max(value, 0.01), 4)))
    return curve


def _tar_gz(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


class StandInTrainer:
    """Checks and "runs" training jobs against the local endpoint."""

    def __init__(self, *, session: Any, region: str, fail_reason: str | None = None) -> None:
        self._s3 = session.client("s3")
        self._sm = session.client("sagemaker")
        self._region = region
        self._account = session.client("sts").get_caller_identity()["Account"]
        self.fail_reason = fail_reason
        self.final_loss_by_checkpoint: dict[str, float] = {}

    def train(self, request: dict[str, Any]) -> dict[str, Any]:
        """Check the request, record the job, write its outputs; returns DescribeTrainingJob."""
        recipe = self._check(request)
        self._sm.create_training_job(**request)
        name = request["TrainingJobName"]
        described: dict[str, Any] = self._sm.describe_training_job(TrainingJobName=name)
        if self.fail_reason is not None:
            # moto marks every job Completed; report what a failed job's description says.
            return {
                **described,
                "TrainingJobStatus": "Failed",
                "SecondaryStatus": "Failed",
                "FailureReason": self.fail_reason,
            }
        self._write_outputs(request, recipe, described["ModelArtifacts"]["S3ModelArtifacts"])
        return described

    # -- checks -----------------------------------------------------------------------------------

    def _check(self, request: dict[str, Any]) -> dict[str, Any]:
        image = request["AlgorithmSpecification"]["TrainingImage"]
        if image != nova_sft_image_uri(self._region):
            raise RequestMismatch(f"training image {image} is not the Nova SFT image")
        channels = {c["ChannelName"]: c for c in request.get("InputDataConfig", [])}
        if set(channels) not in ({"train", "recipe"}, {"train", "recipe", "validation"}):
            raise RequestMismatch(
                f"channels are {sorted(channels)}, expected recipe and train (and validation)"
            )
        self._check_data_channel(channels, "train")
        recipe = self._load_recipe(request, channels["recipe"]["DataSource"]["S3DataSource"])
        self._check_validation(channels, recipe)
        run = recipe["run"]
        if _hyperparameter(request, "model_type") != run["model_type"] or (
            run["model_type"] != MODEL_TYPE
        ):
            raise RequestMismatch(f"model_type hyperparameter and recipe disagree: {run}")
        source = run["model_name_or_path"]
        wanted, unwanted = (
            ("base_model_location", "base_model")
            if source.startswith("s3://")
            else ("base_model", "base_model_location")
        )
        if _hyperparameter(request, wanted) != source or _hyperparameter(request, unwanted):
            raise RequestMismatch(
                f"recipe starts from {source!r} but hyperparameters are "
                f"{ {k: request['HyperParameters'].get(k) for k in (wanted, unwanted)} }"
            )
        count = request["ResourceConfig"]["InstanceCount"]
        technique = (
            "FullRank" if recipe["training_config"]["peft"]["peft_scheme"] == "null" else "LoRA"
        )
        if run["replicas"] != count or count not in ALLOWED_REPLICAS[technique]:
            raise RequestMismatch(
                f"run.replicas={run['replicas']} with {count} instances ({technique})"
            )
        return recipe

    def _check_data_channel(self, channels: dict[str, Any], name: str) -> str:
        """A data channel as the container reads it; returns its URI."""
        source = channels[name]["DataSource"]["S3DataSource"]
        if (source["S3DataType"], source.get("S3DataDistributionType")) != (
            "Converse",
            "FullyReplicated",
        ):
            raise RequestMismatch(f"{name} channel must be Converse and FullyReplicated: {source}")
        uri = str(source["S3Uri"])
        self._require_object(uri, f"{name} channel")
        return uri

    def _check_validation(self, channels: dict[str, Any], recipe: dict[str, Any]) -> None:
        """Validation data is in both places or in neither (which one the container reads is
        unverified), and validation runs within the job's steps."""
        in_recipe = recipe["run"].get("validation_data_s3_path", "")
        if "validation" not in channels:
            if in_recipe:
                raise RequestMismatch(
                    f"the recipe names validation data {in_recipe} but no validation channel "
                    "was sent"
                )
            return
        uri = self._check_data_channel(channels, "validation")
        if uri != in_recipe:
            raise RequestMismatch(
                f"validation channel {uri} and recipe run.validation_data_s3_path "
                f"{in_recipe!r} disagree"
            )
        config = recipe["training_config"]
        if not 1 <= int(config["val_check_interval"]) <= int(config["max_steps"]):
            raise RequestMismatch(
                f"val_check_interval {config['val_check_interval']} is not within max_steps "
                f"{config['max_steps']}: validation would never run"
            )

    def _load_recipe(self, request: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
        local_path = _hyperparameter(request, "sagemaker_recipe_local_path")
        if not isinstance(local_path, str) or not local_path.startswith(RECIPE_MOUNT):
            raise RequestMismatch(
                f"sagemaker_recipe_local_path {local_path!r} is not in the channel"
            )
        key_uri = source["S3Uri"].rstrip("/") + "/" + local_path[len(RECIPE_MOUNT) :]
        body = self._require_object(key_uri, "recipe channel")
        recipe = yaml.safe_load(body)
        if not isinstance(recipe, dict) or "run" not in recipe:
            raise RequestMismatch(f"{key_uri} is not a recipe")
        return recipe

    def _require_object(self, uri: str, what: str) -> bytes:
        bucket, key = _split(uri)
        try:
            return bytes(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self._s3.exceptions.NoSuchKey:
            raise RequestMismatch(f"{what}: {uri} does not exist") from None

    # -- outputs ----------------------------------------------------------------------------------

    def _write_outputs(
        self, request: dict[str, Any], recipe: dict[str, Any], model_uri: str
    ) -> None:
        name = request["TrainingJobName"]
        steps = int(recipe["training_config"]["max_steps"])
        parent = recipe["run"]["model_name_or_path"]
        start = self.final_loss_by_checkpoint.get(parent, BASE_MODEL_START_LOSS)
        curve = loss_curve(name, steps, start)
        escrow = hashlib.sha256(name.encode()).hexdigest()[:8]
        checkpoint = f"s3://customer-escrow-{self._account}-smtj-{escrow}/{name}/step_{steps}"
        self.final_loss_by_checkpoint[checkpoint] = curve[-1][1]
        log_curve_to_mlflow(recipe, name, curve)
        metrics = "step_number,training_loss\n" + "".join(f"{s},{v}\n" for s, v in curve)
        output = _tar_gz(
            {
                "./training.log": f"job {name}: {steps} steps from {parent}\n".encode(),
                "./step_wise_training_metrics.csv": metrics.encode(),
                "./manifest.json": json.dumps({"checkpoint_s3_bucket": checkpoint}).encode(),
            }
        )
        bucket, key = _split(model_uri)
        self._s3.put_object(Bucket=bucket, Key=key, Body=_tar_gz({}))
        self._s3.put_object(
            Bucket=bucket, Key=posixpath.join(posixpath.dirname(key), "output.tar.gz"), Body=output
        )


def log_curve_to_mlflow(
    recipe: dict[str, Any], job_name: str, curve: list[tuple[int, float]]
) -> None:
    """Log the loss curve and the recipe's training settings to the recipe's MLflow run, as the
    container does when `run.mlflow_tracking_uri` is set; nothing when it is empty."""
    run = recipe["run"]
    arn = run.get("mlflow_tracking_uri", "")
    if not arn:
        return
    if not os.environ.get(ENDPOINT_OVERRIDE):
        # Never AWS from a rehearsal: the ARN must be mapped to the local server.
        raise RequestMismatch(
            f"the recipe logs to {arn}, but {ENDPOINT_OVERRIDE} does not map it to a local "
            "MLflow server: rehearse with --tracking"
        )
    client = TrackingClient(tracking_address(arn, os.environ))
    run_id = find_or_create_run(client, run["mlflow_experiment_name"], run["mlflow_run_name"])
    config = recipe["training_config"]
    params = {
        f"training_config.{key}": value
        for key, value in sorted(config.items())
        if isinstance(value, (str, int, float, bool))
    }
    params["run.model_name_or_path"] = run["model_name_or_path"]
    params["training_config.peft.peft_scheme"] = config["peft"]["peft_scheme"]
    log_batch(
        client,
        run_id,
        metrics=[("training_loss", loss, step) for step, loss in curve],
        params=params,
        tags={"nova-sft.training_job": job_name},
    )
    finish_run(client, run_id)

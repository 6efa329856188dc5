"""A stand-in for the Nova evaluation container, for the local rehearsal.

It receives the CreateTrainingJob request an evaluation step sends and checks it the way the
container depends on it: the evaluation image, one instance, the recipe file in the recipe
channel (model type, task, strategy and metric as the recipe facts say, one replica), the model
to score in both `run.model_name_or_path` and the hyperparameter the SDK chooses for it, a
checkpoint that a training job of this rehearsal produced, and for gen_qa a `train` channel
(S3Prefix) that holds `gen_qa.jsonl`. Then it writes what a finished evaluation leaves behind:
`output.tar.gz` holding `<run.name>/eval_results/results_<timestamp>.json`
(`{"results": {"all": {"<metric>": v, "<metric>_stderr": e, ...}}}`), an
`inference_output.jsonl` with one line per sample and a `details/` file, beside an empty
`model.tar.gz`. The scores depend on the checkpoint only (better when the stand-in trainer's final
loss was lower), so the same checkpoint always scores the same and a better round scores higher.

`fail_reason` makes every evaluation job fail; `low_score` scales the scores down, below any gate
the demo sets. A wrong request raises RequestMismatch: a wiring bug, not an evaluation failure.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from datetime import UTC, datetime
from typing import Any

import yaml

from lambdas.recipe.evaluation_spec import (
    EVALUATION_INSTANCE_COUNT,
    GEN_QA_FILE_NAME,
    TASKS,
    nova_evaluation_image_uri,
)
from lambdas.recipe.spec import BASE_MODEL, MODEL_TYPE
from pipeline.rehearsal.stand_in_trainer import (
    BASE_MODEL_START_LOSS,
    RECIPE_MOUNT,
    RequestMismatch,
    StandInTrainer,
    _hyperparameter,
    _split,
    _tar_gz,
)

# Scores fall as the final training loss rises; low_score scales them by this.
LOW_SCORE_FACTOR = 0.25


def scores(task: str, final_loss: float, *, low: bool = False) -> dict[str, float]:
    """results.all for a checkpoint whose training ended at `final_loss` (deterministic)."""
    base = max(0.2, min(0.95, 0.95 - 0.4 * final_loss)) * (LOW_SCORE_FACTOR if low else 1.0)
    results: dict[str, float] = {}
    for index, metric in enumerate(TASKS[task].metrics):
        value = round(max(0.0, base - 0.03 * index), 4)
        results[metric] = value
        results[f"{metric}_stderr"] = round(0.01 + 0.002 * index, 4)
    return results


class StandInEvaluator:
    """Checks and "runs" evaluation jobs against the local endpoint."""

    def __init__(
        self,
        *,
        session: Any,
        region: str,
        trainer: StandInTrainer,
        fail_reason: str | None = None,
        low_score: bool = False,
    ) -> None:
        self._s3 = session.client("s3")
        self._sm = session.client("sagemaker")
        self._region = region
        self._trainer = trainer
        self.fail_reason = fail_reason
        self.low_score = low_score
        self.evaluated: list[tuple[str, str, dict[str, float]]] = []  # (job, model, results.all)

    def train(self, request: dict[str, Any]) -> dict[str, Any]:
        """Check the request, record the job, write its outputs; returns DescribeTrainingJob."""
        recipe, samples = self._check(request)
        self._sm.create_training_job(**request)
        name = request["TrainingJobName"]
        described: dict[str, Any] = self._sm.describe_training_job(TrainingJobName=name)
        if self.fail_reason is not None:
            return {
                **described,
                "TrainingJobStatus": "Failed",
                "SecondaryStatus": "Failed",
                "FailureReason": self.fail_reason,
            }
        self._write_outputs(
            request, recipe, samples, described["ModelArtifacts"]["S3ModelArtifacts"]
        )
        return described

    # -- checks -----------------------------------------------------------------------------------

    def _check(self, request: dict[str, Any]) -> tuple[dict[str, Any], list[dict[str, Any]]]:
        image = request["AlgorithmSpecification"]["TrainingImage"]
        if image != nova_evaluation_image_uri(self._region):
            raise RequestMismatch(f"evaluation image {image} is not the Nova evaluation image")
        if request["ResourceConfig"]["InstanceCount"] != EVALUATION_INSTANCE_COUNT:
            raise RequestMismatch("an evaluation runs on exactly one instance")
        channels = {c["ChannelName"]: c for c in request.get("InputDataConfig", [])}
        if "recipe" not in channels or set(channels) - {"recipe", "train"}:
            raise RequestMismatch(f"channels are {sorted(channels)}, expected recipe (and train)")
        recipe = self._load_recipe(request, channels["recipe"]["DataSource"]["S3DataSource"])
        run, evaluation = recipe["run"], recipe.get("evaluation", {})
        task = evaluation.get("task")
        if task not in TASKS:
            raise RequestMismatch(f"recipe evaluation.task {task!r} is not a known task")
        spec = TASKS[task]
        if (evaluation.get("strategy"), evaluation.get("metric")) != (spec.strategy, spec.metric):
            raise RequestMismatch(
                f"task {task} needs strategy {spec.strategy}, metric {spec.metric}"
            )
        if run.get("model_type") != MODEL_TYPE or run.get("replicas") != 1:
            raise RequestMismatch(f"recipe run section is not an evaluation's: {run}")
        if run.get("data_s3_path") != "":
            raise RequestMismatch("run.data_s3_path must stay empty on training jobs")
        self._check_model(request, str(run.get("model_name_or_path")))
        samples: list[dict[str, Any]] = []
        if spec.needs_data:
            if "train" not in channels:
                raise RequestMismatch(f"task {task} reads its data from a train channel")
            samples = self._read_data(channels["train"]["DataSource"]["S3DataSource"])
        elif "train" in channels:
            raise RequestMismatch(f"the benchmark {task} takes no data channel")
        return recipe, samples

    def _check_model(self, request: dict[str, Any], source: str) -> None:
        wanted, unwanted = (
            ("base_model_location", "base_model")
            if source.startswith("s3://")
            else ("base_model", "base_model_location")
        )
        if _hyperparameter(request, wanted) != source or _hyperparameter(request, unwanted):
            raise RequestMismatch(
                f"recipe evaluates {source!r} but hyperparameters are "
                f"{ {k: request['HyperParameters'].get(k) for k in (wanted, unwanted)} }"
            )
        known = self._trainer.final_loss_by_checkpoint
        if source != BASE_MODEL and source not in known:
            raise RequestMismatch(
                f"{source} is not a checkpoint a training job of this rehearsal produced"
            )

    def _load_recipe(self, request: dict[str, Any], source: dict[str, Any]) -> dict[str, Any]:
        local_path = _hyperparameter(request, "sagemaker_recipe_local_path")
        if not isinstance(local_path, str) or not local_path.startswith(RECIPE_MOUNT):
            raise RequestMismatch(
                f"sagemaker_recipe_local_path {local_path!r} is not in the channel"
            )
        uri = source["S3Uri"].rstrip("/") + "/" + local_path[len(RECIPE_MOUNT) :]
        recipe = yaml.safe_load(self._object(uri, "recipe channel"))
        if not isinstance(recipe, dict) or "run" not in recipe:
            raise RequestMismatch(f"{uri} is not a recipe")
        return recipe

    def _read_data(self, source: dict[str, Any]) -> list[dict[str, Any]]:
        if source.get("S3DataType") != "S3Prefix":
            raise RequestMismatch(f"the train channel must be S3Prefix: {source}")
        uri = str(source["S3Uri"]).rstrip("/") + "/" + GEN_QA_FILE_NAME
        lines = self._object(uri, "train channel").decode("utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    def _object(self, uri: str, what: str) -> bytes:
        bucket, key = _split(uri)
        try:
            return bytes(self._s3.get_object(Bucket=bucket, Key=key)["Body"].read())
        except self._s3.exceptions.NoSuchKey:
            raise RequestMismatch(f"{what}: {uri} does not exist") from None

    # -- outputs ----------------------------------------------------------------------------------

    def _write_outputs(
        self,
        request: dict[str, Any],
        recipe: dict[str, Any],
        samples: list[dict[str, Any]],
        model_uri: str,
    ) -> None:
        task = recipe["evaluation"]["task"]
        source = recipe["run"]["model_name_or_path"]
        loss = self._trainer.final_loss_by_checkpoint.get(source, BASE_MODEL_START_LOSS)
        results = scores(task, loss, low=self.low_score)
        self.evaluated.append((request["TrainingJobName"], source, results))
        stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H-%M-%S.%f")
        run = recipe["run"]["name"]
        document = {
            "config_general": {"model_name": source, "job": request["TrainingJobName"]},
            "results": {"all": results, f"custom|{task}|0": results},
            "versions": {f"custom|{task}|0": 0},
        }
        inference = "".join(
            json.dumps(
                {
                    "prompt": sample.get("query", ""),
                    "inference": sample.get("response", "")[::-1],
                    "gold": sample.get("response", ""),
                    "metadata": sample.get("metadata"),
                }
            )
            + "\n"
            for sample in samples
        )
        digest = hashlib.sha256(json.dumps(results, sort_keys=True).encode()).hexdigest()
        output = _tar_gz(
            {
                f"{run}/eval_results/inference_output.jsonl": inference.encode(),
                f"{run}/eval_results/details/details_{task}_{stamp}.parquet": (
                    b"PAR1" + digest.encode() + b"PAR1"
                ),
                f"{run}/eval_results/results_{stamp}.json": json.dumps(document).encode(),
            }
        )
        bucket, key = _split(model_uri)
        self._s3.put_object(Bucket=bucket, Key=key, Body=_tar_gz({}))
        self._s3.put_object(
            Bucket=bucket, Key=posixpath.join(posixpath.dirname(key), "output.tar.gz"), Body=output
        )


class JobRunner:
    """What the executor calls for every training step: evaluation jobs (the evaluation image)
    go to the stand-in evaluator, every other job to the stand-in trainer."""

    def __init__(self, trainer: StandInTrainer, evaluator: StandInEvaluator, region: str) -> None:
        self.trainer = trainer
        self.evaluator = evaluator
        self._evaluation_image = nova_evaluation_image_uri(region)

    def train(self, request: dict[str, Any]) -> dict[str, Any]:
        if request["AlgorithmSpecification"]["TrainingImage"] == self._evaluation_image:
            return self.evaluator.train(request)
        return self.trainer.train(request)

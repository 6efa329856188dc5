"""Runs of an experiment: find the run a training job made (or make it), and log to it.

A run is found by its experiment's name and its run name: the recipe names both
(`run.mlflow_experiment_name` = the pipeline's name, `run.mlflow_run_name` = the execution's run
name), so the training container, the register step and the evaluation step all reach the same
run. Nothing here assumes the container made it: a missing experiment or run is created, and a
second call finds what the first created. Every function takes its `TrackingClient`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from lambdas.tracking.client import TrackingClient, TrackingError

# MLflow's limits on one runs/log-batch request and on keys and values (its REST API reference).
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = 100
MAX_BATCH_TAGS = 100
MAX_KEY_CHARS = 250
MAX_PARAM_CHARS = 6000
MAX_TAG_CHARS = 8000
# The tags the register step sets on a run (docs/decisions/0020-experiment-tracking.md).
TAG_CHECKPOINT = "nova-sft.checkpoint_uri"
TAG_MODEL_PACKAGE = "nova-sft.model_package_arn"
TAG_PARENT = "nova-sft.parent"
TAG_TRAINING_JOB = "nova-sft.training_job"


def _now_ms() -> int:
    return int(time.time() * 1000)


def experiment_id(client: TrackingClient, name: str) -> str:
    """The id of the experiment `name`, created when it does not exist yet."""
    try:
        found = client.get("experiments/get-by-name", {"experiment_name": name})
        return str(found["experiment"]["experiment_id"])
    except TrackingError as error:
        if error.error_code != "RESOURCE_DOES_NOT_EXIST":
            raise
    try:
        return str(client.post("experiments/create", {"name": name})["experiment_id"])
    except TrackingError as error:
        if error.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
        # Another writer (the training container) created it in between: use theirs.
        found = client.get("experiments/get-by-name", {"experiment_name": name})
        return str(found["experiment"]["experiment_id"])


def find_run(client: TrackingClient, experiment: str, run_name: str) -> dict[str, Any] | None:
    """The newest run named `run_name` in the experiment `experiment` (its id), or None."""
    quoted = run_name.replace("\\", "\\\\").replace("'", "\\'")
    found = client.post(
        "runs/search",
        {
            "experiment_ids": [experiment],
            "filter": f"attributes.run_name = '{quoted}'",
            "order_by": ["attributes.start_time DESC"],
            "max_results": 1,
        },
    )
    runs = found.get("runs") or []
    return dict(runs[0]) if runs else None


def find_or_create_run(client: TrackingClient, experiment_name: str, run_name: str) -> str:
    """The id of the run `run_name` of experiment `experiment_name`; both created if missing."""
    experiment = experiment_id(client, experiment_name)
    run = find_run(client, experiment, run_name)
    if run is not None:
        return str(run["info"]["run_id"])
    created = client.post(
        "runs/create",
        {"experiment_id": experiment, "run_name": run_name, "start_time": _now_ms()},
    )
    return str(created["run"]["info"]["run_id"])


def _check_key(kind: str, key: str) -> None:
    if not isinstance(key, str) or not key or len(key) > MAX_KEY_CHARS:
        raise ValueError(f"{kind} key {key!r} must be 1 to {MAX_KEY_CHARS} characters")


def _entries(kind: str, values: Mapping[str, object], limit: int) -> list[dict[str, str]]:
    entries = []
    for key, value in sorted(values.items()):
        _check_key(kind, key)
        text = str(value)
        if len(text) > limit:
            raise ValueError(f"{kind} {key}: value of {len(text)} characters, over {limit}")
        entries.append({"key": key, "value": text})
    return entries


def _metric_entries(
    metrics: Mapping[str, float] | Iterable[tuple[str, float, int]], timestamp: int
) -> list[dict[str, Any]]:
    triples = (
        [(k, v, 0) for k, v in metrics.items()] if isinstance(metrics, Mapping) else list(metrics)
    )
    entries = []
    for key, value, step in triples:
        _check_key("metric", key)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"metric {key}: {value!r} is not a number")
        if not math.isfinite(value):
            raise ValueError(f"metric {key}: {value!r} is not finite")
        entries.append({"key": key, "value": float(value), "timestamp": timestamp, "step": step})
    return entries


def _chunks(items: Sequence[Any], size: int) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def log_batch(
    client: TrackingClient,
    run_id: str,
    *,
    metrics: Mapping[str, float] | Iterable[tuple[str, float, int]] = (),
    params: Mapping[str, object] | None = None,
    tags: Mapping[str, object] | None = None,
) -> None:
    """Log to run `run_id`, in as many runs/log-batch requests as MLflow's limits need.

    `metrics` is a mapping (each logged at step 0) or (key, value, step) triples. Params cannot
    change once logged (MLflow refuses another value); tags can. ValueError names a bad key or
    value before anything is sent.
    """
    timestamp = _now_ms()
    metric_entries = _metric_entries(metrics if metrics else {}, timestamp)
    param_entries = _entries("param", params or {}, MAX_PARAM_CHARS)
    tag_entries = _entries("tag", tags or {}, MAX_TAG_CHARS)
    for chunk in _chunks(param_entries, MAX_BATCH_PARAMS):
        client.post("runs/log-batch", {"run_id": run_id, "params": list(chunk)})
    for chunk in _chunks(tag_entries, MAX_BATCH_TAGS):
        client.post("runs/log-batch", {"run_id": run_id, "tags": list(chunk)})
    for chunk in _chunks(metric_entries, MAX_BATCH_METRICS):
        client.post("runs/log-batch", {"run_id": run_id, "metrics": list(chunk)})


def log_to_run(
    client: TrackingClient,
    *,
    experiment_name: str,
    run_name: str,
    metrics: Mapping[str, float],
    params: Mapping[str, object],
    tags: Mapping[str, object],
) -> str:
    """Log `metrics` (at step 0), `params` and `tags` to the run `run_name` of experiment
    `experiment_name`, finding or creating both; returns the run's id.

    The evaluation step's entry: e.g. metrics {"eval.rougeL": 0.41}, params
    {"eval.recipe": "..."}, tags {"nova-sft.evaluation_job": "..."}.
    """
    run_id = find_or_create_run(client, experiment_name, run_name)
    log_batch(client, run_id, metrics=metrics, params=params, tags=tags)
    return run_id


def lineage_tags(
    *, checkpoint_uri: str, model_package_arn: str, parent: str, training_job: str
) -> dict[str, str]:
    """The tags that place a run in the registry's lineage (what the register step logs)."""
    return {
        TAG_CHECKPOINT: checkpoint_uri,
        TAG_MODEL_PACKAGE: model_package_arn,
        TAG_PARENT: parent,
        TAG_TRAINING_JOB: training_job,
    }


def finish_run(client: TrackingClient, run_id: str, status: str = "FINISHED") -> None:
    """Mark the run ended (FINISHED or FAILED), as a training container does at its end."""
    client.post("runs/update", {"run_id": run_id, "status": status, "end_time": _now_ms()})


def list_runs(client: TrackingClient, experiment_name: str) -> list[dict[str, Any]]:
    """Every run of the experiment, oldest first (empty when the experiment does not exist)."""
    try:
        found = client.get("experiments/get-by-name", {"experiment_name": experiment_name})
    except TrackingError as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return []
        raise
    experiment = str(found["experiment"]["experiment_id"])
    runs: list[dict[str, Any]] = []
    token = ""
    while True:
        body: dict[str, Any] = {
            "experiment_ids": [experiment],
            "order_by": ["attributes.start_time ASC"],
            "max_results": 1000,
        }
        if token:
            body["page_token"] = token
        page = client.post("runs/search", body)
        runs.extend(page.get("runs") or [])
        token = str(page.get("next_page_token") or "")
        if not token:
            return runs

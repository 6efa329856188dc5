"""The tracking client against a real MLflow server on 127.0.0.1 (lambdas/tracking/)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lambdas.tracking import (
    ENDPOINT_OVERRIDE,
    TrackingClient,
    TrackingError,
    find_or_create_run,
    finish_run,
    list_runs,
    log_batch,
    log_to_run,
    tracking_address,
)
from lambdas.tracking.runs import MAX_BATCH_METRICS
from pipeline.rehearsal.mlflow_server import LocalMlflowServer, free_port

ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/nova-sft-test"


@pytest.fixture
def client(mlflow_server: LocalMlflowServer) -> TrackingClient:
    return TrackingClient(tracking_address(ARN, {ENDPOINT_OVERRIDE: mlflow_server.url}))


@pytest.fixture
def experiment() -> str:
    # Tests share the session's server: each one writes to an experiment of its own.
    return f"nova-sft-test-{uuid.uuid4().hex[:8]}"


def run_of(client: TrackingClient, run_id: str) -> dict[str, Any]:
    return dict(client.get("runs/get", {"run_id": run_id})["run"])


def test_log_to_run_creates_the_experiment_and_the_run_and_logs_everything(
    client: TrackingClient, experiment: str
) -> None:
    run_id = log_to_run(
        client,
        experiment_name=experiment,
        run_name="nova-sft-test-exec1",
        metrics={"eval.rougeL": 0.41, "eval.f1": 0.5},
        params={"eval.task": "gen_qa"},
        tags={"nova-sft.evaluation_job": "eval-1"},
    )
    run = run_of(client, run_id)
    assert run["info"]["run_name"] == "nova-sft-test-exec1"
    metrics = {m["key"]: m["value"] for m in run["data"]["metrics"]}
    assert metrics == {"eval.rougeL": 0.41, "eval.f1": 0.5}
    assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"eval.task": "gen_qa"}
    tags = {t["key"]: t["value"] for t in run["data"]["tags"]}
    assert tags["nova-sft.evaluation_job"] == "eval-1"


def test_the_same_run_name_finds_the_same_run(client: TrackingClient, experiment: str) -> None:
    first = find_or_create_run(client, experiment, "nova-sft-test-exec1")
    again = find_or_create_run(client, experiment, "nova-sft-test-exec1")
    other = find_or_create_run(client, experiment, "nova-sft-test-exec2")
    assert first == again != other
    assert [r["info"]["run_name"] for r in list_runs(client, experiment)] == [
        "nova-sft-test-exec1",
        "nova-sft-test-exec2",
    ]


def test_a_long_curve_goes_in_several_batches_and_arrives_whole(
    client: TrackingClient, experiment: str
) -> None:
    run_id = find_or_create_run(client, experiment, "nova-sft-test-curve")
    steps = MAX_BATCH_METRICS + 250
    log_batch(client, run_id, metrics=[("training_loss", 2.0 / (s + 1), s) for s in range(steps)])
    finish_run(client, run_id)
    history = client.get(
        "metrics/get-history",
        {"run_id": run_id, "metric_key": "training_loss", "max_results": "5000"},
    )["metrics"]
    assert sorted(m["step"] for m in history) == list(range(steps))
    assert run_of(client, run_id)["info"]["status"] == "FINISHED"


def test_a_param_logged_again_with_another_value_is_refused_by_mlflow(
    client: TrackingClient, experiment: str
) -> None:
    run_id = find_or_create_run(client, experiment, "nova-sft-test-params")
    log_batch(client, run_id, params={"technique": "LoRA"})
    log_batch(client, run_id, params={"technique": "LoRA"})  # the same value: accepted
    with pytest.raises(TrackingError) as caught:
        log_batch(client, run_id, params={"technique": "FullRank"})
    assert caught.value.error_code == "INVALID_PARAMETER_VALUE"
    assert ARN in str(caught.value)


def test_bad_values_are_refused_before_anything_is_sent(
    client: TrackingClient, experiment: str
) -> None:
    run_id = find_or_create_run(client, experiment, "nova-sft-test-bad")
    with pytest.raises(ValueError, match="not finite"):
        log_batch(client, run_id, metrics={"loss": float("nan")}, tags={"t": "x"})
    with pytest.raises(ValueError, match="characters"):
        log_batch(client, run_id, params={"k" * 251: "v"})
    tags = {t["key"] for t in run_of(client, run_id)["data"].get("tags", [])}
    assert "t" not in tags


def test_an_unreachable_server_is_a_tracking_error_naming_it() -> None:
    address = tracking_address(ARN, {ENDPOINT_OVERRIDE: f"http://127.0.0.1:{free_port()}"})
    client = TrackingClient(address, backoff=0.01)
    with pytest.raises(TrackingError, match=r"cannot reach http://127\.0\.0\.1"):
        find_or_create_run(client, "nova-sft-test", "run")


def test_list_runs_of_an_experiment_that_does_not_exist_is_empty(
    client: TrackingClient, experiment: str
) -> None:
    assert list_runs(client, experiment) == []

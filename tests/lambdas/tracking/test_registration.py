"""The register step logs the registration's lineage to the run (lambdas/tracking/registration.py
and lambdas/register_checkpoint.py), against moto and a real MLflow server on 127.0.0.1."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from lambdas import register_checkpoint as module
from lambdas.recipe.spec import BASE_MODEL
from lambdas.tracking import (
    ENDPOINT_OVERRIDE,
    TAG_CHECKPOINT,
    TAG_MODEL_PACKAGE,
    TAG_PARENT,
    TAG_TRAINING_JOB,
    TrackingClient,
    list_runs,
    tracking_address,
)
from lambdas.tracking.registration import (
    ARN_KEY,
    EXPERIMENT_KEY,
    RUN_NAME_KEY,
    TrackingTarget,
    log_registration,
    tracking_target,
)
from pipeline.rehearsal.mlflow_server import LocalMlflowServer, free_port
from tests.lambdas.test_register_checkpoint import escrow, stage_run, versions

ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/nova-sft-test"


def tracking_inputs(experiment: str, run_name: str) -> dict[str, str]:
    return {ARN_KEY: ARN, EXPERIMENT_KEY: experiment, RUN_NAME_KEY: run_name}


@pytest.fixture
def experiment() -> str:
    return f"nova-sft-test-{uuid.uuid4().hex[:8]}"


@pytest.fixture
def endpoint(mlflow_server: LocalMlflowServer, monkeypatch: pytest.MonkeyPatch) -> str:
    # What the rehearsal does: the tracking ARN answers at the local server.
    monkeypatch.setenv(ENDPOINT_OVERRIDE, mlflow_server.url)
    return mlflow_server.url


def tags_of(url: str, experiment: str) -> list[dict[str, str]]:
    client = TrackingClient(tracking_address(ARN, {ENDPOINT_OVERRIDE: url}))
    return [
        {t["key"]: t["value"] for t in run["data"].get("tags", [])}
        for run in list_runs(client, experiment)
    ]


def test_without_tracking_inputs_there_is_no_target() -> None:
    assert tracking_target({"TrainingJobName": "job-1"}) is None
    assert tracking_target({ARN_KEY: "", EXPERIMENT_KEY: None}) is None


def test_tracking_inputs_come_together_and_well_formed() -> None:
    with pytest.raises(ValueError, match=f"{RUN_NAME_KEY} is missing"):
        tracking_target({ARN_KEY: ARN, EXPERIMENT_KEY: "nova-sft-test"})
    with pytest.raises(ValueError, match="tracking inputs are invalid") as caught:
        tracking_target({ARN_KEY: "arn:aws:s3:::b", EXPERIMENT_KEY: "x y", RUN_NAME_KEY: "r"})
    assert ARN_KEY in str(caught.value)
    assert f"{EXPERIMENT_KEY}='x y'" in str(caught.value)
    target = tracking_target(tracking_inputs("nova-sft-test", "nova-sft-test-exec1"))
    assert target == TrackingTarget(ARN, "nova-sft-test", "nova-sft-test-exec1")


def test_the_handler_registers_then_tags_the_run_with_the_lineage(
    clients: tuple[Any, Any], endpoint: str, experiment: str
) -> None:
    _sm, s3 = clients
    event = {**stage_run(s3, "job-1"), **tracking_inputs(experiment, "nova-sft-test-exec1")}
    module._clients.cache_clear()
    try:
        result = module.handler(event, None)
    finally:
        module._clients.cache_clear()
    (tags,) = tags_of(endpoint, experiment)
    assert tags[TAG_CHECKPOINT] == escrow("job-1") == result["CheckpointS3Uri"]
    assert tags[TAG_MODEL_PACKAGE] == result["ModelPackageArn"]
    assert tags[TAG_PARENT] == BASE_MODEL
    assert tags[TAG_TRAINING_JOB] == "job-1"
    assert tags["mlflow.runName"] == "nova-sft-test-exec1"


def test_a_tracker_that_cannot_be_reached_costs_a_warning_not_the_registration(
    clients: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    sm, s3 = clients
    monkeypatch.setenv(ENDPOINT_OVERRIDE, f"http://127.0.0.1:{free_port()}")
    event = {**stage_run(s3, "job-1"), **tracking_inputs("nova-sft-test", "nova-sft-test-x")}
    module._clients.cache_clear()
    try:
        result = module.handler(event, None)
    finally:
        module._clients.cache_clear()
    assert [v["ModelPackageArn"] for v in versions(sm)] == [result["ModelPackageArn"]]
    warning = capsys.readouterr().err
    assert f"{result['ModelPackageArn']} is registered, but its lineage was not logged" in warning
    assert "cannot reach http://127.0.0.1" in warning


def test_bad_tracking_inputs_fail_the_step_before_anything_is_registered(
    clients: tuple[Any, Any],
) -> None:
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), ARN_KEY: ARN}
    module._clients.cache_clear()
    try:
        with pytest.raises(ValueError, match="tracking inputs are invalid"):
            module.handler(event, None)
    finally:
        module._clients.cache_clear()
    assert versions(sm) == []


def test_logging_the_same_registration_twice_keeps_one_run(endpoint: str, experiment: str) -> None:
    target = TrackingTarget(ARN, experiment, "nova-sft-test-exec1")
    package = "arn:aws:sagemaker:us-east-1:123456789012:model-package/g/1"
    first, again = (
        log_registration(
            target,
            checkpoint_uri=escrow("job-1"),
            model_package_arn=package,
            parent=BASE_MODEL,
            training_job="job-1",
        )
        for _ in range(2)
    )
    assert first is not None
    assert first == again
    assert len(tags_of(endpoint, experiment)) == 1

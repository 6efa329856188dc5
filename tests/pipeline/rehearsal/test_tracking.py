"""The rehearsal's MLflow: the local server leaves nothing running, and the stand-in trainer logs
its loss curve to the recipe's run as the container would (pipeline/rehearsal/)."""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from lambdas.recipe import render_recipe, validate_run
from lambdas.recipe.spec import BASE_MODEL
from lambdas.tracking import ENDPOINT_OVERRIDE, TrackingClient, list_runs, tracking_address
from pipeline.rehearsal.mlflow_server import LocalMlflowServer, MlflowServerError
from pipeline.rehearsal.stand_in_trainer import RequestMismatch, log_curve_to_mlflow, loss_curve
from pipeline.rehearsal.tracking import experiment_lines

ARN = "arn:aws:sagemaker:us-east-1:123456789012:mlflow-tracking-server/nova-sft-sandbox"


def group_members(group: int) -> list[int]:
    """The processes whose process group is `group` (read from /proc)."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue  # ended while being read
            if int(fields[2]) == group:
                members.append(int(entry.name))
    return members


def test_stopping_the_server_ends_every_process_it_started() -> None:
    server = LocalMlflowServer().start()
    assert server.pid is not None
    try:
        # Wait until the CLI has started its worker: two processes in the group.
        deadline = time.monotonic() + 120
        while len(group_members(server.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        assert len(group_members(server.pid)) >= 2
    finally:
        server.stop()
    assert group_members(server.pid) == []


def test_a_missing_mlflow_virtualenv_is_named_with_the_fix(tmp_path: Path) -> None:
    with pytest.raises(MlflowServerError, match=r"\.venv-mlflow virtualenv; create it"):
        LocalMlflowServer(python=tmp_path / "python").start()


def tracked_recipe(experiment: str, run_name: str) -> dict[str, Any]:
    settings = validate_run(
        {
            "Technique": "LoRA",
            "ModelNameOrPath": BASE_MODEL,
            "TrainingInstanceType": "ml.p5.48xlarge",
            "TrainingInstanceCount": "4",
            "RunName": run_name,
            "MaxSteps": "20",
        }
    )
    body = render_recipe(settings, mlflow={"tracking_uri": ARN, "experiment_name": experiment})
    return dict(yaml.safe_load(body))


def test_the_stand_in_trainer_logs_its_curve_to_the_recipes_run(
    mlflow_server: LocalMlflowServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(ENDPOINT_OVERRIDE, mlflow_server.url)
    experiment = f"nova-sft-test-{uuid.uuid4().hex[:8]}"
    recipe = tracked_recipe(experiment, f"{experiment}-exec1")
    curve = loss_curve("job-1", 20, 2.4)
    log_curve_to_mlflow(recipe, "job-1", curve)
    client = TrackingClient(tracking_address(ARN, os.environ))
    (run,) = list_runs(client, experiment)
    assert run["info"]["run_name"] == f"{experiment}-exec1"
    assert run["info"]["status"] == "FINISHED"
    history = client.get(
        "metrics/get-history", {"run_id": run["info"]["run_id"], "metric_key": "training_loss"}
    )["metrics"]
    assert sorted((m["step"], m["value"]) for m in history) == curve
    params = {p["key"]: p["value"] for p in run["data"]["params"]}
    assert params["training_config.max_steps"] == "20"
    assert params["run.model_name_or_path"] == BASE_MODEL
    lines = experiment_lines(client, experiment)
    assert lines[0] == f"MLflow experiment {experiment}: 1 run(s)"
    assert f"{experiment}-exec1" in lines[2]
    assert f"{curve[-1][1]:.4f}" in lines[2]


def test_a_recipe_without_tracking_logs_nothing_and_needs_no_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENDPOINT_OVERRIDE, raising=False)
    recipe = tracked_recipe("unused", "run-1")
    recipe["run"]["mlflow_tracking_uri"] = ""
    log_curve_to_mlflow(recipe, "job-1", [(1, 1.0)])  # no server, no error


def test_a_tracked_recipe_never_reaches_aws_from_a_rehearsal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(ENDPOINT_OVERRIDE, raising=False)
    with pytest.raises(RequestMismatch, match="does not map it to a local MLflow server"):
        log_curve_to_mlflow(tracked_recipe("e", "r"), "job-1", [(1, 1.0)])

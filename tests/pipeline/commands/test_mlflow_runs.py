"""`lineage` and `metrics` print each version's MLflow run where the environment tracks
experiments (pipeline/commands/mlflow_runs.py), against moto and a real MLflow server."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import boto3
import pytest

from lambdas.tracking import (
    ENDPOINT_OVERRIDE,
    TrackingClient,
    find_or_create_run,
    lineage_tags,
    log_to_run,
    tracking_address,
)
from pipeline.rehearsal.mlflow_server import LocalMlflowServer
from tests.pipeline.commands.helpers import (
    MOTO_ACCOUNT,
    deploy,
    environment,
    register,
    run_cli,
    tracking_arn,
    write_cdk_json,
)


@pytest.fixture
def tracked(tmp_path: Path) -> tuple[Path, str]:
    """cdk.json with an environment of this test's own, like dev but creating its tracking
    server: its experiment (nova-sft-<name>) is this test's alone on the shared server."""
    path = write_cdk_json(tmp_path, tracking="create")
    document = json.loads(path.read_text(encoding="utf-8"))
    environments = document["context"]["nova-sft"]["environments"]
    name = f"mlf-{uuid.uuid4().hex[:8]}"
    environments[name] = dict(environments["dev"])
    path.write_text(json.dumps(document), encoding="utf-8")
    return path, name


@pytest.fixture
def mlflow(mlflow_server: LocalMlflowServer, monkeypatch: pytest.MonkeyPatch) -> TrackingClient:
    """A client of the local server, to which every tracking ARN is mapped."""
    monkeypatch.setenv(ENDPOINT_OVERRIDE, mlflow_server.url)
    arn = f"arn:aws:sagemaker:us-east-1:{MOTO_ACCOUNT}:mlflow-tracking-server/any"
    return TrackingClient(tracking_address(arn, {ENDPOINT_OVERRIDE: mlflow_server.url}))


def test_lineage_prints_each_versions_run_and_where_the_runs_are(
    aws: boto3.Session,
    tracked: tuple[Path, str],
    mlflow: TrackingClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, name = tracked
    env = environment(cdk_json, name)
    deploy(aws, env)
    one = register(aws, env, "job-one")
    register(aws, env, "job-two", parent=one.checkpoint_uri)
    run_id = find_or_create_run(mlflow, env.pipeline_name, "job-one")
    status, out, err = run_cli(capsys, "lineage", "--env", name, "--cdk-json", str(cdk_json))
    assert (status, err) == (0, "")
    lines = out.splitlines()
    assert lines[2].startswith("└─ v1 ")
    assert lines[2].endswith(f"  mlflow: job-one ({run_id})")
    assert lines[3].endswith("  mlflow: no run")  # job-two logged nothing
    assert lines[4] == (
        f"MLflow: experiment {env.pipeline_name} on {tracking_arn(env, MOTO_ACCOUNT)}"
    )


def test_lineage_json_maps_each_package_to_its_run(
    aws: boto3.Session,
    tracked: tuple[Path, str],
    mlflow: TrackingClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, name = tracked
    env = environment(cdk_json, name)
    deploy(aws, env)
    one = register(aws, env, "job-one")
    # The register step's tags find the run even under another run name.
    run_id = log_to_run(
        mlflow,
        experiment_name=env.pipeline_name,
        run_name="renamed-run",
        metrics={},
        params={},
        tags=lineage_tags(
            checkpoint_uri=one.checkpoint_uri,
            model_package_arn=one.model_package_arn,
            parent=one.parent,
            training_job="job-one",
        ),
    )
    status, out, _ = run_cli(
        capsys, "lineage", "--env", name, "--cdk-json", str(cdk_json), "--json"
    )
    assert status == 0
    document = json.loads(out)["mlflow"]
    assert document["experiment"] == env.pipeline_name
    assert document["error"] is None
    assert document["runs"][one.model_package_arn]["run_id"] == run_id


def test_a_tracker_that_cannot_be_read_is_one_line_not_a_failure(
    aws: boto3.Session, tracked: tuple[Path, str], capsys: pytest.CaptureFixture[str]
) -> None:
    cdk_json, name = tracked
    env = environment(cdk_json, name)
    deploy(aws, env)
    register(aws, env, "job-one")
    # tests/conftest.py maps MLflow to a closed port: the server cannot be reached.
    status, out, _ = run_cli(capsys, "lineage", "--env", name, "--cdk-json", str(cdk_json))
    assert status == 0
    lines = out.splitlines()
    assert "mlflow:" not in lines[2]
    assert lines[-1].startswith("  runs not read: cannot reach http://127.0.0.1:9")


def test_metrics_prints_the_run_beside_the_curve(
    aws: boto3.Session,
    tracked: tuple[Path, str],
    mlflow: TrackingClient,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, name = tracked
    env = environment(cdk_json, name)
    deploy(aws, env)
    register(aws, env, "job-one")
    run_id = find_or_create_run(mlflow, env.pipeline_name, "job-one")
    status, out, _ = run_cli(
        capsys, "metrics", "1", "job-one", "--env", name, "--cdk-json", str(cdk_json)
    )
    assert status == 0
    first, second, header = out.splitlines()
    assert first.startswith("v1 LoRA (job-one): 4 steps")
    assert first.endswith(f"  mlflow: job-one ({run_id})")
    assert second.startswith("job-one (job-one): ")
    assert second.endswith("  mlflow: no run")  # a job name finds its run by the job's tag
    assert header.startswith(f"MLflow: experiment {env.pipeline_name} on ")


def test_mlflow_links_asks_sagemaker_for_a_presigned_url(
    aws: boto3.Session,
    tracked: tuple[Path, str],
    mlflow: TrackingClient,
    capsys: pytest.CaptureFixture[str],
    aws_calls: list[str],
) -> None:
    cdk_json, name = tracked
    env = environment(cdk_json, name)
    deploy(aws, env)
    register(aws, env, "job-one")
    status, out, _ = run_cli(
        capsys, "lineage", "--env", name, "--cdk-json", str(cdk_json), "--mlflow-links"
    )
    assert status == 0
    assert "sagemaker.CreatePresignedMlflowTrackingServerUrl" in aws_calls
    # moto has no MLflow API: the command says why there is no link and carries on.
    assert "  no UI link: " in out


def test_mlflow_links_where_nothing_is_tracked_is_a_usage_error(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    status, out, err = run_cli(
        capsys, "lineage", "--env", "dev", "--cdk-json", str(cdk_json), "--mlflow-links"
    )
    assert (status, out) == (2, "")
    assert "does not track experiments" in err

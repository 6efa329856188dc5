"""`metrics` reads, summarizes and plots the loss curves of runs."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from pipeline.commands.common import OperationError
from pipeline.commands.metrics import parse_curve
from tests.pipeline.commands.helpers import deploy, environment, register, run_cli


def test_metrics_summarizes_and_plots_runs_named_by_package_and_by_job(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    one = register(aws, env, "job-one", losses=(2.0, 1.25, 1.5, 1.0))
    register(aws, env, "job-two", parent=one.checkpoint_uri, losses=(0.9, 0.7))
    plot = tmp_path / "curves" / "loss.png"
    status, out, _ = run_cli(
        capsys,
        "metrics",
        one.model_package_arn,
        "job-two",
        "--env",
        "dev",
        "--cdk-json",
        str(cdk_json),
        "--plot",
        str(plot),
    )
    assert status == 0
    assert out.splitlines() == [
        "v1 LoRA (job-one): 4 steps, training loss 2.0000 -> 1.0000 (lowest 1.0000)",
        "job-two (job-two): 2 steps, training loss 0.9000 -> 0.7000 (lowest 0.7000)",
        f"Plot: {plot}",
    ]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metrics_json_has_every_point(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    register(aws, env, "job-one", losses=(2.0, 1.25, 1.5, 1.0))
    status, out, _ = run_cli(
        capsys, "metrics", "job-one", "--env", "dev", "--cdk-json", str(cdk_json), "--json"
    )
    [run] = json.loads(out)["runs"]
    assert status == 0
    assert run["points"] == [[1, 2.0], [2, 1.25], [3, 1.5], [4, 1.0]]
    assert (run["min_loss"], run["final_loss"]) == (1.0, 1.0)


def test_metrics_failures(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    for run, status, message in (
        ("no-such-job", 1, "cannot describe training job no-such-job"),
        ("7", 1, "cannot describe arn:aws:sagemaker:us-east-1:123456789012:model-package/"),
        ("bad name!", 2, "is neither a model package ARN, a version nor a job name"),
    ):
        got, _, err = run_cli(capsys, "metrics", run, "--env", "dev", "--cdk-json", str(cdk_json))
        assert (got, message in err) == (status, True), err


def test_metrics_plot_must_be_a_png(cdk_json: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status, _, err = run_cli(
        capsys, "metrics", "job", "--cdk-json", str(cdk_json), "--plot", "a.jpg"
    )
    assert status == 2
    assert "--plot a.jpg: the file name must end in .png" in err


def test_parse_curve_orders_points_and_refuses_a_file_without_the_columns() -> None:
    points, summary = parse_curve("step_number,training_loss,lr\n2,0.5,1\n1,0.75,1\n", "x")
    assert points == ((1, 0.75), (2, 0.5))
    assert (summary.steps, summary.first_loss, summary.final_loss) == (2, 0.75, 0.5)
    with pytest.raises(OperationError, match="lacks step_number or training_loss"):
        parse_curve("step,loss\n1,0.5\n", "s3://b/k/output.tar.gz")

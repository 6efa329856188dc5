"""`lineage` draws the registry as a tree; `metrics` reads, summarizes and plots loss curves."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from pipeline.commands.operate import OperationError, parse_curve
from tests.pipeline.commands.helpers import deploy, environment, register, run_cli


def test_lineage_nests_each_run_under_the_checkpoint_it_continued_from(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    one = register(aws, env, "job-one", approval="Approved", losses=(2.0, 1.5))
    register(aws, env, "job-two", parent=one.checkpoint_uri, losses=(1.4, 1.1, 0.9))
    register(aws, env, "job-three", technique="FullRank", approval="Rejected")

    status, out, _ = run_cli(capsys, "lineage", "--env", "dev", "--cdk-json", str(cdk_json))
    assert status == 0
    lines = out.splitlines()
    assert lines[0] == "Checkpoints of dev (nova-sft-dev-checkpoints):"
    assert lines[1] == "nova-lite-2/prod"
    assert lines[2].startswith("├─ v1 Approved LoRA 2 steps loss 1.5000 ")
    assert lines[3].startswith("│  └─ v2 PendingManualApproval LoRA 3 steps loss 0.9000 ")
    assert lines[4].startswith("└─ v3 Rejected FullRank 4 steps loss 1.0000 ")
    assert lines[4].endswith("/job-three/step_4")


def test_lineage_of_a_package_keeps_its_ancestors_and_descendants_only(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    one = register(aws, env, "job-one")
    two = register(aws, env, "job-two", parent=one.checkpoint_uri)
    register(aws, env, "job-three", parent=two.checkpoint_uri)
    register(aws, env, "job-four")  # another line from the base model
    status, out, _ = run_cli(
        capsys,
        "lineage",
        two.model_package_arn,
        "--cdk-json",
        str(cdk_json),
        "--env",
        "dev",
        "--json",
    )
    assert status == 0
    [root] = json.loads(out)["roots"]
    assert root["started_from"] == "nova-lite-2/prod"
    [first] = root["checkpoints"]
    chain = [first["version"], first["children"][0]["version"]]
    chain.append(first["children"][0]["children"][0]["version"])
    assert chain == [1, 2, 3]
    assert first["children"][0]["parent"] == one.checkpoint_uri


def test_lineage_of_an_empty_group_says_so(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    status, out, _ = run_cli(capsys, "lineage", "--env", "dev", "--cdk-json", str(cdk_json))
    assert (status, out) == (0, "No checkpoints in nova-sft-dev-checkpoints yet.\n")


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


def test_sts_is_asked_once_per_command_when_cdk_json_names_no_account(
    aws: boto3.Session,
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
    aws_calls: list[str],
) -> None:
    # sandbox names no account, so a version number needs the caller's account to make its
    # ARN; the check of the credentials has already asked for it.
    env = environment(cdk_json, "sandbox")
    deploy(aws, env)
    one = register(aws, env, "job-one")
    register(aws, env, "job-two", parent=one.checkpoint_uri)
    common = ("--env", "sandbox", "--cdk-json", str(cdk_json))
    outputs = {}
    for argv in (
        ("lineage", "2", *common),
        ("metrics", "1", "2", "job-one", *common),
        ("approve", "1", *common),
    ):
        aws_calls.clear()
        status, out, err = run_cli(capsys, *argv)
        assert (status, err) == (0, ""), argv
        assert aws_calls.count("sts.GetCallerIdentity") == 1, argv
        outputs[argv[0]] = out
    assert outputs["approve"] == f"{one.model_package_arn}: Approved\n"

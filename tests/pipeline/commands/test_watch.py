"""`watch` follows an execution to its end; with `start`, `lineage`, `metrics` and `approve` it
iterates: a run that the local executor finishes is seen, inspected, approved and continued."""

from __future__ import annotations

import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto.sagemaker.models import sagemaker_backends

from lambdas import prepare_recipe, register_checkpoint, validate_dataset
from lambdas.recipe.evaluation_spec import EVALUATION_KEYS
from pipeline.definition import TRAIN_FROM_BASE_MODEL
from pipeline.rehearsal.endpoint import LocalEndpoint
from pipeline.rehearsal.executor import LocalExecutor
from pipeline.rehearsal.stand_in_trainer import StandInTrainer
from tests.pipeline.commands.helpers import (
    MOTO_ACCOUNT,
    deploy,
    environment,
    register,
    run_cli,
)

SAMPLE = (
    Path(__file__).resolve().parents[3] / "pipeline" / "rehearsal" / "sample_data" / "train.jsonl"
)
FUNCTIONS = f"arn:aws:lambda:us-east-1:{MOTO_ACCOUNT}:function:"
TRAIN = ("--train", "s3://data-dev/datasets/train.jsonl", "--set", "MaxSteps=20")


def executor(session: boto3.Session, **options: Any) -> LocalExecutor:
    """Runs stored executions with the project's handlers and the stand-in trainer."""
    handlers: dict[str, Any] = {
        FUNCTIONS + "validate": validate_dataset.handler,
        FUNCTIONS + "prepare": prepare_recipe.handler,
        FUNCTIONS + "register": register_checkpoint.handler,
    }
    trainer = options.pop("trainer", StandInTrainer(session=session, region="us-east-1"))
    return LocalExecutor(
        sagemaker_client=session.client("sagemaker"),
        lambda_handlers=handlers,
        trainer=trainer,
        **options,
    )


def start_sample_run(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> tuple[int, str, str]:
    """Deploy dev, upload the sample dataset and `start --json` a run of it."""
    deploy(aws, environment(cdk_json, "dev"))
    aws.client("s3").upload_file(str(SAMPLE), "data-dev", "datasets/train.jsonl")
    return run_cli(capsys, "start", "--env", "dev", "--cdk-json", str(cdk_json), *TRAIN, "--json")


def set_execution_status(arn: str, status: str) -> None:
    """Put an execution of the local endpoint into `status`: it marks every run Succeeded at
    once, so a failed or running execution has to be set on its in-process state."""
    pipeline = arn.split(":pipeline/")[1].split("/", maxsplit=1)[0]
    backend = sagemaker_backends[MOTO_ACCOUNT]["us-east-1"]
    backend.pipelines[pipeline].pipeline_executions[arn].pipeline_execution_status = status


def test_start_run_watch_lineage_metrics_approve_and_continue(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, out, err = start_sample_run(aws, cdk_json, capsys)
    common = ("--cdk-json", str(cdk_json))
    assert (status, err) == (0, "")
    first = json.loads(out)["execution_arn"]
    runner = executor(aws)
    record = runner.run(first)
    assert record.status == "Succeeded", record.failure_reason

    status, out, err = run_cli(capsys, "watch", first, *common, "--interval", "0")
    assert (status, err) == (0, "")
    assert "Succeeded" in out
    assert "Registered checkpoint v1 (PendingManualApproval, final loss" in out
    checkpoint = record.output("CheckpointS3Uri")
    assert checkpoint in out

    status, out, _ = run_cli(
        capsys, "approve", "1", "--env", "dev", *common, "--override-gate", "not evaluated here"
    )
    assert status == 0
    assert out.splitlines()[0].endswith(": Approved")

    status, out, _ = run_cli(
        capsys, "start", "--env", "dev", *common, *TRAIN, "--from", "latest-approved", "--json"
    )
    assert status == 0
    assert json.loads(out)["parameters"]["ModelNameOrPath"] == checkpoint
    second = json.loads(out)["execution_arn"]
    assert runner.run(second).status == "Succeeded"

    status, out, _ = run_cli(capsys, "lineage", "--env", "dev", *common)
    assert status == 0
    lines = out.splitlines()
    assert lines[1] == "nova-lite-2/prod"
    assert lines[2].startswith("└─ v1 Approved LoRA 20 steps loss ")
    assert lines[3].startswith("   └─ v2 PendingManualApproval LoRA 20 steps loss ")

    plot = tmp_path / "loss.png"
    status, out, _ = run_cli(
        capsys, "metrics", "1", "2", "--env", "dev", *common, "--plot", str(plot), "--json"
    )
    assert status == 0
    runs = json.loads(out)["runs"]
    assert [len(r["points"]) for r in runs] == [20, 20]
    # The stand-in trainer continues the loss curve from the parent's final loss.
    assert runs[1]["first_loss"] < runs[0]["first_loss"]
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # What the pipeline itself registered is enough to replay the approved run elsewhere.
    deploy(aws, environment(cdk_json, "sandbox"))
    status, out, err = run_cli(capsys, "promote", "1", "--env", "dev", "--to", "sandbox", *common)
    assert (status, err) == (0, ""), err
    replay = aws.client("sagemaker").list_pipeline_executions(PipelineName="nova-sft-sandbox")
    [summary] = replay["PipelineExecutionSummaries"]
    sent = aws.client("sagemaker").list_pipeline_parameters_for_execution(
        PipelineExecutionArn=summary["PipelineExecutionArn"]
    )["PipelineParameters"]
    values = {p["Name"]: p["Value"] for p in sent}
    assert values["ModelNameOrPath"] == "nova-lite-2/prod"
    assert values["MaxSteps"] == "20"
    assert values["TrainDataS3Uri"] == "s3://data-dev/datasets/train.jsonl"
    # The register step records the instance type and the time limit, so the replay sends the
    # source run's, and the package the replay replays.
    dev = environment(cdk_json, "dev")
    assert values["TrainingInstanceType"] == dev.training_instance_type
    assert values["MaxRuntimeSeconds"] == str(dev.max_runtime_seconds)
    assert values["SourceModelPackageArn"].endswith(":model-package/nova-sft-dev-checkpoints/1")
    unrecorded = ", ".join(sorted(["ValidationDataS3Uri", *EVALUATION_KEYS]))
    assert (
        f"Not recorded by the source package, so the target's defaults apply: {unrecorded}" in out
    )


def test_watch_follows_a_rehearsed_execution_step_by_step_to_its_end(
    aws: boto3.Session,
    local_endpoint: LocalEndpoint,
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    status, out, _ = start_sample_run(aws, cdk_json, capsys)
    common = ("--cdk-json", str(cdk_json))
    arn = json.loads(out)["execution_arn"]

    class SlowTrainer(StandInTrainer):
        """Takes long enough for watch to see the training step executing."""

        def train(self, request: dict[str, Any]) -> dict[str, Any]:
            time.sleep(1.0)
            return super().train(request)

    first_publish = threading.Event()

    def publish(record: Any) -> None:
        local_endpoint.executions.publish(record)
        first_publish.set()

    runner = executor(aws, trainer=SlowTrainer(session=aws, region="us-east-1"), publish=publish)
    outcome: list[Any] = []
    worker = threading.Thread(target=lambda: outcome.append(runner.run(arn)))
    worker.start()
    assert first_publish.wait(10)
    try:
        status, out, err = run_cli(capsys, "watch", arn, *common, "--interval", "0.05")
    finally:
        worker.join(30)
    assert (status, err) == (0, "")
    record = outcome[0]
    job = record.step(TRAIN_FROM_BASE_MODEL).arguments["TrainingJobName"]
    assert re.fullmatch(
        rf"pipelines-{arn.rsplit('/', 1)[-1]}-{TRAIN_FROM_BASE_MODEL}-\w{{10}}", job
    )
    looks = out.split("\n[")
    # It saw the run executing with the training job under way, then its end.
    assert any(
        look.split("\n")[0].endswith("] Executing")
        and f"{TRAIN_FROM_BASE_MODEL} Executing" in " ".join(look.split())
        for look in looks
    ), out
    last = looks[-1]
    assert last.split("\n")[0].endswith("] Succeeded")
    for name in record.started():
        assert f"{name} Succeeded" in " ".join(last.split()), name
    assert f"job {job}: Completed" in last
    assert "Registered checkpoint v1 (PendingManualApproval, final loss" in out


def test_watch_reports_a_failed_run_and_exits_1(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    sm = aws.client("sagemaker")
    arn = sm.start_pipeline_execution(
        PipelineName="nova-sft-dev",
        PipelineParameters=[{"Name": "TrainDataS3Uri", "Value": "s3://data-dev/x.jsonl"}],
    )["PipelineExecutionArn"]
    set_execution_status(arn, "Failed")
    status, out, err = run_cli(capsys, "watch", arn, "--cdk-json", str(cdk_json))
    assert status == 1
    assert "Failed" in out
    # The local endpoint reports no failure reason (AWS does); the command says where to look.
    assert "execution Failed: no failure reason recorded" in err
    assert "Traceback" not in err


def test_watch_gives_up_after_the_timeout_while_the_run_is_executing(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    sm = aws.client("sagemaker")
    arn = sm.start_pipeline_execution(PipelineName=env.pipeline_name)["PipelineExecutionArn"]
    set_execution_status(arn, "Executing")
    status, out, err = run_cli(
        capsys,
        "watch",
        arn,
        "--cdk-json",
        str(cdk_json),
        "--interval",
        "0.01",
        "--timeout",
        "0.05",
        "--json",
    )
    assert status == 1
    assert json.loads(out)["status"] == "Executing"
    assert f"{arn} is still Executing after 0.05 s" in err


def test_watch_json_names_the_checkpoint_of_a_succeeded_run(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    arn = aws.client("sagemaker").start_pipeline_execution(PipelineName=env.pipeline_name)[
        "PipelineExecutionArn"
    ]
    register(aws, env, "other-job")  # registered by another execution: not this one's
    mine = register(aws, env, "my-job", execution_arn=arn)
    status, out, _ = run_cli(capsys, "watch", arn, "--cdk-json", str(cdk_json), "--json")
    document = json.loads(out)
    assert status == 0
    assert document["status"] == "Succeeded"
    assert document["checkpoint"]["model_package_arn"] == mine.model_package_arn
    assert document["steps"] == []  # started, but no executor ran it: no step has started


@pytest.mark.parametrize(
    ("arn", "message"),
    [
        ("not-an-arn", "is not a pipeline execution ARN"),
        (
            f"arn:aws:sagemaker:us-east-1:{MOTO_ACCOUNT}:pipeline/other/execution/abc123",
            "pipeline other belongs to no environment",
        ),
    ],
)
def test_watch_refuses_an_execution_of_no_environment(
    cdk_json: Path, capsys: pytest.CaptureFixture[str], arn: str, message: str
) -> None:
    status, _, err = run_cli(capsys, "watch", arn, "--cdk-json", str(cdk_json))
    assert status == 2
    assert message in err

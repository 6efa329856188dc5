"""`start`: checks a run locally against the deployed pipeline, estimates it, then starts it."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from lambdas.recipe.spec import BASE_MODEL
from tests.pipeline.commands.helpers import deploy, environment, register, run_cli

TRAIN = "s3://data-dev/datasets/train.jsonl"


def start(capsys: pytest.CaptureFixture[str], cdk_json: Path, *extra: str) -> tuple[int, str, str]:
    return run_cli(capsys, "start", "--env", "dev", "--cdk-json", str(cdk_json), *extra)


def executions(session: boto3.Session) -> list[dict[str, str]]:
    sm = session.client("sagemaker")
    found = sm.list_pipeline_executions(PipelineName="nova-sft-dev")["PipelineExecutionSummaries"]
    return list(found)


def test_starts_with_exactly_the_given_parameters_and_prints_the_plan(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    status, out, err = start(
        capsys, cdk_json, "--train", TRAIN, "--set", "MaxSteps=200", "--technique", "LoRA"
    )
    assert (status, err) == (0, "")
    [execution] = executions(aws)
    arn = execution["PipelineExecutionArn"]
    sent = aws.client("sagemaker").list_pipeline_parameters_for_execution(PipelineExecutionArn=arn)[
        "PipelineParameters"
    ]
    assert {p["Name"]: p["Value"] for p in sent} == {
        "MaxSteps": "200",
        "Technique": "LoRA",
        "TrainDataS3Uri": TRAIN,
    }
    assert f"Started: {arn}" in out
    execution_id = arn.rsplit("/", 1)[-1]
    assert f"#/pipelines/nova-sft-dev/executions/{execution_id}" in out
    assert f"Starts from: {BASE_MODEL}" in out
    assert "* MaxSteps = 200" in out
    assert "  LearningRate = 1e-05" in out  # the deployed default, not overridden
    assert "  ReasoningEnabled = false" in out
    assert "  ValidationDataS3Uri = none" in out
    # dev: 4 instances for up to 86400 s = 96 instance-hours at the default table's price.
    assert "at most 96.0 instance-hours" in out
    assert "$10,854.72" in out


def test_json_output_has_the_plan_the_token_and_the_execution(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    status, out, _ = start(capsys, cdk_json, "--train", TRAIN, "--json")
    document = json.loads(out)
    assert status == 0
    assert document["started"] is True
    assert document["execution_arn"] == executions(aws)[0]["PipelineExecutionArn"]
    assert document["parameters"]["TrainingInstanceCount"] == 4
    assert document["prior_checkpoint"] is None
    assert len(document["client_token"]) == 64
    assert document["estimate"]["max_instance_hours"] == 96.0


def test_a_retried_command_sends_the_same_client_token(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # The local endpoint does not honour the token (a real endpoint does): the test checks
    # that the command sends the same one for the same run and another for another run.
    deploy(aws, environment(cdk_json, "dev"))
    tokens = []
    for max_steps in ("100", "100", "200"):
        status, out, _ = start(
            capsys, cdk_json, "--train", TRAIN, "--set", f"MaxSteps={max_steps}", "--json"
        )
        assert status == 0
        tokens.append(json.loads(out)["client_token"])
    assert tokens[0] == tokens[1]
    assert tokens[2] != tokens[0]


def test_dry_run_starts_nothing(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    status, out, _ = start(capsys, cdk_json, "--train", TRAIN, "--dry-run")
    assert status == 0
    assert "Dry run: nothing was started." in out
    assert executions(aws) == []


def test_latest_approved_starts_from_the_newest_approved_checkpoint(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    approved = register(aws, env, "job-one", approval="Approved")
    register(aws, env, "job-two", parent=approved.checkpoint_uri)  # newer, but pending
    status, out, _ = start(
        capsys, cdk_json, "--train", TRAIN, "--from", "latest-approved", "--json"
    )
    document = json.loads(out)
    assert status == 0
    assert document["parameters"]["ModelNameOrPath"] == approved.checkpoint_uri
    assert document["prior_checkpoint"]["model_package_arn"] == approved.model_package_arn


def test_latest_skips_a_rejected_checkpoint(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    pending = register(aws, env, "job-one")
    register(aws, env, "job-two", approval="Rejected")
    status, out, _ = start(capsys, cdk_json, "--train", TRAIN, "--from", "latest", "--dry-run")
    assert status == 0
    assert f"Starts from: {pending.checkpoint_uri} (v1, PendingManualApproval" in out


def test_latest_approved_without_an_approved_checkpoint_fails_and_says_how_to_get_one(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    register(aws, env, "job-one")
    status, out, err = start(capsys, cdk_json, "--train", TRAIN, "--from", "latest-approved")
    assert (status, out) == (1, "")
    assert "no approved checkpoint in nova-sft-dev-checkpoints yet" in err
    assert "python -m pipeline approve" in err
    assert "Traceback" not in err
    assert executions(aws) == []


def test_a_bad_parameter_fails_before_anything_starts(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    status, _, err = start(
        capsys, cdk_json, "--train", TRAIN, "--set", "MaxSteps=2", "--set", "LoraAlpha=7"
    )
    assert status == 2
    assert "2 parameter problem(s), nothing was started" in err
    assert "MaxSteps='2': must be an integer from 4 to 100000" in err
    assert "LoraAlpha='7': must be one of 32, 64, 96, 128, 160, 192" in err
    assert err.count("\n") == 1
    assert executions(aws) == []


MISTAKES = (
    (("--set", "MaxStep=5"), "unknown parameter(s) MaxStep"),
    (("--set", "TrainingInstanceCount=four"), "TrainingInstanceCount='four': must be"),
    (("--set", "MaxSteps"), "write NAME=VALUE"),
    (("--from", "yesterday"), "--from 'yesterday': use one of base, latest"),
    (("--set", "TrainDataS3Uri=s3://other/x.jsonl"), "--train and --set TrainDataS3Uri"),
    (("--client-token", "short"), "--client-token must be 32 to 128 characters"),
    (("--set", "ReasoningEnabled=True"), "ReasoningEnabled='True': must be a Boolean"),
)


def test_command_line_mistakes_exit_2_and_start_nothing(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    for extra, message in MISTAKES:
        status, _, err = start(capsys, cdk_json, "--train", TRAIN, *extra)
        assert (status, message in err) == (2, True), (extra, err)
    assert executions(aws) == []


def test_missing_training_data_is_a_usage_error(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    status, _, err = start(capsys, cdk_json)
    assert status == 2
    assert "TrainDataS3Uri is missing: pass --train" in err


def test_an_environment_that_is_not_deployed_fails_with_the_fix(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = start(capsys, cdk_json, "--train", TRAIN)
    assert status == 1
    assert "pipeline nova-sft-dev does not exist" in err
    assert "deploy the environment's stacks first" in err


def test_an_unknown_environment_is_a_usage_error(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_cli(
        capsys, "start", "--env", "qa", "--cdk-json", str(cdk_json), "--train", TRAIN
    )
    assert status == 2
    assert "no environment 'qa'" in err
    assert "known environments: dev, prod, sandbox, staging" in err


def test_credentials_of_another_account_are_refused(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, _, err = run_cli(
        capsys, "start", "--env", "staging", "--cdk-json", str(cdk_json), "--train", TRAIN
    )
    assert status == 1
    assert "your credentials are for account 123456789012" in err
    assert "staging is account 222222222222" in err


def test_a_price_table_file_replaces_the_default(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"us-east-1": {"ml.p5.48xlarge": 10}}), encoding="utf-8")
    _, out, _ = start(capsys, cdk_json, "--train", TRAIN, "--prices", str(prices), "--dry-run")
    assert "at most $960.00 at $10.00/h" in out

    prices.write_text(json.dumps({"us-east-1": {"ml.p5.48xlarge": "cheap"}}), encoding="utf-8")
    status, _, err = start(capsys, cdk_json, "--train", TRAIN, "--prices", str(prices))
    assert status == 2
    assert "us-east-1/ml.p5.48xlarge must be a non-negative number" in err


@pytest.mark.parametrize("choice", ["latest", "latest-approved"])
def test_latest_reads_the_registry_only_down_to_the_checkpoint_it_uses(
    aws: boto3.Session,
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
    aws_calls: list[str],
    choice: str,
) -> None:
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    for job in ("job-one", "job-two", "job-three"):
        newest = register(aws, env, job, approval="Approved")
    aws_calls.clear()
    status, out, _ = start(capsys, cdk_json, "--train", TRAIN, "--from", choice, "--json")
    assert status == 0
    assert json.loads(out)["parameters"]["ModelNameOrPath"] == newest.checkpoint_uri
    # Newest first, so the first version described is the one used; the older two are not.
    assert aws_calls.count("sagemaker.DescribeModelPackage") == 1


# -- the technique of a run from a checkpoint -----------------------------------------------------


def test_a_technique_other_than_the_checkpoints_is_refused_before_anything_starts(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = environment(cdk_json, "dev")
    deploy(aws, dev)
    lora = register(aws, dev, "job-one", approval="Approved")
    for source in (
        ("--from", "latest-approved"),
        ("--set", f"ModelNameOrPath={lora.checkpoint_uri}"),
    ):
        status, out, err = start(
            capsys, cdk_json, "--train", TRAIN, "--technique", "FullRank", *source
        )
        assert (status, out) == (2, "")
        assert f"Technique FullRank cannot continue from checkpoint {lora.checkpoint_uri}" in err
        assert f"trained with LoRA ({lora.model_package_arn})" in err
        assert "nothing was started" in err
    assert executions(aws) == []


def test_a_full_rank_checkpoint_continues_only_as_full_rank(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    dev = environment(cdk_json, "dev")
    deploy(aws, dev)
    full = register(aws, dev, "job-full", technique="FullRank")
    source = f"ModelNameOrPath={full.checkpoint_uri}"
    # The pipeline's default technique is LoRA: not what this checkpoint was trained with.
    status, _, err = start(capsys, cdk_json, "--train", TRAIN, "--set", source, "--dry-run")
    assert status == 2
    assert "Technique LoRA cannot continue" in err
    status, out, err = start(
        capsys, cdk_json, "--train", TRAIN, "--set", source, "--technique", "FullRank", "--json"
    )
    assert (status, err) == (0, "")
    check = json.loads(out)["technique_check"]
    assert check["outcome"] == "same-technique"
    assert check["recorded_by"] == full.model_package_arn
    assert len(executions(aws)) == 1


def test_a_checkpoint_the_registry_does_not_know_starts_and_the_plan_says_so(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    deploy(aws, environment(cdk_json, "dev"))
    unknown = "s3://customer-escrow-123456789012-smtj-ffff/old-job/step_10"
    status, out, err = start(
        capsys, cdk_json, "--train", TRAIN, "--from", unknown, "--technique", "FullRank"
    )
    assert (status, err) == (0, "")
    assert (
        "Technique check: unregistered: no version of model package group "
        f"nova-sft-dev-checkpoints records {unknown}"
    ) in out
    assert len(executions(aws)) == 1


def test_start_refuses_to_claim_a_replay(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = "arn:aws:sagemaker:us-east-1:111111111111:model-package/nova-sft-dev-checkpoints/1"
    status, _, err = start(
        capsys, cdk_json, "--train", TRAIN, "--set", f"SourceModelPackageArn={arn}"
    )
    assert status == 2
    assert "only promote sets it" in err

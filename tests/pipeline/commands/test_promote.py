"""`promote` (and its plan, `pipeline.commands.replay`) replays an approved run of one environment
(account) in the next one's pipeline."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from lambdas.recipe.evaluation_spec import EVALUATION_KEYS
from lambdas.recipe.spec import BASE_MODEL
from pipeline.commands.aws import make_session
from pipeline.commands.replay import PROVENANCE_PREFIX, provenance
from tests.pipeline.commands.helpers import (
    OTHER_ACCOUNT,
    assume_account,
    deploy,
    environment,
    register,
    run_cli,
)

TRAIN = "s3://data-dev/datasets/train.jsonl"
SOURCE_ARN = "arn:aws:sagemaker:us-east-1:123456789012:model-package/nova-sft-dev-checkpoints/1"


@pytest.fixture
def accounts(
    aws: boto3.Session, cdk_json: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> tuple[Path, boto3.Session]:
    """dev deployed in the default account, staging in another; returns (cdk.json, staging)."""
    monkeypatch.setenv(
        "AWS_SHARED_CREDENTIALS_FILE", str(assume_account(aws, OTHER_ACCOUNT, tmp_path))
    )
    # The command's own session maker: it shares the loaded service models between sessions.
    staging: boto3.Session = make_session("other", "us-east-1")
    deploy(aws, environment(cdk_json, "dev"))
    deploy(staging, environment(cdk_json, "staging"))
    return cdk_json, staging


def promote(capsys: pytest.CaptureFixture[str], cdk_json: Path, *argv: str) -> tuple[int, str, str]:
    return run_cli(
        capsys,
        "promote",
        *argv,
        "--to",
        "staging",
        "--source-profile",
        "dev",
        "--profile",
        "other",
        "--cdk-json",
        str(cdk_json),
    )


def staging_executions(staging: boto3.Session) -> list[dict[str, Any]]:
    sm = staging.client("sagemaker")
    summaries = sm.list_pipeline_executions(PipelineName="nova-sft-staging")
    return list(summaries["PipelineExecutionSummaries"])


def sent_parameters(staging: boto3.Session, arn: str) -> dict[str, str]:
    sent = staging.client("sagemaker").list_pipeline_parameters_for_execution(
        PipelineExecutionArn=arn
    )["PipelineParameters"]
    return {p["Name"]: p["Value"] for p in sent}


def test_an_approved_package_becomes_an_execution_in_the_next_account(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    dev = environment(cdk_json, "dev")
    source = register(aws, dev, "job-one", approval="Approved", train_uri=TRAIN)
    status, out, err = promote(capsys, cdk_json, source.model_package_arn, "--json")
    assert (status, err) == (0, "")
    document = json.loads(out)
    [execution] = staging_executions(staging)
    arn = execution["PipelineExecutionArn"]
    assert document["execution_arn"] == arn
    assert f":{OTHER_ACCOUNT}:pipeline/nova-sft-staging/execution/" in arn
    # The same parameters as the approved run, which started from the base model, and the
    # package it replays (the register step records it on staging's checkpoint).
    assert sent_parameters(staging, arn) == {
        **source.replay_parameters(),
        "SourceModelPackageArn": source.model_package_arn,
    }
    assert sent_parameters(staging, arn)["ModelNameOrPath"] == BASE_MODEL
    assert sent_parameters(staging, arn)["TrainDataS3Uri"] == TRAIN
    # Provenance: the source package ARN, read back from the execution.
    described = staging.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn)
    description = described["PipelineExecutionDescription"]
    assert description.startswith(f"{PROVENANCE_PREFIX}{source.model_package_arn};")
    assert provenance(description) == source.model_package_arn
    assert source.metadata["RecipeSha256"] in description
    assert document["source_model_package_arn"] == source.model_package_arn
    # What the registry does not record is named, so nobody assumes it was replayed.
    # The evaluation's parameters are not recorded yet (the register step records the
    # evaluation: issue 14): the target's defaults apply, and they are named too.
    assert document["unrecorded_parameters"] == sorted(
        ["MaxRuntimeSeconds", "ValidationDataS3Uri", *EVALUATION_KEYS]
    )


def test_a_promotion_is_not_started_twice_unless_asked(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    source = register(aws, environment(cdk_json, "dev"), "job-one", approval="Approved")
    first = json.loads(promote(capsys, cdk_json, source.model_package_arn, "--json")[1])

    status, _, err = promote(capsys, cdk_json, source.model_package_arn)
    assert status == 1
    assert f"already replayed in staging as {first['execution_arn']}" in err
    assert "pass --again" in err
    assert len(staging_executions(staging)) == 1

    status, out, _ = promote(capsys, cdk_json, source.model_package_arn, "--again", "--json")
    second = json.loads(out)
    assert status == 0
    assert second["client_token"] != first["client_token"]
    assert second["earlier_replays"] == [first["execution_arn"]]
    assert len(staging_executions(staging)) == 2


def test_a_package_that_is_not_approved_is_not_promoted(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    source = register(aws, environment(cdk_json, "dev"), "job-one")
    status, _, err = promote(capsys, cdk_json, source.model_package_arn)
    assert status == 1
    assert "is PendingManualApproval, not Approved" in err
    assert staging_executions(staging) == []


def test_a_chain_is_promoted_oldest_first_and_continues_from_the_replayed_parent(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    dev = environment(cdk_json, "dev")
    one = register(aws, dev, "job-one", approval="Approved")
    two = register(aws, dev, "job-two", parent=one.checkpoint_uri, approval="Approved")

    status, _, err = promote(capsys, cdk_json, two.model_package_arn)
    assert status == 1
    assert f"continues from {one.model_package_arn}, which has no replay in staging yet" in err
    assert f"python -m pipeline promote {one.model_package_arn} --to staging" in err

    replay = json.loads(promote(capsys, cdk_json, one.model_package_arn, "--json")[1])
    # The replay's run finishes in staging and registers staging's own checkpoint.
    staged = register(
        staging,
        environment(cdk_json, "staging"),
        "job-one-replay",
        execution_arn=replay["execution_arn"],
    )
    status, out, _ = promote(capsys, cdk_json, two.model_package_arn, "--json")
    document = json.loads(out)
    assert status == 0
    assert sent_parameters(staging, document["execution_arn"])["ModelNameOrPath"] == (
        staged.checkpoint_uri
    )
    assert document["prior_checkpoint"]["model_package_arn"] == staged.model_package_arn


def test_dry_run_prints_the_replay_and_starts_nothing(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    source = register(aws, environment(cdk_json, "dev"), "job-one", approval="Approved")
    status, out, _ = promote(
        capsys,
        cdk_json,
        source.model_package_arn,
        "--dry-run",
        "--train",
        "s3://data-staging/t.jsonl",
    )
    assert status == 0
    assert f"Replaying {source.model_package_arn} (dev -> staging)" in out
    assert "* TrainDataS3Uri = s3://data-staging/t.jsonl" in out
    assert "Dry run: nothing was started." in out
    assert staging_executions(staging) == []


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("--to", "dev"), "--to dev is the package's own environment"),
        (("--to", "qa"), "--to: no environment 'qa'"),
    ],
)
def test_bad_targets_are_usage_errors(
    aws: boto3.Session,
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
    argv: tuple[str, ...],
    message: str,
) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/nova-sft-dev-checkpoints/1"
    status, _, err = run_cli(capsys, "promote", arn, *argv, "--cdk-json", str(cdk_json))
    assert status == 2
    assert message in err


def test_target_credentials_of_the_wrong_account_are_refused(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    arn = "arn:aws:sagemaker:us-east-1:123456789012:model-package/nova-sft-dev-checkpoints/1"
    status, _, err = run_cli(capsys, "promote", arn, "--to", "staging", "--cdk-json", str(cdk_json))
    assert status == 1
    assert "staging is account 222222222222: pass --profile" in err


@pytest.mark.parametrize("source", [(), ("--from", "base")])
def test_set_model_name_or_path_is_refused_with_the_way_to_choose_the_checkpoint(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
    source: tuple[str, ...],
) -> None:
    cdk_json, staging = accounts
    record = register(aws, environment(cdk_json, "dev"), "job-one", approval="Approved")
    status, out, err = promote(
        capsys,
        cdk_json,
        record.model_package_arn,
        "--set",
        f"ModelNameOrPath={record.checkpoint_uri}",
        *source,
    )
    assert (status, out) == (2, "")
    assert err == (
        "python -m pipeline: usage error: --set ModelNameOrPath=... is not accepted by promote: "
        "the checkpoint comes from --from (default: the target's replay of the source's "
        "parent); use --from instead\n"
    )
    assert staging_executions(staging) == []


def test_a_replayed_parent_is_found_without_describing_each_execution(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
    aws_calls: list[str],
) -> None:
    cdk_json, staging = accounts
    dev, target = environment(cdk_json, "dev"), environment(cdk_json, "staging")
    one = register(aws, dev, "job-one", approval="Approved")
    two = register(aws, dev, "job-two", parent=one.checkpoint_uri, approval="Approved")
    replay = json.loads(promote(capsys, cdk_json, one.model_package_arn, "--json")[1])
    register(staging, target, "replay-a", execution_arn=replay["execution_arn"])
    approved = register(
        staging, target, "replay-b", execution_arn=replay["execution_arn"], approval="Approved"
    )
    register(staging, target, "replay-c", execution_arn=replay["execution_arn"])  # newest
    register(staging, target, "unrelated")
    aws_calls.clear()
    status, out, err = promote(capsys, cdk_json, two.model_package_arn, "--dry-run", "--json")
    assert (status, err) == (0, ""), err
    document = json.loads(out)
    # An approved replay is preferred to newer and older pending ones.
    assert document["prior_checkpoint"]["model_package_arn"] == approved.model_package_arn
    assert document["parameters"]["ModelNameOrPath"] == approved.checkpoint_uri
    # The replays are listed once (here and for the duplicate check), not looked up per
    # checkpoint.
    assert "sagemaker.DescribePipelineExecution" not in aws_calls
    assert aws_calls.count("sagemaker.ListPipelineExecutions") == 2


# -- what a replay reproduces: time limit, validation data, technique ------------------------------


def test_the_recorded_time_limit_is_replayed(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    dev = environment(cdk_json, "dev")
    source = register(aws, dev, "job-one", approval="Approved", max_runtime=7200)
    status, out, err = promote(capsys, cdk_json, source.model_package_arn, "--json")
    assert (status, err) == (0, "")
    document = json.loads(out)
    assert sent_parameters(staging, document["execution_arn"])["MaxRuntimeSeconds"] == "7200"
    assert document["unrecorded_parameters"] == sorted(["ValidationDataS3Uri", *EVALUATION_KEYS])
    # The estimate is the replay's own time limit (four instances for 2 h), not the target's.
    assert document["estimate"]["max_instance_hours"] == 8.0


def test_recorded_validation_data_of_the_source_account_is_refused_with_the_fix(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    validation = "s3://data-dev/datasets/validation.jsonl"
    source = register(
        aws, environment(cdk_json, "dev"), "job-one", approval="Approved", validation_uri=validation
    )
    status, out, err = promote(capsys, cdk_json, source.model_package_arn)
    assert (status, out) == (2, "")
    assert f"trained with validation data {validation}" in err
    assert "training role of staging cannot read" in err
    assert "--validation s3://<its copy>" in err
    assert "--validation none" in err
    assert staging_executions(staging) == []


def test_validation_data_is_remapped_like_the_training_data(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    source = register(
        aws,
        environment(cdk_json, "dev"),
        "job-one",
        approval="Approved",
        validation_uri="s3://data-dev/datasets/validation.jsonl",
    )
    copy = "s3://data-staging/datasets/validation.jsonl"
    status, out, err = promote(
        capsys, cdk_json, source.model_package_arn, "--validation", copy, "--json"
    )
    assert (status, err) == (0, "")
    sent = sent_parameters(staging, json.loads(out)["execution_arn"])
    assert sent["ValidationDataS3Uri"] == copy


def test_validation_none_replays_without_validation_data(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    source = register(
        aws,
        environment(cdk_json, "dev"),
        "job-one",
        approval="Approved",
        validation_uri="s3://data-dev/datasets/validation.jsonl",
    )
    status, out, err = promote(
        capsys, cdk_json, source.model_package_arn, "--validation", "none", "--json"
    )
    assert (status, err) == (0, "")
    document = json.loads(out)
    # Nothing is sent: the pipeline's default means no validation data.
    assert "ValidationDataS3Uri" not in sent_parameters(staging, document["execution_arn"])
    assert "ValidationDataS3Uri" not in document["unrecorded_parameters"]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            ("--validation", "none", "--set", "ValidationDataS3Uri=s3://b/k"),
            "--validation and --set ValidationDataS3Uri=... both given",
        ),
        (
            ("--set", f"SourceModelPackageArn={SOURCE_ARN}"),
            "it is the package being promoted",
        ),
    ],
    ids=["validation-twice", "another-source"],
)
def test_conflicting_options_are_usage_errors(
    aws: boto3.Session,
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
    options: tuple[str, ...],
    message: str,
) -> None:
    status, _, err = run_cli(
        capsys, "promote", SOURCE_ARN, "--to", "staging", *options, "--cdk-json", str(cdk_json)
    )
    assert status == 2
    assert message in err


def test_a_replay_from_a_checkpoint_of_another_technique_is_refused(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    source = register(aws, environment(cdk_json, "dev"), "job-one", approval="Approved")
    full = register(staging, environment(cdk_json, "staging"), "staging-full", technique="FullRank")
    status, out, err = promote(
        capsys, cdk_json, source.model_package_arn, "--from", full.checkpoint_uri
    )
    assert (status, out) == (2, "")
    assert f"Technique LoRA cannot continue from checkpoint {full.checkpoint_uri}" in err
    assert f"trained with FullRank ({full.model_package_arn})" in err
    assert staging_executions(staging) == []


def test_the_replays_checkpoint_records_the_package_it_replays(
    aws: boto3.Session,
    accounts: tuple[Path, boto3.Session],
    capsys: pytest.CaptureFixture[str],
) -> None:
    cdk_json, staging = accounts
    source = register(aws, environment(cdk_json, "dev"), "job-one", approval="Approved")
    replay = json.loads(promote(capsys, cdk_json, source.model_package_arn, "--json")[1])
    sent = sent_parameters(staging, replay["execution_arn"])
    # The replay's register step receives the parameter and records it on the package.
    staged = register(
        staging,
        environment(cdk_json, "staging"),
        "job-one-replay",
        execution_arn=replay["execution_arn"],
        source_arn=sent["SourceModelPackageArn"],
    )
    assert staged.source_model_package_arn == source.model_package_arn
    assert staged.metadata["SourceModelPackageArn"] == source.model_package_arn

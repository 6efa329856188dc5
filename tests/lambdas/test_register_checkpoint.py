"""The register step (lambdas/register_checkpoint.py, lambdas/registry/) against moto over HTTP.

Each run is staged the way the pipeline leaves it: the prepare step writes the recipe, the
training job leaves model.tar.gz and output.tar.gz under its output folder.
"""

from __future__ import annotations

import hashlib
from typing import Any

import pytest

from lambdas import register_checkpoint as module
from lambdas.checkpoint import OutputArchiveError
from lambdas.prepare_recipe import prepare_recipe
from lambdas.recipe.spec import BASE_MODEL, FULL_RANK, LORA
from lambdas.register_checkpoint import handler
from lambdas.registry import (
    KEY_CHECKPOINT,
    KEY_FINAL_LOSS,
    KEY_METRICS_UNAVAILABLE,
    KEY_PARENT,
    KEY_RECIPE_SHA256,
    RegistrationError,
    RegistrationRequest,
    describe_checkpoint,
    metadata_problem,
    register_checkpoint,
)
from tests.lambdas.checkpoint.archives import METRICS_CSV, Member, job_archive, manifest, tar_gz

ARTIFACTS = "artifacts-bucket"
GROUP = "nova-sft-test-checkpoints"
EXECUTION = "arn:aws:sagemaker:us-east-1:123456789012:pipeline/nova-sft-test/execution/abc123"
OUTPUT_KEYS = {
    "CheckpointS3Uri",
    "ModelPackageArn",
    "ParentModel",
    "FinalTrainingLoss",
    "TrainingSteps",
}


def escrow(job: str) -> str:
    return f"s3://customer-escrow-123456789012-smtj-a1b2c3d4/{job}/step_100"


def stage_run(
    s3: Any,
    job: str,
    *,
    parent: str = BASE_MODEL,
    technique: str = LORA,
    archive: bytes | None = None,
    **recipe_overrides: str,
) -> dict[str, str]:
    """Write the run's recipe and job outputs; returns the register step's event."""
    recipe = prepare_recipe(
        s3,
        {
            "Technique": technique,
            "ModelNameOrPath": parent,
            "TrainingInstanceType": "ml.p5.48xlarge",
            "TrainingInstanceCount": "4",
            "RunName": job,
            "LearningRate": "2e-5",
            "RecipeS3Prefix": f"s3://{ARTIFACTS}/runs/{job}/recipe/",
            "ModelPackageGroupName": GROUP,
            **recipe_overrides,
        },
    )
    folder = f"runs/{job}/training/{job}/output"
    s3.put_object(Bucket=ARTIFACTS, Key=f"{folder}/model.tar.gz", Body=tar_gz())
    if archive is None:
        archive = tar_gz(
            Member("./training.log", b"log\n" * 100),
            Member("./step_wise_training_metrics.csv", METRICS_CSV),
            Member("./manifest.json", manifest(escrow(job))),
        )
    s3.put_object(Bucket=ARTIFACTS, Key=f"{folder}/output.tar.gz", Body=archive)
    return {
        "TrainingJobName": job,
        "ModelArtifactsS3Uri": f"s3://{ARTIFACTS}/{folder}/model.tar.gz",
        "ModelPackageGroupName": GROUP,
        "ModelNameOrPath": parent,
        "Technique": technique,
        "RecipeS3Uri": recipe["RecipeS3Uri"],
        "PipelineExecutionArn": EXECUTION,
        "TrainDataS3Uri": "s3://data-bucket/train/part-0.jsonl",
        "TrainingInstanceType": "ml.p5.48xlarge",
    }


def register(sm: Any, s3: Any, event: dict[str, str]) -> dict[str, str]:
    return module.outputs(register_checkpoint(sm, s3, RegistrationRequest.from_event(event)))


def versions(sm: Any) -> list[dict[str, Any]]:
    return list(sm.list_model_packages(ModelPackageGroupName=GROUP)["ModelPackageSummaryList"])


# -- registered ----------------------------------------------------------------------------------


def test_registers_the_checkpoint_with_everything_a_replay_needs(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = stage_run(s3, "job-1")
    result = register(sm, s3, event)
    assert set(result) == OUTPUT_KEYS
    assert result["CheckpointS3Uri"] == escrow("job-1")
    assert result["ParentModel"] == BASE_MODEL
    assert result["FinalTrainingLoss"] == "2.0"
    assert result["TrainingSteps"] == "4"
    package = sm.describe_model_package(ModelPackageName=result["ModelPackageArn"])
    assert package["ModelPackageGroupName"] == GROUP
    assert package["ModelApprovalStatus"] == "PendingManualApproval"
    assert "training job job-1" in package["ModelPackageDescription"]
    recipe_key = event["RecipeS3Uri"].removeprefix(f"s3://{ARTIFACTS}/")
    recipe = s3.get_object(Bucket=ARTIFACTS, Key=recipe_key)["Body"].read()
    assert package["CustomerMetadataProperties"] == {
        "RecordVersion": "1",
        "CheckpointS3Uri": escrow("job-1"),
        "ParentModel": BASE_MODEL,
        "TrainingJobName": "job-1",
        "Technique": LORA,
        "RecipeS3Uri": event["RecipeS3Uri"],
        "RecipeSha256": hashlib.sha256(recipe).hexdigest(),
        "PipelineExecutionArn": EXECUTION,
        "RunName": "job-1",
        "TrainingInstanceType": "ml.p5.48xlarge",
        "TrainingInstanceCount": "4",
        "TrainDataS3Uri": "s3://data-bucket/train/part-0.jsonl",
        "MaxSteps": "100",
        "GlobalBatchSize": "32",
        "MaxLength": "32768",
        "LearningRate": "2.0e-05",
        "WarmupSteps": "15",
        "LoraAlpha": "64",
        "LoraPlusLrRatio": "64.0",
        "ReasoningEnabled": "false",
        "ValCheckInterval": "25",  # derived from MaxSteps; recorded so a replay is the same run
        "TrainingSteps": "4",
        "FirstTrainingLoss": "2.4",
        "FinalTrainingLoss": "2.0",
        "MinTrainingLoss": "1.95",
    }


def test_a_full_rank_run_records_no_lora_knobs(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    result = register(sm, s3, stage_run(s3, "job-fr", technique=FULL_RANK))
    metadata = sm.describe_model_package(ModelPackageName=result["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert metadata["Technique"] == FULL_RANK
    assert "LoraAlpha" not in metadata
    assert "LoraPlusLrRatio" not in metadata


def test_the_approval_status_comes_from_the_event(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), "ModelApprovalStatus": "Rejected"}
    result = register(sm, s3, event)
    package = sm.describe_model_package(ModelPackageName=result["ModelPackageArn"])
    assert package["ModelApprovalStatus"] == "Rejected"


def test_a_run_cannot_register_an_approved_checkpoint(clients: tuple[Any, Any]) -> None:
    # Approval is an act of its own; whoever may start a run must not approve by doing so.
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), "ModelApprovalStatus": "Approved"}
    message = refused(sm, s3, event, ValueError)
    assert "ModelApprovalStatus='Approved': a run registers its checkpoint" in message
    assert "python -m pipeline approve <package>" in message


def test_none_means_no_validation_data_and_is_not_recorded(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), "ValidationDataS3Uri": "none"}
    result = register(sm, s3, event)
    package = sm.describe_model_package(ModelPackageName=result["ModelPackageArn"])
    assert "ValidationDataS3Uri" not in package["CustomerMetadataProperties"]


def test_validation_data_is_recorded_for_a_replay(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    uri = "s3://data-bucket/datasets/validation.jsonl"
    event = {**stage_run(s3, "job-1", ValidationDataS3Uri=uri), "ValidationDataS3Uri": uri}
    result = register(sm, s3, event)
    metadata = sm.describe_model_package(ModelPackageName=result["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert metadata["ValidationDataS3Uri"] == uri
    assert metadata["ValCheckInterval"] == "25"


def test_a_second_call_returns_the_same_package_and_creates_nothing(
    clients: tuple[Any, Any],
) -> None:
    sm, s3 = clients
    event = stage_run(s3, "job-1")
    first = register(sm, s3, event)
    register(sm, s3, stage_run(s3, "job-2"))
    # The second call must not even read the archive again.
    model_key = event["ModelArtifactsS3Uri"].removeprefix(f"s3://{ARTIFACTS}/")
    s3.delete_object(Bucket=ARTIFACTS, Key=model_key.replace("model.tar.gz", "output.tar.gz"))
    again = register(sm, s3, event)
    assert again == first
    assert len(versions(sm)) == 2


def test_unavailable_metrics_do_not_block_registration(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    archive = tar_gz(
        Member("./step_wise_training_metrics.csv", b"step_number,training_loss\n1,oops\n"),
        Member("./manifest.json", manifest(escrow("job-1"))),
    )
    result = register(sm, s3, stage_run(s3, "job-1", archive=archive))
    assert result["FinalTrainingLoss"] == ""
    assert result["TrainingSteps"] == ""
    metadata = sm.describe_model_package(ModelPackageName=result["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert KEY_FINAL_LOSS not in metadata
    assert metadata[KEY_METRICS_UNAVAILABLE] == (
        "metrics row 2 is not a step number and a finite loss"
    )
    assert metadata_problem(KEY_METRICS_UNAVAILABLE, metadata[KEY_METRICS_UNAVAILABLE]) is None


def test_the_handler_builds_its_clients_from_the_environment(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    module._clients.cache_clear()
    try:
        result = handler(stage_run(s3, "job-1"), None)
    finally:
        module._clients.cache_clear()
    assert result["CheckpointS3Uri"] == escrow("job-1")
    assert [v["ModelPackageArn"] for v in versions(sm)] == [result["ModelPackageArn"]]


# -- refused, and nothing registered -------------------------------------------------------------


def refused(sm: Any, s3: Any, event: dict[str, str], error: type[Exception]) -> str:
    with pytest.raises(error) as caught:
        register(sm, s3, event)
    assert versions(sm) == []
    return str(caught.value)


def test_every_bad_input_is_listed_at_once(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = {
        "TrainingJobName": "job_1",
        "ModelArtifactsS3Uri": "s3://artifacts-bucket/job-1/output/output.tar.gz",
        "ModelNameOrPath": "nova-pro",
        "Technique": "QLoRA",
        "RecipeS3Uri": "https://example.com/recipe.yaml",
        "ModelApprovalStatus": "Approve",
        "PipelineExecutionArn": "exec-1",
        "RecipeSha256": "abc",
    }
    message = refused(sm, s3, event, ValueError)
    for key in (*event, "ModelPackageGroupName is missing"):
        assert key in message, key
    assert message.count("\n- ") == len(event) + 1


def test_a_missing_output_archive_names_the_object(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = stage_run(s3, "job-1")
    key = event["ModelArtifactsS3Uri"].removeprefix(f"s3://{ARTIFACTS}/")
    s3.delete_object(Bucket=ARTIFACTS, Key=key.replace("model.tar.gz", "output.tar.gz"))
    message = refused(sm, s3, event, RegistrationError)
    assert message.startswith(
        f"s3://{ARTIFACTS}/runs/job-1/training/job-1/output/output.tar.gz does not exist: "
        "training job job-1 left no output archive"
    )


def test_a_missing_group_is_named_with_the_fix(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), "ModelPackageGroupName": "no-such-group"}
    message = refused(sm, s3, event, RegistrationError)
    assert message.startswith("model package group no-such-group does not exist")
    assert "deploy the training stack" in message


@pytest.mark.parametrize(
    ("archive", "expected"),
    [
        (tar_gz(Member("./training.log", b"x")), "manifest.json not found in s3://"),
        (tar_gz(Member("./manifest.json", b"{not json")), "is not valid JSON"),
        (tar_gz(Member("./manifest.json", b'{"other": 1}')), "has no 'checkpoint_s3_bucket'"),
        (tar_gz(Member("./manifest.json", manifest("/local/path"))), "must be an s3://"),
        (b"not gzip at all", "is not gzip-compressed"),
        (job_archive(manifest_last=True)[:300], "is truncated"),
        (
            tar_gz(Member("./manifest.json", kind=b"2", linkname="/etc/passwd")),
            "is a symbolic link",
        ),
    ],
)
def test_a_bad_archive_registers_nothing(
    clients: tuple[Any, Any], archive: bytes, expected: str
) -> None:
    sm, s3 = clients
    message = refused(sm, s3, stage_run(s3, "job-1", archive=archive), OutputArchiveError)
    assert expected in message
    assert "runs/job-1/training/job-1/output/output.tar.gz" in message


def test_a_missing_recipe_is_named(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), "RecipeS3Uri": f"s3://{ARTIFACTS}/runs/other/recipe.yaml"}
    message = refused(sm, s3, event, RegistrationError)
    assert message == (
        f"s3://{ARTIFACTS}/runs/other/recipe.yaml does not exist: RecipeS3Uri must be the "
        "prepare step's output"
    )


def test_a_file_that_is_not_a_recipe_is_refused(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = stage_run(s3, "job-1")
    s3.put_object(Bucket=ARTIFACTS, Key="runs/job-1/notes.yaml", Body=b"- a list\n")
    event["RecipeS3Uri"] = f"s3://{ARTIFACTS}/runs/job-1/notes.yaml"
    message = refused(sm, s3, event, RegistrationError)
    assert "is not a recipe rendered by the prepare step" in message


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"Technique": FULL_RANK}, "it trains LoRA, not Technique FullRank"),
        ({"ModelNameOrPath": escrow("job-0")}, f"it starts from {BASE_MODEL}, not ModelNameOrPath"),
        ({"RecipeSha256": "0" * 64}, "not RecipeSha256 " + "0" * 64),
        ({"ValidationDataS3Uri": "s3://data-bucket/val.jsonl"}, "its validation data is ''"),
    ],
)
def test_a_recipe_from_another_run_is_refused(
    clients: tuple[Any, Any], change: dict[str, str], expected: str
) -> None:
    sm, s3 = clients
    message = refused(sm, s3, {**stage_run(s3, "job-1"), **change}, RegistrationError)
    assert "does not match the register step's inputs" in message
    assert expected in message


def test_the_recipe_sha256_may_be_passed_and_checked(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = stage_run(s3, "job-1")
    key = event["RecipeS3Uri"].removeprefix(f"s3://{ARTIFACTS}/")
    sha = hashlib.sha256(s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()).hexdigest()
    result = register(sm, s3, {**event, "RecipeSha256": sha.upper()})
    metadata = sm.describe_model_package(ModelPackageName=result["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert metadata[KEY_RECIPE_SHA256] == sha
    assert metadata[KEY_CHECKPOINT] == escrow("job-1")
    assert metadata[KEY_PARENT] == BASE_MODEL


def test_an_overlong_data_uri_is_refused_with_the_inputs(clients: tuple[Any, Any]) -> None:
    sm, s3 = clients
    event = {**stage_run(s3, "job-1"), "TrainDataS3Uri": "s3://data-bucket/" + "t" * 250}
    assert "TrainDataS3Uri=" in refused(sm, s3, event, ValueError)


def test_metadata_the_registry_would_refuse_fails_before_anything_is_created(
    clients: tuple[Any, Any],
) -> None:
    sm, s3 = clients
    event = stage_run(s3, "job-1")
    key = event["RecipeS3Uri"].removeprefix(f"s3://{ARTIFACTS}/")
    recipe = s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read()
    edited = recipe.replace(b'  name: "job-1"', b'  name: "job,1"')
    assert edited != recipe
    s3.put_object(Bucket=ARTIFACTS, Key=key, Body=edited)
    message = refused(sm, s3, event, RegistrationError)
    assert message.startswith("the checkpoint's metadata would be refused by the model registry")
    assert "RunName='job,1' holds ','" in message


# -- what a replay needs --------------------------------------------------------------------------

SOURCE_PACKAGE = "arn:aws:sagemaker:us-east-1:111111111111:model-package/nova-sft-dev-checkpoints/3"


@pytest.mark.parametrize("max_runtime", [432000, "432000"])
def test_the_time_limit_and_the_replayed_package_are_recorded_for_a_replay(
    clients: tuple[Any, Any], max_runtime: object
) -> None:
    sm, s3 = clients
    event: dict[str, Any] = {
        **stage_run(s3, "job-1"),
        "MaxRuntimeSeconds": max_runtime,  # an Integer parameter may arrive as a number
        "SourceModelPackageArn": SOURCE_PACKAGE,
    }
    result = register(sm, s3, event)
    package = sm.describe_model_package(ModelPackageName=result["ModelPackageArn"])
    metadata = package["CustomerMetadataProperties"]
    assert metadata["MaxRuntimeSeconds"] == "432000"
    assert metadata["SourceModelPackageArn"] == SOURCE_PACKAGE
    record = describe_checkpoint(sm, result["ModelPackageArn"])
    assert record.source_model_package_arn == SOURCE_PACKAGE
    replay = record.replay_parameters()
    assert replay["MaxRuntimeSeconds"] == "432000"
    # A replay of this run names this package, never the one this run replayed.
    assert "SourceModelPackageArn" not in replay


@pytest.mark.parametrize("nothing", ["none", ""])
def test_a_run_that_replays_nothing_records_no_source(
    clients: tuple[Any, Any], nothing: str
) -> None:
    sm, s3 = clients
    result = register(sm, s3, {**stage_run(s3, "job-1"), "SourceModelPackageArn": nothing})
    metadata = sm.describe_model_package(ModelPackageName=result["ModelPackageArn"])[
        "CustomerMetadataProperties"
    ]
    assert "SourceModelPackageArn" not in metadata


@pytest.mark.parametrize(
    ("key", "value", "problem"),
    [
        ("MaxRuntimeSeconds", "0", "must be a whole number of seconds from 1 to 2419200"),
        ("MaxRuntimeSeconds", 2419201, "must be a whole number of seconds from 1 to 2419200"),
        ("MaxRuntimeSeconds", "1.5", "must be a whole number of seconds"),
        ("MaxRuntimeSeconds", True, "must be a whole number of seconds"),
        ("SourceModelPackageArn", "dev/3", "must be a model package ARN, or none"),
    ],
)
def test_bad_replay_inputs_are_refused_before_anything_is_registered(
    clients: tuple[Any, Any], key: str, value: object, problem: str
) -> None:
    sm, s3 = clients
    message = refused(sm, s3, {**stage_run(s3, "job-1"), key: value}, ValueError)  # type: ignore[dict-item]
    assert f"{key}=" in message
    assert problem in message

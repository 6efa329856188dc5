"""The PrepareEvaluation step against moto's S3 over HTTP: the job's checkpoint, the evaluation
recipe and the gen_qa data where the evaluation job reads them."""

from __future__ import annotations

import hashlib
from typing import Any

import pytest
import yaml

from lambdas import prepare_evaluation as module
from lambdas.checkpoint import OutputArchiveError
from lambdas.prepare_evaluation import (
    OUTPUTS,
    EvaluationPrepareError,
    handler,
    prepare_evaluation,
)
from lambdas.recipe import RecipeValidationError
from lambdas.recipe.spec import BASE_MODEL
from tests.lambdas.checkpoint.archives import Member, tar_gz
from tests.lambdas.test_register_checkpoint import ARTIFACTS, escrow, stage_run

DATA_BUCKET = "data-bucket"
DATA_URI = f"s3://{DATA_BUCKET}/eval/questions.jsonl"
PREFIX = f"s3://{ARTIFACTS}/runs/exec-1/evaluation/"
QUESTIONS = b'{"query": "What is 2 + 2?", "response": "4"}\n'


@pytest.fixture
def s3(clients: tuple[Any, Any]) -> Any:
    _sm, s3 = clients
    s3.create_bucket(Bucket=DATA_BUCKET)
    s3.put_object(Bucket=DATA_BUCKET, Key="eval/questions.jsonl", Body=QUESTIONS)
    return s3


def event(s3: Any, **changes: str) -> dict[str, str]:
    artifacts = stage_run(s3, "job-1")["ModelArtifactsS3Uri"]
    return {
        "EvaluationTask": "gen_qa",
        "ModelArtifactsS3Uri": artifacts,
        "EvaluationDataS3Uri": DATA_URI,
        "RunName": "nova-sft-test-exec-1-eval",
        "EvaluationS3Prefix": PREFIX,
        **changes,
    }


def read(s3: Any, key: str) -> bytes:
    return bytes(s3.get_object(Bucket=ARTIFACTS, Key=key)["Body"].read())


def test_the_recipe_scores_the_job_s_checkpoint_and_the_data_is_gen_qa_jsonl(s3: Any) -> None:
    outputs = prepare_evaluation(s3, event(s3))
    assert set(outputs) == set(OUTPUTS)
    body = read(s3, "runs/exec-1/evaluation/recipe/recipe.yaml")
    recipe = yaml.safe_load(body)
    assert recipe["run"]["model_name_or_path"] == escrow("job-1")
    assert recipe["run"]["name"] == "nova-sft-test-exec-1-eval"
    assert recipe["evaluation"]["task"] == "gen_qa"
    assert read(s3, "runs/exec-1/evaluation/data/gen_qa.jsonl") == QUESTIONS
    assert outputs == {
        "RecipeS3Uri": PREFIX + "recipe/recipe.yaml",
        "RecipeS3Prefix": PREFIX + "recipe/",
        "RecipeSha256": hashlib.sha256(body).hexdigest(),
        "ModelNameOrPath": escrow("job-1"),
        "EvaluationRunName": "nova-sft-test-exec-1-eval",
        "DataS3Prefix": PREFIX + "data/",
        "HasEvaluationData": "true",
        "StartsFromCheckpoint": "true",
    }


def test_a_benchmark_copies_no_data(s3: Any) -> None:
    outputs = prepare_evaluation(s3, event(s3, EvaluationTask="mmlu", EvaluationDataS3Uri="none"))
    assert (outputs["DataS3Prefix"], outputs["HasEvaluationData"]) == ("none", "false")
    listed = s3.list_objects_v2(Bucket=ARTIFACTS, Prefix="runs/exec-1/evaluation/")
    assert [o["Key"] for o in listed["Contents"]] == ["runs/exec-1/evaluation/recipe/recipe.yaml"]


def test_the_evaluate_only_pipeline_names_the_model_directly(s3: Any) -> None:
    changes = {"ModelArtifactsS3Uri": "none", "ModelNameOrPath": BASE_MODEL}
    outputs = prepare_evaluation(s3, event(s3, **changes))
    assert (outputs["ModelNameOrPath"], outputs["StartsFromCheckpoint"]) == (BASE_MODEL, "false")


def test_running_twice_writes_the_same_bytes(s3: Any) -> None:
    first = prepare_evaluation(s3, event(s3))
    assert prepare_evaluation(s3, event(s3)) == first


@pytest.mark.parametrize(
    ("changes", "words"),
    [
        ({"EvaluationTask": "none"}, "EvaluationTask='none'"),
        ({"EvaluationDataS3Uri": "none"}, "gen_qa needs EvaluationDataS3Uri"),
        ({"EvaluationTask": "mmlu"}, "mmlu takes no EvaluationDataS3Uri"),
        ({"ModelNameOrPath": BASE_MODEL}, "exactly one of"),
        ({"EvaluationS3Prefix": f"s3://{ARTIFACTS}"}, "EvaluationS3Prefix"),
        ({"RunName": "not a name"}, "RunName"),
    ],
)
def test_bad_inputs_are_refused_and_nothing_is_written(
    s3: Any, changes: dict[str, str], words: str
) -> None:
    with pytest.raises(RecipeValidationError, match=words):
        prepare_evaluation(s3, event(s3, **changes))
    assert "Contents" not in s3.list_objects_v2(Bucket=ARTIFACTS, Prefix="runs/exec-1/evaluation/")


def test_a_missing_job_output_names_the_object(s3: Any) -> None:
    request = event(s3)
    s3.delete_object(Bucket=ARTIFACTS, Key="runs/job-1/training/job-1/output/output.tar.gz")
    with pytest.raises(EvaluationPrepareError, match=r"output\.tar\.gz: it does not exist"):
        prepare_evaluation(s3, request)


def test_an_archive_without_manifest_is_refused(s3: Any) -> None:
    request = event(s3)
    s3.put_object(
        Bucket=ARTIFACTS,
        Key="runs/job-1/training/job-1/output/output.tar.gz",
        Body=tar_gz(Member("./training.log", b"log\n")),
    )
    with pytest.raises(OutputArchiveError, match=r"manifest\.json"):
        prepare_evaluation(s3, request)


def test_missing_data_names_the_object_and_the_permission(s3: Any) -> None:
    missing = f"s3://{DATA_BUCKET}/eval/missing.jsonl"
    with pytest.raises(EvaluationPrepareError, match=r"missing\.jsonl: it does not exist"):
        prepare_evaluation(s3, event(s3, EvaluationDataS3Uri=missing))


def test_the_handler_builds_its_client_from_the_environment(s3: Any) -> None:
    module._s3_client.cache_clear()
    try:
        assert handler(event(s3))["HasEvaluationData"] == "true"
    finally:
        module._s3_client.cache_clear()

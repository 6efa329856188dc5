"""The pipeline definition as deployed: taken from the template, references as placeholders.

The body is a `Fn::Join` of JSON text and CloudFormation references. Replacing each reference
with a readable placeholder (conftest.flatten) gives a JSON document that must parse and must
name this stack's role, functions, bucket and key, and nothing else.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import pytest

from pipeline.config import read_cdk_json
from pipeline.step_names import PREPARE_EVALUATION_STEPS, REGISTER_STEPS
from tests.cloud_assembly import ENVIRONMENTS, Assembly

Flat = Callable[[Mapping[str, Any]], dict[str, Any]]
PLACEHOLDER = re.compile(r"<[^<>\"]+>|import:[A-Za-z0-9:-]+")


def pipelines(template: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The stack's pipelines by PipelineName: the training pipeline `nova-sft-<env>` and the
    evaluate-only pipeline `nova-sft-<env>-evaluate` (decision 0017)."""
    found = [r for r in template["Resources"].values() if r["Type"] == "AWS::SageMaker::Pipeline"]
    by_name = {r["Properties"]["PipelineName"]: r for r in found}
    assert len(by_name) == len(found), "two pipelines share a name"
    return by_name


def raw_body(assembly: Assembly, env: str, name: str | None = None) -> Any:
    """The body of the pipeline `name` (default: the training pipeline `nova-sft-<env>`)."""
    pipeline = pipelines(assembly.template_json(env, "Training"))[name or f"nova-sft-{env}"]
    return pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]


def parsed_body(pipeline: Mapping[str, Any]) -> Any:
    text = pipeline["Properties"]["PipelineDefinition"]["PipelineDefinitionBody"]
    assert isinstance(text, str), "a reference was left that the placeholders do not cover"
    return json.loads(text)


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def body(request: pytest.FixtureRequest, assembly: Assembly, flat: Flat) -> tuple[str, Any]:
    env = str(request.param)
    template = flat(assembly.template_json(env, "Training"))
    return env, parsed_body(pipelines(template)[f"nova-sft-{env}"])


@pytest.fixture(scope="module", params=ENVIRONMENTS)
def evaluate_body(
    request: pytest.FixtureRequest, assembly: Assembly, flat: Flat
) -> tuple[str, Any]:
    """The evaluate-only pipeline's definition (decision 0017)."""
    env = str(request.param)
    template = flat(assembly.template_json(env, "Training"))
    return env, parsed_body(pipelines(template)[f"nova-sft-{env}-evaluate"])


def steps(definition: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every step, including those inside condition branches."""
    for step in definition["Steps"]:
        yield step
        for branch in ("IfSteps", "ElseSteps"):
            yield from steps({"Steps": step.get("Arguments", {}).get(branch, [])})


def placeholders(value: Any) -> set[str]:
    return set(PLACEHOLDER.findall(json.dumps(value)))


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_stack_has_the_training_and_the_evaluate_pipeline_each_with_its_role(
    assembly: Assembly, flat: Flat, env: str
) -> None:
    found = pipelines(flat(assembly.template_json(env, "Training")))
    assert {name: p["Properties"]["RoleArn"] for name, p in found.items()} == {
        f"nova-sft-{env}": "<PipelineRole.Arn>",
        f"nova-sft-{env}-evaluate": "<EvaluatePipeline/Role.Arn>",
    }


@pytest.mark.parametrize("env", ENVIRONMENTS)
@pytest.mark.parametrize("evaluate", [False, True], ids=["training", "evaluate"])
def test_body_is_a_join_of_text_and_references_only(
    assembly: Assembly, env: str, evaluate: bool
) -> None:
    raw = raw_body(assembly, env, f"nova-sft-{env}-evaluate" if evaluate else None)
    separator, parts = raw["Fn::Join"]
    assert separator == ""
    references = [p for p in parts if not isinstance(p, str)]
    assert references, "the body carries no deploy-time reference at all"
    for reference in references:
        assert set(reference) <= {"Fn::GetAtt", "Fn::ImportValue", "Ref"}, reference
    # No CDK token escaped resolution as text.
    assert not any("${Token[" in p for p in parts if isinstance(p, str))


def test_lambda_steps_call_this_stacks_functions(body: tuple[str, Any]) -> None:
    _, definition = body
    calls = {s["Name"]: s["FunctionArn"] for s in steps(definition) if s["Type"] == "Lambda"}
    assert calls == {
        "ValidateData": "<Functions/ValidateDataset.Arn>",
        "PrepareRecipe": "<Functions/PrepareRecipe.Arn>",
        **dict.fromkeys(REGISTER_STEPS, "<Functions/RegisterCheckpoint.Arn>"),
        **dict.fromkeys(PREPARE_EVALUATION_STEPS, "<Functions/PrepareEvaluation.Arn>"),
    }
    assert len(calls) == 2 + 3 * 4 + 4


def test_training_steps_use_the_training_role_bucket_and_key(body: tuple[str, Any]) -> None:
    env, definition = body
    training = [s for s in steps(definition) if s["Type"] == "Training"]
    # From the base model or a checkpoint, each with and without the validation channel; each
    # followed by an evaluation job on data or on a benchmark (same role, bucket and key).
    assert len(training) == 12
    for step in training:
        arguments = step["Arguments"]
        assert arguments["RoleArn"] == "<TrainingJobRole.Arn>"
        output = arguments["OutputDataConfig"]
        assert output["KmsKeyId"] == f"import:nova-sft-{env}-data:DataKeyArn"
        location = output["S3OutputPath"]["Std:Join"]["Values"]
        assert location[0] == f"s3://import:nova-sft-{env}-data:ArtifactsBucketName/runs/"


def test_run_files_go_under_runs_of_the_artifacts_bucket(body: tuple[str, Any]) -> None:
    # The functions may write only below runs/ (test_iam): every location must be there.
    env, definition = body
    prefix = f"s3://import:nova-sft-{env}-data:ArtifactsBucketName/"
    bucket_texts = [t for t in _strings(definition) if "ArtifactsBucketName" in t]
    assert bucket_texts
    # The one exception is read-only: where the register step looks up baseline scores.
    baselines = f"{prefix}baselines/"
    assert all(t.startswith(f"{prefix}runs/") or t == baselines for t in bucket_texts)


def test_registration_goes_to_this_environments_group(body: tuple[str, Any]) -> None:
    env, definition = body
    groups = {
        s["Arguments"]["ModelPackageGroupName"]
        for s in steps(definition)
        if s["Name"].startswith("Register")
    }
    assert groups == {f"nova-sft-{env}-checkpoints"}


def test_body_names_nothing_but_this_stacks_resources(body: tuple[str, Any]) -> None:
    env, definition = body
    data = f"import:nova-sft-{env}-data"
    assert placeholders(definition) == {
        "<TrainingJobRole.Arn>",
        "<Functions/ValidateDataset.Arn>",
        "<Functions/PrepareRecipe.Arn>",
        "<Functions/RegisterCheckpoint.Arn>",
        "<Functions/PrepareEvaluation.Arn>",
        f"{data}:ArtifactsBucketName",
        f"{data}:DataKeyArn",
        # The environment's own MLflow tracking server, where it tracks (stacks/tracking.py).
        *(
            ["<Tracking/Server.TrackingServerArn>"]
            if read_cdk_json().environment(env).creates_tracking_server
            else []
        ),
    }


def test_evaluate_lambda_steps_call_validate_prepare_evaluation_and_record(
    evaluate_body: tuple[str, Any],
) -> None:
    _, definition = evaluate_body
    calls = {s["Name"]: s["FunctionArn"] for s in steps(definition) if s["Type"] == "Lambda"}
    records = {name for name in calls if name.startswith("Record")}
    assert calls == {
        "ValidateData": "<Functions/ValidateDataset.Arn>",
        "PrepareEvaluation": "<Functions/PrepareEvaluation.Arn>",
        **dict.fromkeys(records, "<Functions/RecordEvaluation.Arn>"),
    }
    # The checkpoint or the base model, each on data or on a benchmark.
    assert len(records) == 4


def test_evaluate_jobs_use_the_training_role_bucket_and_key(
    evaluate_body: tuple[str, Any],
) -> None:
    env, definition = evaluate_body
    jobs = [s for s in steps(definition) if s["Type"] == "Training"]
    assert len(jobs) == 4
    for step in jobs:
        arguments = step["Arguments"]
        assert arguments["RoleArn"] == "<TrainingJobRole.Arn>"
        output = arguments["OutputDataConfig"]
        assert output["KmsKeyId"] == f"import:nova-sft-{env}-data:DataKeyArn"
        location = output["S3OutputPath"]["Std:Join"]["Values"]
        assert location[0] == f"s3://import:nova-sft-{env}-data:ArtifactsBucketName/runs/"


def test_evaluate_body_names_nothing_but_this_stacks_resources(
    evaluate_body: tuple[str, Any],
) -> None:
    env, definition = evaluate_body
    data = f"import:nova-sft-{env}-data"
    # No tracking server: the evaluate-only pipeline does not log to MLflow.
    assert placeholders(definition) == {
        "<TrainingJobRole.Arn>",
        "<Functions/ValidateDataset.Arn>",
        "<Functions/PrepareEvaluation.Arn>",
        "<Functions/RecordEvaluation.Arn>",
        f"{data}:ArtifactsBucketName",
        f"{data}:DataKeyArn",
    }


def test_parameter_defaults_follow_the_environment(body: tuple[str, Any]) -> None:
    env, definition = body
    config = read_cdk_json().environment(env)
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert defaults["TrainingInstanceType"] == config.training_instance_type
    assert defaults["TrainingInstanceCount"] == config.training_instance_count
    assert defaults["MaxRuntimeSeconds"] == config.max_runtime_seconds


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)

"""The pipeline definition: its parameters, its references, its steps' contracts, and that it is
built offline and deterministically. The notebook equivalence is in test_definition_equivalence.py,
which imports the helpers below.

The snapshot (snapshots/definition.json) is the definition as last reviewed. After an intended
change, regenerate it and review the diff with the change:

    UPDATE_SNAPSHOTS=1 .venv/bin/pytest -q tests/pipeline/test_definition.py -k snapshot
"""

from __future__ import annotations

import functools
import inspect
import json
import os
import re
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest
from botocore.model import ListShape, MapShape, Shape, StructureShape

from lambdas.recipe import RUN_KEYS
from lambdas.recipe.spec import BASE_MODEL, FULL_RANK, KNOBS, nova_sft_image_uri
from pipeline import definition as definition_module
from pipeline.config import EnvironmentConfig
from pipeline.definition import (
    BASE_MODEL_VALIDATION_CONDITION,
    CHECKPOINT_VALIDATION_CONDITION,
    CONDITION_STEP,
    JOB_VARIANTS,
    PREPARE_OUTPUTS,
    PREPARE_STEP,
    REGISTER_FROM_BASE_MODEL,
    REGISTER_FROM_BASE_MODEL_WITH_VALIDATION,
    REGISTER_FROM_CHECKPOINT,
    REGISTER_FROM_CHECKPOINT_WITH_VALIDATION,
    REGISTER_OUTPUTS,
    TRAIN_FROM_BASE_MODEL,
    TRAIN_FROM_BASE_MODEL_WITH_VALIDATION,
    TRAIN_FROM_CHECKPOINT,
    TRAIN_FROM_CHECKPOINT_WITH_VALIDATION,
    TRAINING_STEPS,
    VALIDATE_OUTPUTS,
    VALIDATE_STEP,
    DefinitionBuildError,
    build_pipeline,
    definition_json,
)

SNAPSHOT = Path(__file__).parent / "snapshots" / "definition.json"
UPDATE_SNAPSHOTS = "UPDATE_SNAPSHOTS"

# An environment of its own, so that neither cdk.json nor the recipe defaults hide where a
# default comes from: every value differs from the recipe's and the sandbox's.
ENV = EnvironmentConfig(
    name="unit",
    account="123456789012",
    region="us-east-1",
    training_instance_type="ml.p5en.48xlarge",
    training_instance_count=8,
    max_runtime_seconds=7200,
    noncurrent_version_retention_days=7,
    log_retention_days=14,
    termination_protection=False,
)

ARTIFACTS = "unit-artifacts-bucket"
INPUTS: dict[str, str] = {
    "role_arn": "arn:aws:iam::123456789012:role/unit-pipeline",
    "execution_role_arn": "arn:aws:iam::123456789012:role/unit-training",
    "validate_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:unit-validate",
    "prepare_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:unit-prepare",
    "register_function_arn": "arn:aws:lambda:us-east-1:123456789012:function:unit-register",
    "artifacts_bucket": ARTIFACTS,
    "data_bucket": "unit-data-bucket",
    "kms_key_arn": "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab",
}

# The variables a pipeline definition may read anywhere (AWS: "Execution variables").
EXECUTION_VARIABLES = {
    "PipelineExecutionId",
    "PipelineExecutionArn",
    "PipelineName",
    "PipelineArn",
    "StartDateTime",
    "CurrentDateTime",
}


def build(env: EnvironmentConfig = ENV, **overrides: str) -> dict[str, Any]:
    """The definition for `env` built from INPUTS (with overrides), parsed."""
    document: dict[str, Any] = json.loads(
        definition_json(build_pipeline(env=env, **{**INPUTS, **overrides}))
    )
    return document


@functools.cache
def _built_text() -> str:
    return definition_json(build_pipeline(env=ENV, **INPUTS))


def built_definition() -> dict[str, Any]:
    """The definition for ENV and INPUTS, built once per test process (a fresh parsed copy)."""
    document: dict[str, Any] = json.loads(_built_text())
    return document


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return built_definition()


# -- reading a definition ---------------------------------------------------------------------


def flatten(
    steps: list[dict[str, Any]], gates: tuple[str, ...] = ()
) -> Iterator[tuple[dict[str, Any], tuple[str, ...]]]:
    """Every step with the condition branches it sits in, e.g. ("Cond:if",)."""
    for step in steps:
        yield step, gates
        if step["Type"] == "Condition":
            arguments = step["Arguments"]
            yield from flatten(arguments.get("IfSteps", []), (*gates, f"{step['Name']}:if"))
            yield from flatten(arguments.get("ElseSteps", []), (*gates, f"{step['Name']}:else"))


def steps_by_name(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {step["Name"]: step for step, _gates in flatten(document["Steps"])}


def gets(value: Any) -> Iterator[str]:
    """Every `Get` path inside a value (not inside nested branch steps)."""
    if isinstance(value, dict):
        if "Get" in value:
            yield value["Get"]
        for key, item in value.items():
            if key not in ("IfSteps", "ElseSteps"):
                yield from gets(item)
    elif isinstance(value, list):
        for item in value:
            yield from gets(item)


def resolve(value: Any, scope: dict[str, Any]) -> Any:
    """Evaluate Get and Std:Join in a value, from scope {"Parameters.X": ..., "Steps.S.p": ...}."""
    if isinstance(value, list):
        return [resolve(item, scope) for item in value]
    if not isinstance(value, dict):
        return value
    if set(value) == {"Get"}:
        if value["Get"] not in scope:
            raise KeyError(f"nothing to resolve {value['Get']} with")
        return scope[value["Get"]]
    if set(value) == {"Std:Join"}:
        join = value["Std:Join"]
        return join["On"].join(str(resolve(item, scope)) for item in join["Values"])
    assert not any(key.startswith("Std:") for key in value), f"unexpected function in {value}"
    return {key: resolve(item, scope) for key, item in value.items()}


@functools.cache
def describe_training_job_shape() -> StructureShape:
    model = botocore.session.get_session().get_service_model("sagemaker")
    shape: StructureShape = model.operation_model("DescribeTrainingJob").output_shape
    return shape


_PATH_TOKEN = re.compile(r"\.?([A-Za-z0-9_]+)|\[(\d+)\]|\['([^']*)'\]")


def response_has_path(shape: Shape, path: str) -> bool:
    """True iff `path` (Properties syntax: a.b[0]['k']) exists in the response shape."""
    position = 0
    while position < len(path):
        match = _PATH_TOKEN.match(path, position)
        if match is None:
            return False
        member, index, key = match.groups()
        if member and isinstance(shape, StructureShape) and member in shape.members:
            shape = shape.members[member]
        elif index and isinstance(shape, ListShape):
            shape = shape.member
        elif key is not None and isinstance(shape, MapShape):
            shape = shape.value
        else:
            return False
        position = match.end()
    return True


def property_problem(source: dict[str, Any], prop: str) -> str | None:
    """Why a property path of an earlier step cannot be read, or None when it can."""
    if source["Type"] == "Lambda":
        declared = {o["OutputName"] for o in source.get("OutputParameters", [])}
        match = re.fullmatch(r"OutputParameters\['([^']+)'\]", prop)
        if match is None or match.group(1) not in declared:
            return "is not a declared output"
        return None
    if source["Type"] == "Training":
        if not response_has_path(describe_training_job_shape(), prop):
            return "is not in DescribeTrainingJob"
        return None
    return f"reads a {source['Type']} step"


def reference_problems(document: dict[str, Any]) -> list[str]:
    """Every Get that is not a declared parameter, an execution variable, or a property of an
    earlier step (on the same branch) that the real response shape or declared outputs have."""
    parameters = {p["Name"] for p in document["Parameters"]}
    placed = list(flatten(document["Steps"]))
    where = {step["Name"]: gates for step, gates in placed}
    kinds = {step["Name"]: step for step, _ in placed}
    problems = []
    for step, gates in placed:
        for path in gets(step.get("Arguments", {})):
            head, _, rest = path.partition(".")
            if head == "Parameters":
                if rest not in parameters:
                    problems.append(f"{step['Name']}: {path} is not a declared parameter")
                continue
            if head == "Execution":
                if rest not in EXECUTION_VARIABLES:
                    problems.append(f"{step['Name']}: {path} is not an execution variable")
                continue
            target, _, prop = rest.partition(".")
            if head != "Steps" or target not in kinds:
                problems.append(f"{step['Name']}: {path} names no step")
                continue
            if target == step["Name"] or where[target] != gates[: len(where[target])]:
                problems.append(f"{step['Name']}: {path} is not an earlier step on its branch")
                continue
            problem = property_problem(kinds[target], prop)
            if problem:
                problems.append(f"{step['Name']}: {path} {problem}")
    return problems


# -- parameters -------------------------------------------------------------------------------


def test_parameters_are_the_public_names_with_their_types(definition: dict[str, Any]) -> None:
    declared = [(p["Name"], p["Type"]) for p in definition["Parameters"]]
    assert declared == [
        ("TrainDataS3Uri", "String"),
        ("ValidationDataS3Uri", "String"),
        ("ModelNameOrPath", "String"),
        ("Technique", "String"),
        ("TrainingInstanceType", "String"),
        ("TrainingInstanceCount", "Integer"),
        ("MaxSteps", "Integer"),
        ("GlobalBatchSize", "Integer"),
        ("MaxLength", "Integer"),
        ("LearningRate", "Float"),
        ("WarmupSteps", "Integer"),
        ("LoraAlpha", "Integer"),
        ("LoraPlusLrRatio", "Float"),
        ("ReasoningEnabled", "Boolean"),
        ("ValCheckInterval", "Integer"),
        ("MaxRuntimeSeconds", "Integer"),
        ("ModelApprovalStatus", "String"),
        ("SourceModelPackageArn", "String"),
    ]


def test_defaults_come_from_the_recipe_facts_and_the_environment(
    definition: dict[str, Any],
) -> None:
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert "DefaultValue" not in definition["Parameters"][0]  # TrainDataS3Uri must be given
    assert defaults["ValidationDataS3Uri"] == "none"
    assert defaults["ModelNameOrPath"] == BASE_MODEL == "nova-lite-2/prod"
    assert defaults["Technique"] == "LoRA"
    assert defaults["TrainingInstanceType"] == ENV.training_instance_type
    assert defaults["TrainingInstanceCount"] == ENV.training_instance_count
    assert defaults["MaxRuntimeSeconds"] == ENV.max_runtime_seconds
    assert defaults["ModelApprovalStatus"] == "PendingManualApproval"
    # A run replays nothing unless promote says so; a default cannot be an empty string.
    assert defaults["SourceModelPackageArn"] == "none"
    # NOVA_FACTS section 3, through lambdas.recipe.spec.KNOBS.
    assert {knob.name: defaults[knob.name] for knob in KNOBS} == {
        "MaxSteps": 100,
        "GlobalBatchSize": 32,
        "MaxLength": 32768,
        "LearningRate": 1e-5,
        "WarmupSteps": 15,
        "LoraAlpha": 64,
        "LoraPlusLrRatio": 64.0,
        "ReasoningEnabled": False,
        "ValCheckInterval": 0,  # derived from MaxSteps by PrepareRecipe
    }


def test_no_parameter_default_is_an_empty_string(definition: dict[str, Any]) -> None:
    # SageMaker refuses an empty parameter value (aws/sagemaker-python-sdk issues 4016, 3564):
    # an empty default would fail CreatePipeline, and with it the deployment.
    defaults = {p["Name"]: p.get("DefaultValue") for p in definition["Parameters"]}
    assert [name for name, value in defaults.items() if value == ""] == []
    assert all(value is not None for name, value in defaults.items() if name != "TrainDataS3Uri")


def test_closed_choices_are_enumerated_for_the_console(definition: dict[str, Any]) -> None:
    enums = {p["Name"]: p["EnumValues"] for p in definition["Parameters"] if "EnumValues" in p}
    assert enums == {
        "Technique": ["LoRA", "FullRank"],
        "TrainingInstanceType": ["ml.p5.48xlarge", "ml.p5en.48xlarge"],
        # Approval is an act of its own (approve, the console), never a run's parameter.
        "ModelApprovalStatus": ["PendingManualApproval", "Rejected"],
    }


# -- references -------------------------------------------------------------------------------


def test_every_get_resolves_to_something_that_exists(definition: dict[str, Any]) -> None:
    all_gets = [path for step, _ in flatten(definition["Steps"]) for path in gets(step)]
    assert any(path.startswith("Steps.TrainFrom") for path in all_gets)  # the check has work
    assert reference_problems(definition) == []


@pytest.mark.parametrize(
    ("find", "replace", "problem"),
    [
        ("Parameters.Technique", "Parameters.Tecnique", "is not a declared parameter"),
        ("Execution.PipelineExecutionArn", "Execution.TrainingJobName", "not an execution"),
        ("ModelArtifacts.S3ModelArtifacts", "ModelArtifacts.S3ModelArtifact", "DescribeTraining"),
        ("OutputParameters['RecipeS3Uri']", "OutputParameters['RecipeUri']", "declared output"),
        (
            "Steps.TrainFromBaseModel.TrainingJobName",
            "Steps.TrainFromCheckpoint.TrainingJobName",
            "earlier step on its branch",
        ),
    ],
)
def test_the_reference_check_catches_each_kind_of_dangling_get(
    definition: dict[str, Any], find: str, replace: str, problem: str
) -> None:
    text = json.dumps(definition)
    assert find in text
    broken = json.loads(text.replace(find, replace, 1))
    problems = reference_problems(broken)
    assert len(problems) == 1
    assert problem in problems[0]


# -- steps ------------------------------------------------------------------------------------


def _equals_true(output: str) -> list[dict[str, Any]]:
    return [
        {
            "Type": "Equals",
            "LeftValue": {"Get": f"Steps.PrepareRecipe.OutputParameters['{output}']"},
            "RightValue": "true",
        }
    ]


def test_steps_run_validate_prepare_then_one_of_four_jobs(definition: dict[str, Any]) -> None:
    top = [step["Name"] for step in definition["Steps"]]
    assert top == [VALIDATE_STEP, PREPARE_STEP, CONDITION_STEP]
    assert definition["Steps"][1]["DependsOn"] == [VALIDATE_STEP]
    condition = definition["Steps"][2]["Arguments"]
    assert condition["Conditions"] == _equals_true("StartsFromCheckpoint")
    branches = {}
    for side in ("IfSteps", "ElseSteps"):
        (inner,) = condition[side]
        assert inner["Type"] == "Condition"
        assert inner["Arguments"]["Conditions"] == _equals_true("HasValidationData")
        branches[inner["Name"]] = {
            inner_side: [s["Name"] for s in inner["Arguments"][inner_side]]
            for inner_side in ("IfSteps", "ElseSteps")
        }
    assert branches == {
        CHECKPOINT_VALIDATION_CONDITION: {
            "IfSteps": [
                TRAIN_FROM_CHECKPOINT_WITH_VALIDATION,
                REGISTER_FROM_CHECKPOINT_WITH_VALIDATION,
            ],
            "ElseSteps": [TRAIN_FROM_CHECKPOINT, REGISTER_FROM_CHECKPOINT],
        },
        BASE_MODEL_VALIDATION_CONDITION: {
            "IfSteps": [
                TRAIN_FROM_BASE_MODEL_WITH_VALIDATION,
                REGISTER_FROM_BASE_MODEL_WITH_VALIDATION,
            ],
            "ElseSteps": [TRAIN_FROM_BASE_MODEL, REGISTER_FROM_BASE_MODEL],
        },
    }
    assert sorted(TRAINING_STEPS) == sorted(
        step["Name"] for step, _ in flatten(definition["Steps"]) if step["Type"] == "Training"
    )


def test_training_step_names_leave_room_for_the_job_name_pipelines_gives(
    definition: dict[str, Any],
) -> None:
    # Pipelines names a step's job pipelines-<12-character execution id>-<step>-<10 characters>
    # (not documented to shorten a long step name); CreateTrainingJob takes at most 63.
    names = [s["Name"] for s, _ in flatten(definition["Steps"]) if s["Type"] == "Training"]
    assert len(names) == 4
    longest = max(len(f"pipelines-{'x' * 12}-{name}-{'y' * 10}") for name in names)
    assert longest <= 63


def channels_of(definition: dict[str, Any], step: str) -> dict[str, Any]:
    request = steps_by_name(definition)[step]["Arguments"]
    return {c["ChannelName"]: c for c in request["InputDataConfig"]}


@pytest.mark.parametrize("variant", JOB_VARIANTS, ids=lambda v: v.training_step)
def test_only_the_jobs_with_validation_send_the_validation_channel(
    definition: dict[str, Any], variant: Any
) -> None:
    channels = channels_of(definition, variant.training_step)
    if not variant.with_validation:
        # SageMaker refuses a channel with an empty URI: no channel at all without data.
        assert set(channels) == {"train", "recipe"}
        return
    assert set(channels) == {"train", "recipe", "validation"}
    validation, train = channels["validation"], channels["train"]
    assert validation["DataSource"]["S3DataSource"] == {
        **train["DataSource"]["S3DataSource"],
        "S3Uri": {"Get": "Parameters.ValidationDataS3Uri"},
    }
    assert validation["DataSource"]["S3DataSource"]["S3DataType"] == "Converse"
    assert validation["DataSource"]["S3DataSource"]["S3DataDistributionType"] == "FullyReplicated"
    # Apart from the channel, the request is the one without validation data.
    without = next(
        v
        for v in JOB_VARIANTS
        if v.hyperparameter == variant.hyperparameter and not v.with_validation
    )
    steps = steps_by_name(definition)
    mine = {**steps[variant.training_step]["Arguments"]}
    mine["InputDataConfig"] = [
        c for c in mine["InputDataConfig"] if c["ChannelName"] != "validation"
    ]
    assert mine == steps[without.training_step]["Arguments"]


def test_each_branch_sets_the_hyperparameter_the_sdk_picks_for_its_source(
    definition: dict[str, Any],
) -> None:
    steps = steps_by_name(definition)
    from_checkpoint = steps[TRAIN_FROM_CHECKPOINT]["Arguments"]["HyperParameters"]
    from_base = steps[TRAIN_FROM_BASE_MODEL]["Arguments"]["HyperParameters"]
    model = {"Get": "Parameters.ModelNameOrPath"}
    assert from_checkpoint["base_model_location"] == model
    assert "base_model" not in from_checkpoint
    assert from_base["base_model"] == model
    assert "base_model_location" not in from_base
    # Apart from that key, the two requests are one.
    strip = {"base_model", "base_model_location"}
    rest = [
        {
            **steps[name]["Arguments"],
            "HyperParameters": {
                k: v
                for k, v in steps[name]["Arguments"]["HyperParameters"].items()
                if k not in strip
            },
        }
        for name in (TRAIN_FROM_CHECKPOINT, TRAIN_FROM_BASE_MODEL)
    ]
    assert rest[0] == rest[1]


def test_the_job_reads_this_runs_recipe_and_writes_under_the_run(
    definition: dict[str, Any],
) -> None:
    request = steps_by_name(definition)[TRAIN_FROM_CHECKPOINT]["Arguments"]
    scope = {
        "Execution.PipelineExecutionId": "abcd1234efgh",
        "Steps.PrepareRecipe.OutputParameters['RecipeS3Prefix']": "s3://from-the-prepare-step/",
    }
    channels = {c["ChannelName"]: c for c in request["InputDataConfig"]}
    recipe = channels["recipe"]["DataSource"]["S3DataSource"]
    assert resolve(recipe["S3Uri"], scope) == "s3://from-the-prepare-step/"
    assert request["HyperParameters"]["sagemaker_recipe_local_path"] == (
        "/opt/ml/input/data/recipe/recipe.yaml"
    )
    assert resolve(request["OutputDataConfig"]["S3OutputPath"], scope) == (
        f"s3://{ARTIFACTS}/runs/abcd1234efgh/training"
    )
    assert request["OutputDataConfig"]["KmsKeyId"] == INPUTS["kms_key_arn"]
    assert "VolumeKmsKeyId" not in request["ResourceConfig"]
    assert request["RoleArn"] == INPUTS["execution_role_arn"]
    assert request["AlgorithmSpecification"]["TrainingImage"] == nova_sft_image_uri(ENV.region)


def test_training_retries_capacity_errors_and_lambda_steps_declare_no_policy(
    definition: dict[str, Any],
) -> None:
    from sagemaker.workflow.lambda_step import LambdaStep
    from sagemaker.workflow.retry import SageMakerJobExceptionTypeEnum

    # Decision 0004 rests on this: the SDK's Lambda step takes no retry policy (the API accepts
    # them on job steps only). Revisit the decision if an upgrade adds one.
    assert "retry_policies" not in inspect.signature(LambdaStep).parameters
    for step, _ in flatten(definition["Steps"]):
        if step["Type"] == "Training":
            (policy,) = step["RetryPolicies"]
            assert policy["ExceptionType"] == [SageMakerJobExceptionTypeEnum.CAPACITY_ERROR.value]
            assert policy["MaxAttempts"] > 1
            assert policy["IntervalSeconds"] >= 60
        else:
            # AWS supports retry policies on job steps only; Pipelines retries a Lambda step's
            # throttling by itself (docs/decisions/0004).
            assert "RetryPolicies" not in step


def test_validate_step_gets_the_data_the_batch_size_and_its_report_location(
    definition: dict[str, Any],
) -> None:
    step = steps_by_name(definition)[VALIDATE_STEP]
    assert step["FunctionArn"] == INPUTS["validate_function_arn"]
    assert [o["OutputName"] for o in step["OutputParameters"]] == list(VALIDATE_OUTPUTS)
    event = resolve(
        step["Arguments"],
        {
            "Parameters.TrainDataS3Uri": "s3://data/train.jsonl",
            "Parameters.ValidationDataS3Uri": "s3://data/validation.jsonl",
            "Parameters.GlobalBatchSize": 64,
            "Parameters.ReasoningEnabled": True,
            "Execution.PipelineExecutionId": "run1",
        },
    )
    assert event == {
        "TrainDataS3Uri": "s3://data/train.jsonl",
        "ValidationDataS3Uri": "s3://data/validation.jsonl",
        "GlobalBatchSize": 64,
        "ReasoningEnabled": True,
        "ReportS3Uri": f"s3://{ARTIFACTS}/runs/run1/data-validation/report.json",
        "ValidationReportS3Uri": (
            f"s3://{ARTIFACTS}/runs/run1/data-validation/validation-report.json"
        ),
    }
    # The validator's own event parser accepts it.
    from lambdas.validate_dataset import parse_event

    request = parse_event(event)
    assert (request.report_bucket, request.report_key) == (
        ARTIFACTS,
        "runs/run1/data-validation/report.json",
    )
    assert request.validation is not None
    assert request.validation.data_uri == "s3://data/validation.jsonl"


def test_prepare_step_sends_exactly_the_keys_the_prepare_function_accepts(
    definition: dict[str, Any],
) -> None:
    from lambdas.prepare_recipe import parse_event

    step = steps_by_name(definition)[PREPARE_STEP]
    assert step["FunctionArn"] == INPUTS["prepare_function_arn"]
    assert set(step["Arguments"]) == {*RUN_KEYS, "RecipeS3Prefix", "ModelPackageGroupName"}
    assert step["Arguments"]["ModelPackageGroupName"] == ENV.model_package_group_name
    assert [o["OutputName"] for o in step["OutputParameters"]] == list(PREPARE_OUTPUTS)
    scope = {f"Parameters.{p['Name']}": p.get("DefaultValue") for p in definition["Parameters"]}
    scope["Execution.PipelineExecutionId"] = "x1y2z3w4v5u6"
    settings, (bucket, key, prefix), group = parse_event(resolve(step["Arguments"], scope))
    assert group == ENV.model_package_group_name
    assert settings.run_name == f"{ENV.pipeline_name}-x1y2z3w4v5u6"
    assert settings.training_instance_count == ENV.training_instance_count
    assert (bucket, key) == (ARTIFACTS, "runs/x1y2z3w4v5u6/recipe/recipe.yaml")
    assert prefix == f"s3://{ARTIFACTS}/runs/x1y2z3w4v5u6/recipe/"


@pytest.mark.parametrize(
    ("register", "training"),
    [(variant.register_step, variant.training_step) for variant in JOB_VARIANTS],
)
def test_register_steps_read_their_own_job_and_the_runs_inputs(
    definition: dict[str, Any], register: str, training: str
) -> None:
    step = steps_by_name(definition)[register]
    assert step["FunctionArn"] == INPUTS["register_function_arn"]
    assert [o["OutputName"] for o in step["OutputParameters"]] == list(REGISTER_OUTPUTS)
    arguments = step["Arguments"]
    assert arguments["TrainingJobName"] == {"Get": f"Steps.{training}.TrainingJobName"}
    assert arguments["ModelArtifactsS3Uri"] == {
        "Get": f"Steps.{training}.ModelArtifacts.S3ModelArtifacts"
    }
    assert arguments["ModelPackageGroupName"] == ENV.model_package_group_name
    assert arguments["PipelineExecutionArn"] == {"Get": "Execution.PipelineExecutionArn"}
    assert arguments["RecipeS3Uri"] == {
        "Get": "Steps.PrepareRecipe.OutputParameters['RecipeS3Uri']"
    }
    for name in (
        "ModelNameOrPath",
        "Technique",
        "TrainDataS3Uri",
        "ValidationDataS3Uri",
        "TrainingInstanceType",
        "ModelApprovalStatus",
        # What a replay needs, recorded on the package (decision 0003).
        "MaxRuntimeSeconds",
        "SourceModelPackageArn",
    ):
        assert arguments[name] == {"Get": f"Parameters.{name}"}


# -- inputs -----------------------------------------------------------------------------------


def test_cdk_tokens_pass_through_to_the_json() -> None:
    tokens = {name: f"${{Token[TOKEN.{i}]}}" for i, name in enumerate(INPUTS, start=100)}
    document = build(ENV, **tokens)
    steps = steps_by_name(document)
    request = steps[TRAIN_FROM_BASE_MODEL]["Arguments"]
    assert request["RoleArn"] == tokens["execution_role_arn"]
    assert request["OutputDataConfig"]["KmsKeyId"] == tokens["kms_key_arn"]
    assert request["OutputDataConfig"]["S3OutputPath"]["Std:Join"]["Values"][0] == (
        f"s3://{tokens['artifacts_bucket']}/runs/"
    )
    assert steps[VALIDATE_STEP]["FunctionArn"] == tokens["validate_function_arn"]
    assert steps[PREPARE_STEP]["FunctionArn"] == tokens["prepare_function_arn"]
    assert steps[REGISTER_FROM_CHECKPOINT]["FunctionArn"] == tokens["register_function_arn"]
    # The pipeline's own role and the data bucket belong to the stack, not to the body.
    text = json.dumps(document)
    assert tokens["role_arn"] not in text
    assert tokens["data_bucket"] not in text


@pytest.mark.parametrize("name", sorted(INPUTS))
def test_an_empty_input_is_refused_by_name(name: str) -> None:
    with pytest.raises(DefinitionBuildError, match=name):
        build_pipeline(env=ENV, **{**INPUTS, name: ""})


def test_a_region_without_the_nova_image_is_refused() -> None:
    env = EnvironmentConfig(**{**ENV.__dict__, "region": "eu-west-3"})
    with pytest.raises(DefinitionBuildError, match="eu-west-3"):
        build_pipeline(env=env, **INPUTS)


# -- offline and deterministic ----------------------------------------------------------------


@pytest.fixture
def no_network_no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> list[str]:
    """Sockets refuse to connect or resolve; no credentials anywhere; metadata probing allowed
    (so a credential chain walk would reach for it and be caught)."""
    attempts: list[str] = []

    def refuse(*args: Any, **_kwargs: Any) -> Any:
        attempts.append(repr(args[-1] if args else ""))
        raise OSError("network access is blocked in this test")

    monkeypatch.setattr(socket.socket, "connect", lambda self, address: refuse(address))
    monkeypatch.setattr(socket.socket, "connect_ex", lambda self, address: refuse(address))
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_PROFILE",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    return attempts


def test_building_makes_no_network_call_needs_no_credentials_and_repeats_byte_for_byte(
    no_network_no_credentials: list[str],
) -> None:
    outside = _built_text()
    # The builder keeps one SDK session per region; this build makes its own inside the sandbox.
    definition_module._offline_session.cache_clear()
    first = definition_json(build_pipeline(env=ENV, **INPUTS))
    second = definition_json(build_pipeline(env=ENV, **INPUTS))
    assert no_network_no_credentials == []
    assert first == second == outside


def test_sdk_telemetry_is_off_while_building(monkeypatch: pytest.MonkeyPatch) -> None:
    """Telemetry is the SDK's only call home that the offline session cannot refuse on its own:
    it swallows the refusal and tries plain HTTPS. The opt-out must keep it from starting."""
    from sagemaker.telemetry import telemetry_logging

    reports: list[tuple[Any, ...]] = []
    monkeypatch.setattr(
        telemetry_logging, "_send_telemetry_request", lambda *args, **_: reports.append(args)
    )
    definition_json(build_pipeline(env=ENV, **INPUTS))
    assert reports == []
    # The recorder sits where the SDK reports from: without the opt-out the same build reports.
    monkeypatch.setattr(definition_module, "_SDK_CONFIG", {"SchemaVersion": "1.0", "SageMaker": {}})
    definition_json(build_pipeline(env=ENV, **INPUTS))
    assert len(reports) >= 2  # one per training step's fit()


def test_sdk_defaults_files_on_the_building_machine_change_nothing(
    definition: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(
        "SchemaVersion: '1.0'\n"
        "SageMaker:\n"
        "  TrainingJob:\n"
        "    EnableNetworkIsolation: true\n"
        "    VpcConfig:\n"
        "      SecurityGroupIds: ['sg-0123456789abcdef0']\n"
        "      Subnets: ['subnet-0123456789abcdef0']\n"
        "    Tags:\n"
        "      - Key: injected\n"
        "        Value: by-a-defaults-file\n",
        encoding="utf-8",
    )
    monkeypatch.setenv("SAGEMAKER_USER_CONFIG_OVERRIDE", str(config))
    # The file is a valid defaults file: a plain SDK session does apply it.
    from sagemaker.config.config import load_sagemaker_config

    assert load_sagemaker_config()["SageMaker"]["TrainingJob"]["EnableNetworkIsolation"] is True
    definition_module._offline_session.cache_clear()  # a session made while the file is there
    assert build() == definition


def test_building_leaves_boto3_and_the_process_as_it_found_them() -> None:
    import sys

    import boto3

    hook = sys.excepthook
    default = boto3.DEFAULT_SESSION
    build_pipeline(env=ENV, **INPUTS)
    assert boto3.DEFAULT_SESSION is default
    assert sys.excepthook is hook


def test_technique_template_handed_to_the_sdk_does_not_change_the_definition(
    definition: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    from lambdas.recipe.spec import TEMPLATE_FILES

    monkeypatch.setattr(definition_module, "_SYNTH_TECHNIQUE", FULL_RANK)
    assert TEMPLATE_FILES[FULL_RANK].read_text() != TEMPLATE_FILES["LoRA"].read_text()
    assert build() == definition


def test_snapshot(definition: dict[str, Any]) -> None:
    """The definition as reviewed. Regenerate: UPDATE_SNAPSHOTS=1 pytest <this file>."""
    text = json.dumps(definition, indent=2, sort_keys=True) + "\n"
    if os.environ.get(UPDATE_SNAPSHOTS) == "1":
        SNAPSHOT.parent.mkdir(parents=True, exist_ok=True)
        SNAPSHOT.write_text(text, encoding="utf-8")
    assert SNAPSHOT.exists(), f"no snapshot yet: run with {UPDATE_SNAPSHOTS}=1 and review it"
    assert text == SNAPSHOT.read_text(encoding="utf-8"), (
        f"the definition changed: review the diff, then regenerate with {UPDATE_SNAPSHOTS}=1"
    )

"""The override rules refuse what StartPipelineExecution refuses, one rule at a time, and the
local executor and the operator commands apply them alike."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import boto3
import pytest

from pipeline.definition import parameter_specs
from pipeline.overrides import (
    MAX_OVERRIDES,
    OverrideError,
    check,
    declared_of_specs,
    effective,
    parse_value,
)
from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.executor import LocalExecutor
from tests.pipeline.commands.helpers import deploy, environment, run_cli
from tests.pipeline.rehearsal.test_executor import RecordingTrainer, definition, start

DECLARED: dict[str, dict[str, Any]] = {
    "Train": {"Name": "Train", "Type": "String"},
    "Validation": {"Name": "Validation", "Type": "String", "DefaultValue": ""},
    "Technique": {
        "Name": "Technique",
        "Type": "String",
        "DefaultValue": "LoRA",
        "EnumValues": ["LoRA", "FullRank"],
    },
    "Count": {"Name": "Count", "Type": "Integer", "DefaultValue": 4},
    "Rate": {"Name": "Rate", "Type": "Float", "DefaultValue": 1e-5},
    "Reasoning": {"Name": "Reasoning", "Type": "Boolean", "DefaultValue": False},
}


def problems(**given: str) -> list[str]:
    return check(DECLARED, [("Train", "s3://b/k"), *given.items()])[1]


def test_the_service_literal_forms_are_accepted_and_typed() -> None:
    values = effective(
        DECLARED,
        [("Train", "s3://b/k"), ("Count", "-12"), ("Rate", "2.5E-6"), ("Reasoning", "true")],
    )
    assert values == {
        "Train": "s3://b/k",
        "Validation": "",  # an empty default is the definition's business, not an override's
        "Technique": "LoRA",
        "Count": -12,
        "Rate": 2.5e-6,
        "Reasoning": True,
    }


def test_an_empty_value_is_refused_even_where_the_default_is_empty() -> None:
    [problem] = problems(Validation="")
    assert "Validation='': the service refuses an empty value (minimum length 1)" in problem


def test_a_value_over_1024_characters_is_refused() -> None:
    assert check(DECLARED, [("Train", "s" * 1024)])[1] == []
    [problem] = check(DECLARED, [("Train", "s" * 1025)])[1]
    assert "1025 characters, at most 1024" in problem


def test_a_required_parameter_must_be_given_with_the_callers_hint() -> None:
    _, found = check(DECLARED, [], hints={"Train": "pass --train"})
    assert found == ["Train is missing: pass --train (it has no default)"]
    assert check(DECLARED, [], require=False)[1] == []


def test_enum_values_are_enforced() -> None:
    assert problems(Technique="FullRank") == []
    [problem] = problems(Technique="QLoRA")
    assert problem == "Technique='QLoRA': must be one of LoRA, FullRank"


@pytest.mark.parametrize("text", ["1_000", " 5", "5 ", "+5", "05", "5.0", "1e3", "", "four"])
def test_an_integer_only_in_its_literal_form(text: str) -> None:
    with pytest.raises(ValueError, match="Count="):
        parse_value("Count", DECLARED["Count"], text)


def test_an_integer_beyond_32_bits_is_refused() -> None:
    assert parse_value("Count", DECLARED["Count"], "2147483647") == 2**31 - 1
    with pytest.raises(ValueError, match="within 32 bits"):
        parse_value("Count", DECLARED["Count"], "2147483648")


@pytest.mark.parametrize("text", ["nan", "inf", "-Infinity", "1_0.5", ".5", "5.", " 1.0", "1e999"])
def test_a_float_only_as_a_finite_json_number(text: str) -> None:
    with pytest.raises(ValueError, match="Rate="):
        parse_value("Rate", DECLARED["Rate"], text)


@pytest.mark.parametrize("text", ["TRUE", "True", "1", "yes", "false "])
def test_a_boolean_only_as_true_or_false(text: str) -> None:
    with pytest.raises(ValueError, match="must be a Boolean, true or false"):
        parse_value("Reasoning", DECLARED["Reasoning"], text)


def test_unknown_duplicate_and_malformed_names_are_refused() -> None:
    _, found = check(
        DECLARED, [("Train", "s3://b/k"), ("Nope", "1"), ("Count", "4"), ("Count", "5")]
    )
    assert found[0].startswith("unknown parameter(s) Nope: the pipeline's parameters are Train")
    assert "Count is given more than once: give it once" in found
    _, found = check(DECLARED, [("Train", "s3://b/k"), ("bad name", "1")])
    assert found == ["'bad name' is not a parameter name ([A-Za-z0-9-_], 1 to 256)"]


def test_more_than_200_overrides_are_refused() -> None:
    pairs = [("Train", "s3://b/k")] * (MAX_OVERRIDES + 1)
    assert f"{MAX_OVERRIDES + 1} parameters given, at most 200" in check(DECLARED, pairs)[1][0]


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(OverrideError) as caught:
        effective(DECLARED, [("Count", "1_000"), ("Reasoning", "TRUE"), ("Technique", "")])
    assert len(caught.value.problems) == 4  # three values and the missing Train
    assert str(caught.value).startswith("4 parameter problem(s):")


def test_the_projects_own_definition_parameters_convert_to_the_declared_form(
    cdk_json: Path,
) -> None:
    declared = declared_of_specs(parameter_specs(environment(cdk_json, "dev")))
    assert "DefaultValue" not in declared["TrainDataS3Uri"]
    assert declared["Technique"]["EnumValues"] == ["LoRA", "FullRank"]
    assert check(declared, [("Technique", "QLoRA")], require=False)[1] == [
        "Technique='QLoRA': must be one of LoRA, FullRank"
    ]


def test_the_executor_refuses_what_the_service_refuses_and_reports_the_run_failed(
    aws: boto3.Session, local_endpoint: Any
) -> None:
    executor = LocalExecutor(
        sagemaker_client=aws.client("sagemaker"),
        lambda_handlers={},
        trainer=RecordingTrainer(aws),
        publish=local_endpoint.executions.publish,
    )
    arn = start(aws, definition(), Count="1_000")
    with pytest.raises(DefinitionError, match=r"(?s)would refuse .*Count='1_000'"):
        executor.run(arn)
    described = aws.client("sagemaker").describe_pipeline_execution(PipelineExecutionArn=arn)
    assert described["PipelineExecutionStatus"] == "Failed"
    assert "Count='1_000'" in described["FailureReason"]


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--set", "ValidationDataS3Uri="), "ValidationDataS3Uri='': the service refuses"),
        (("--set", "Technique=QLoRA"), "Technique='QLoRA': must be one of LoRA, FullRank"),
        (("--set", "MaxSteps=1_000"), "MaxSteps='1_000': must be an Integer"),
        (("--set", "LearningRate=nan"), "LearningRate='nan': must be a Float"),
    ],
)
def test_start_refuses_bad_overrides_before_any_aws_call(
    cdk_json: Path,
    capsys: pytest.CaptureFixture[str],
    aws_calls: list[str],
    extra: tuple[str, ...],
    message: str,
) -> None:
    status, _, err = run_cli(
        capsys,
        "start",
        "--env",
        "dev",
        "--cdk-json",
        str(cdk_json),
        "--train",
        "s3://b/k.jsonl",
        *extra,
    )
    assert status == 2
    assert message in err
    assert aws_calls == []


def test_promote_refuses_an_empty_override_before_any_aws_call(
    cdk_json: Path, capsys: pytest.CaptureFixture[str], aws_calls: list[str]
) -> None:
    status, _, err = run_cli(
        capsys,
        "promote",
        "1",
        "--env",
        "dev",
        "--to",
        "sandbox",
        "--cdk-json",
        str(cdk_json),
        "--set",
        "MaxSteps=",
    )
    assert status == 2
    assert "MaxSteps='': the service refuses an empty value" in err
    assert aws_calls == []


def test_start_refuses_a_value_the_deployed_definition_does_not_allow(
    aws: boto3.Session, cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The deployed definition is checked too: here its Technique allows LoRA only."""
    env = environment(cdk_json, "dev")
    deploy(aws, env)
    sm = aws.client("sagemaker")
    body = json.loads(sm.describe_pipeline(PipelineName=env.pipeline_name)["PipelineDefinition"])
    for parameter in body["Parameters"]:
        if parameter["Name"] == "Technique":
            parameter["EnumValues"] = ["LoRA"]
    sm.update_pipeline(PipelineName=env.pipeline_name, PipelineDefinition=json.dumps(body))
    status, _, err = run_cli(
        capsys,
        "start",
        "--env",
        "dev",
        "--cdk-json",
        str(cdk_json),
        "--train",
        "s3://b/k.jsonl",
        "--technique",
        "FullRank",
    )
    assert status == 2
    assert "Technique='FullRank': must be one of LoRA" in err

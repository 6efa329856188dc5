"""The rehearsal's interpreter of the States Language subset: paths, intrinsics, choices,
retries and catches, and a clear refusal of anything outside the subset."""

from __future__ import annotations

import hashlib
from typing import Any

import boto3
import pytest

from pipeline.rehearsal.execution_record import DefinitionError
from pipeline.rehearsal.stand_in_bedrock import SimulatedClock
from pipeline.rehearsal.state_data import intrinsic, read_path
from pipeline.rehearsal.state_machine import Interpreter


def machine(states: dict[str, Any], start: str = "A") -> dict[str, Any]:
    return {"StartAt": start, "States": states}


def run(definition: dict[str, Any], payload: Any, session: Any = None) -> Any:
    return Interpreter(definition, session, SimulatedClock()).run(payload)


def test_intrinsics_format_hash_and_merge_nested() -> None:
    data = {"arn": "arn:aws:x", "v": 3, "a": {"k": "1", "z": "0"}, "b": {"k": "2"}}
    assert intrinsic("States.Format('nova-sft-dev-v{}', $.v)", data, {}) == "nova-sft-dev-v3"
    assert intrinsic("States.Hash($.arn, 'SHA-256')", data, {}) == (
        hashlib.sha256(b"arn:aws:x").hexdigest()
    )
    nested = "States.Hash(States.Format('{}#deployment', $.arn), 'SHA-256')"
    assert intrinsic(nested, data, {}) == hashlib.sha256(b"arn:aws:x#deployment").hexdigest()
    assert intrinsic("States.JsonMerge($.a, $.b, false)", data, {}) == {"k": "2", "z": "0"}
    assert intrinsic("States.Format('({}: {})', $.v, $.arn)", data, {}) == "(3: arn:aws:x)"


def test_pass_choice_and_a_null_result_path_keep_the_input() -> None:
    definition = machine(
        {
            "A": {
                "Type": "Pass",
                "Parameters": {"x.$": "$.in"},
                "ResultPath": "$.out",
                "Next": "B",
            },
            "B": {"Type": "Pass", "Parameters": {"dropped": 1}, "ResultPath": None, "Next": "C"},
            "C": {
                "Type": "Choice",
                "Choices": [
                    {"Not": {"Variable": "$.missing", "IsPresent": True}, "Next": "D"},
                ],
                "Default": "E",
            },
            "D": {"Type": "Succeed"},
            "E": {"Type": "Fail", "Error": "Wrong"},
        }
    )
    execution = run(definition, {"in": "v"})
    assert execution.status == "SUCCEEDED"
    assert execution.output == {"in": "v", "out": {"x": "v"}}
    assert execution.states == ["A", "B", "C", "D"]


def test_a_missing_path_is_a_runtime_error_that_states_all_does_not_catch() -> None:
    definition = machine(
        {
            "A": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.nope", "StringEquals": "x", "Next": "B"}],
                "Default": "B",
            },
            "B": {"Type": "Succeed"},
        }
    )
    execution = run(definition, {})
    assert (execution.status, execution.error) == ("FAILED", "States.Runtime")


def test_a_task_error_is_named_after_the_service_and_caught(aws: boto3.Session) -> None:
    definition = machine(
        {
            "A": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeModelPackage",
                "Parameters": {"ModelPackageName": "nope"},
                "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "B"}],
                "Next": "B",
            },
            "B": {"Type": "Pass", "End": True},
        }
    )
    execution = run(definition, {}, aws)
    assert execution.status == "SUCCEEDED"
    assert execution.output["error"]["Error"] == "SageMaker.ValidationException"


def test_retries_wait_on_the_clock_then_give_up(aws: boto3.Session) -> None:
    clock = SimulatedClock()
    definition = machine(
        {
            "A": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeModelPackage",
                "Parameters": {"ModelPackageName": "nope"},
                "Retry": [
                    {
                        "ErrorEquals": ["SageMaker.ValidationException"],
                        "IntervalSeconds": 10,
                        "BackoffRate": 2.0,
                        "MaxAttempts": 3,
                    }
                ],
                "End": True,
            }
        }
    )
    execution = Interpreter(definition, aws, clock).run({})
    assert (execution.status, execution.error) == ("FAILED", "SageMaker.ValidationException")
    assert clock.now() == 10 + 20 + 40


def test_aws_sdk_members_are_capitalised_both_ways(aws: boto3.Session) -> None:
    aws.client("sagemaker").create_model_package_group(ModelPackageGroupName="g")
    definition = machine(
        {
            "A": {
                "Type": "Task",
                "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeModelPackageGroup",
                "Parameters": {"ModelPackageGroupName.$": "$.group"},
                "ResultSelector": {"Name.$": "$.ModelPackageGroupName", "At.$": "$.CreationTime"},
                "End": True,
            }
        }
    )
    output = run(definition, {"group": "g"}, aws).output
    assert output["Name"] == "g"
    assert isinstance(output["At"], str)  # a timestamp, as text


@pytest.mark.parametrize(
    "state",
    [
        {"Type": "Parallel", "Branches": [], "End": True},
        {"Type": "Pass", "InputPath": "$.a", "End": True},
        {"Type": "Pass", "Parameters": {"x.$": "States.UUID()"}, "End": True},
        {"Type": "Task", "Resource": "arn:aws:lambda:us-east-1:1:function:f", "End": True},
    ],
)
def test_anything_outside_the_subset_is_refused_by_name(aws: boto3.Session, state: Any) -> None:
    with pytest.raises(DefinitionError):
        run(machine({"A": state}), {"a": 1}, aws)


def test_a_filter_path_and_array_intrinsics() -> None:
    data = {"Tags": [{"Key": "a", "Value": "1"}, {"Key": "b", "Value": "2"}]}
    assert read_path("$.Tags[?(@.Key == 'b')].Value", data, {}) == ["2"]
    assert read_path("$.Tags[?(@.Key == 'c')].Value", data, {}) == []
    found = {"p": ["x", "y"]}
    assert intrinsic("States.ArrayLength($.p)", found, {}) == 2
    assert intrinsic("States.ArrayGetItem($.p, 1)", found, {}) == "y"


def test_an_inline_map_runs_each_item_with_the_item_in_context() -> None:
    definition = machine(
        {
            "A": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"Value.$": "$$.Map.Item.Value", "Other.$": "$.other"},
                "ItemProcessor": {
                    "StartAt": "Same",
                    "States": {
                        "Same": {
                            "Type": "Choice",
                            "Choices": [
                                {"Variable": "$.Value", "StringEqualsPath": "$.Other", "Next": "Y"}
                            ],
                            "Default": "N",
                        },
                        "Y": {"Type": "Pass", "Parameters": {"same": True}, "End": True},
                        "N": {"Type": "Pass", "Parameters": {"same": False}, "End": True},
                    },
                },
                "ResultPath": "$.results",
                "End": True,
            }
        }
    )
    output = run(definition, {"items": ["a", "b"], "other": "b"}).output
    assert output["results"] == [{"same": False}, {"same": True}]

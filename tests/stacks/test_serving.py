"""The serving part of the TrainingStack: import role, state machine, rule, permissions."""

from __future__ import annotations

import json
from typing import Any

import pytest

from pipeline.config import read_cdk_json
from stacks.serving_asl import SDK
from stacks.serving_definition import ServingInputs, serving_definition
from tests.cloud_assembly import ENVIRONMENTS, Assembly
from tests.stacks.test_iam import statements
from tests.stacks.test_training_stack import by_path


def _account(env: str) -> Any:
    return read_cdk_json().environment(env).account or {"Ref": "AWS::AccountId"}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _deployed(machine: dict[str, Any]) -> dict[str, Any]:
    parts = machine["Properties"]["DefinitionString"]["Fn::Join"][1]
    return dict(json.loads("".join(p if isinstance(p, str) else "REF" for p in parts)))


def _definition_actions(machine: dict[str, Any]) -> set[str]:
    return _actions(_deployed(machine))


def _actions(definition: dict[str, Any]) -> set[str]:
    found = set()
    for state in definition["States"].values():
        if state["Type"] == "Task" and state["Resource"].startswith(SDK):
            found.add(state["Resource"].removeprefix(SDK))
        if state["Type"] == "Map":
            found |= _actions(state["ItemProcessor"])
    return found


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_import_role_trusts_bedrock_of_this_account_only(assembly: Assembly, env: str) -> None:
    roles = by_path(assembly.template_json(env, "Training"), "AWS::IAM::Role")
    trust = roles["Serving/ImportRole"]["Properties"]["AssumeRolePolicyDocument"]["Statement"]
    assert trust == [
        {
            "Action": "sts:AssumeRole",
            "Effect": "Allow",
            "Principal": {"Service": "bedrock.amazonaws.com"},
            "Condition": {"StringEquals": {"aws:SourceAccount": _account(env)}},
        }
    ]


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_import_role_reads_only_escrow_checkpoints(assembly: Assembly, env: str) -> None:
    template = assembly.template_json(env, "Training")
    policies = by_path(template, "AWS::IAM::Policy")
    found = policies["Serving/ImportRole/DefaultPolicy"]["Properties"]["PolicyDocument"]
    s3 = [s for s in found["Statement"] if any(a.startswith("s3:") for a in _list(s["Action"]))]
    actions = sorted(a for s in s3 for a in _list(s["Action"]))
    assert actions == ["s3:GetObject", "s3:ListBucket"]
    for statement in s3:
        resource = json.dumps(statement["Resource"])
        assert "customer-escrow-" in resource
        assert json.dumps(_account(env)) in resource or str(_account(env)) in resource


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_machine_may_call_what_its_definition_calls(assembly: Assembly, env: str) -> None:
    template = assembly.template_json(env, "Training")
    (machine,) = by_path(template, "AWS::StepFunctions::StateMachine").values()
    assert machine["Properties"]["StateMachineName"] == f"nova-sft-{env}-serving"
    called = {
        f"{a.split(':')[0]}:{a.split(':')[1][0].upper()}{a.split(':')[1][1:]}"
        for a in _definition_actions(machine)
    }
    policy = by_path(template, "AWS::IAM::Policy")["Serving/StateMachine/Role/DefaultPolicy"]
    granted = {
        a for s in policy["Properties"]["PolicyDocument"]["Statement"] for a in _list(s["Action"])
    }
    # Tagging on create is authorized as TagResource; logs, X-Ray and publishing are the rest.
    assert called <= granted
    assert not [a for a in granted if a.endswith("*") or a == "*"]
    pass_role = [
        s
        for s in policy["Properties"]["PolicyDocument"]["Statement"]
        if "iam:PassRole" in _list(s["Action"])
    ]
    assert len(pass_role) == 1
    assert pass_role[0]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "bedrock.amazonaws.com"}
    }
    assert "ImportRole" in json.dumps(pass_role[0]["Resource"])


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_approval_changes_of_the_group_start_the_machine(assembly: Assembly, env: str) -> None:
    template = assembly.template_json(env, "Training")
    rules = by_path(template, "AWS::Events::Rule")
    rule = rules["Serving/ApprovalRule"]["Properties"]
    assert rule["EventPattern"] == {
        "source": ["aws.sagemaker"],
        "detail-type": ["SageMaker Model Package State Change"],
        "detail": {
            "ModelPackageGroupName": [f"nova-sft-{env}-checkpoints"],
            "ModelApprovalStatus": ["Approved", "Rejected"],
        },
    }
    (target,) = rule["Targets"]
    assert "ServingStateMachine" in json.dumps(target["Arn"])


def test_no_statement_of_the_serving_roles_allows_every_action(assembly: Assembly) -> None:
    template = assembly.template_json("sandbox", "Training")
    for statement in statements(template):
        assert "*" not in _list(statement.get("Action", []))


def test_the_deployed_definition_is_the_builders_with_references(assembly: Assembly) -> None:
    template = assembly.template_json("sandbox", "Training")
    (machine,) = by_path(template, "AWS::StepFunctions::StateMachine").values()
    env = read_cdk_json().environment("sandbox")
    built = serving_definition(
        ServingInputs(
            environment="sandbox",
            group_name=env.model_package_group_name,
            import_role_arn="REF",
            key_arn="REF",
            topic_arn="REF",
            serving=env.serving,
        )
    )
    deployed = _deployed(machine)
    # Every field survives synthesis, nulls included: `"ResultPath": null` keeps the input.
    assert deployed == built
    assert deployed["States"]["SaveRecord"]["ResultPath"] is None

"""The serving state machine's definition, held to botocore's service models.

Step Functions' AWS SDK integrations take an API's members with the first letter capitalised and
answer the same way; a misspelt member, a missing required one or a literal outside the model's
pattern would only fail in an account, so each is checked here against the model AWS publishes.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import botocore.session
import pytest
from botocore.model import OperationModel, Shape

from pipeline.serving_config import ServingConfig, serving_name
from stacks.serving_asl import SDK
from stacks.serving_definition import ServingInputs, serving_definition

SESSION = botocore.session.get_session()


def inputs(**serving: Any) -> ServingInputs:
    return ServingInputs(
        environment="sandbox",
        group_name="nova-sft-sandbox-checkpoints",
        import_role_arn="arn:aws:iam::123456789012:role/import",
        key_arn="arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000",
        topic_arn="arn:aws:sns:us-east-1:123456789012:topic",
        serving=ServingConfig(deploy="on_approval", **serving),
    )


def sdk_tasks(definition: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, state in definition["States"].items():
        if state["Type"] == "Task" and state["Resource"].startswith(SDK):
            yield name, state
        if state["Type"] == "Map":  # the states each item runs
            yield from sdk_tasks(state["ItemProcessor"])


def operation(resource: str) -> OperationModel:
    service, action = resource.removeprefix(SDK).split(":")
    model = SESSION.get_service_model(service)
    return model.operation_model(action[0].upper() + action[1:])


def member(shape: Shape, key: str) -> tuple[str, Shape]:
    """The member a Step Functions parameter names (first letter capitalised)."""
    for name, child in shape.members.items():
        if name[0].upper() + name[1:] == key:
            return name, child
    raise AssertionError(f"{shape.name} has no member {key} ({list(shape.members)})")


def problems(shape: Shape, value: Any, where: str) -> list[str]:
    found: list[str] = []
    if shape.type_name == "structure":
        given = set()
        for key, item in value.items():
            dynamic = key.endswith(".$")
            name, child = member(shape, key.removesuffix(".$"))
            given.add(name)
            if not dynamic:
                found += problems(child, item, f"{where}.{name}")
        missing = set(shape.required_members) - given
        if missing:
            found.append(f"{where}: required {sorted(missing)} not given")
    elif shape.type_name == "list":
        for index, item in enumerate(value):
            found += problems(shape.member, item, f"{where}[{index}]")
    elif shape.type_name == "string":
        meta = shape.metadata
        if "pattern" in meta and not re.fullmatch(meta["pattern"], value):
            found.append(f"{where}: {value!r} does not match {meta['pattern']}")
        if not meta.get("min", 0) <= len(value) <= meta.get("max", 10**9):
            found.append(f"{where}: {value!r} has the wrong length")
        if "enum" in meta and value not in meta["enum"]:
            found.append(f"{where}: {value!r} not in {meta['enum']}")
    return found


@pytest.mark.parametrize("delete_model", [False, True])
def test_every_sdk_call_matches_the_service_model(delete_model: bool) -> None:
    definition = serving_definition(
        inputs(take_down=("rejected", "superseded"), delete_custom_model=delete_model)
    )
    checked = set()
    for name, state in sdk_tasks(definition):
        op = operation(state["Resource"])
        assert problems(op.input_shape, state["Parameters"], name) == []
        for key in state.get("ResultSelector", {}):
            if key.endswith(".$"):
                path = state["ResultSelector"][key]
                member(op.output_shape, re.split(r"[.\[]", path.removeprefix("$."))[0])
        checked.add(op.name)
    assert {
        "CreateCustomModel",
        "CreateCustomModelDeployment",
        "UpdateModelPackage",
        "ListCustomModelDeployments",
        "ListTagsForResource",
    } <= checked
    assert ("DeleteCustomModel" in checked) == delete_model


def _check_transitions(definition: dict[str, Any]) -> None:
    states = definition["States"]
    targets = {definition["StartAt"]}
    for state in states.values():
        targets.update(t for t in [state.get("Next"), state.get("Default")] if t)
        targets.update(c["Next"] for c in state.get("Choices", []) + state.get("Catch", []))
        if state["Type"] == "Map":
            _check_transitions(state["ItemProcessor"])
    assert targets - set(states) == set()
    assert set(states) - targets == set()  # and no state is unreachable


@pytest.mark.parametrize("take_down", [(), ("rejected",), ("rejected", "superseded")])
def test_every_transition_names_a_state(take_down: tuple[str, ...]) -> None:
    _check_transitions(serving_definition(inputs(take_down=take_down, delete_custom_model=True)))


def test_a_rejection_is_ignored_unless_take_down_is_configured() -> None:
    kept = serving_definition(inputs())["States"]["Route"]["Choices"]
    taken = serving_definition(inputs(take_down=("rejected",)))["States"]["Route"]["Choices"]
    assert [c["Next"] for c in kept] == ["RefreshForImport"]
    assert [c["Next"] for c in taken] == ["RefreshForImport", "FindDeploymentToDelete"]


def test_the_names_fit_bedrock_for_the_longest_environment_name() -> None:
    name = serving_name("e" * 32, 4294967295)
    model = SESSION.get_service_model("bedrock").operation_model("CreateCustomModel")
    meta = model.input_shape.members["modelName"].metadata
    assert len(name) <= meta["max"]
    assert re.fullmatch(meta["pattern"], name)
    fmt = serving_definition(inputs())["States"]["Names"]["Parameters"]["Name.$"]
    assert fmt == "States.Format('nova-sft-sandbox-v{}', $.package.Version)"

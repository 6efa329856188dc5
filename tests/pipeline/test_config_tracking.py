"""The `tracking` setting of an environment (pipeline/config.py) and its synth-time override."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from pipeline.config import (
    CDK_JSON,
    CONTEXT_KEY,
    ConfigError,
    load_environments,
    override_tracking,
    read_cdk_json,
)
from pipeline.tracking_config import TRACKING_OVERRIDE_CONTEXT

SERVER = "arn:aws:sagemaker:us-east-1:111111111111:mlflow-tracking-server/team-tracker"


@pytest.fixture
def context() -> dict[str, Any]:
    document = json.loads(CDK_JSON.read_text(encoding="utf-8"))
    return copy.deepcopy(document["context"][CONTEXT_KEY])


def test_the_sandbox_does_not_track_and_the_accounts_create_their_server() -> None:
    project = read_cdk_json()
    sandbox = project.environment("sandbox")
    assert sandbox.tracking == "off"
    assert not sandbox.tracking_enabled
    for name in ("dev", "staging", "prod"):
        env = project.environment(name)
        assert env.creates_tracking_server
        assert env.tracking_server_name == f"nova-sft-{name}"


def test_tracking_may_be_left_out_and_then_is_off(context: dict[str, Any]) -> None:
    del context["environments"]["dev"]["tracking"]
    assert not load_environments(context).environment("dev").tracking_enabled


def test_an_existing_servers_arn_is_used_as_it_is(context: dict[str, Any]) -> None:
    context["environments"]["dev"]["tracking"] = SERVER
    env = load_environments(context).environment("dev")
    assert env.tracking_enabled
    assert not env.creates_tracking_server
    assert env.tracking == SERVER


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("on", 'tracking must be "off", "create" or the ARN'),
        (True, 'tracking must be "off", "create" or the ARN'),
        ("arn:aws:sagemaker:us-east-1:111111111111:pipeline/x", "mlflow-tracking-server"),
        (SERVER.replace("us-east-1", "us-west-2"), "is in us-west-2"),
        (SERVER.replace("111111111111", "999999999999"), "not the environment's account"),
        (
            "arn:aws:sagemaker:us-east-1:111111111111:mlflow-app/app-ABC123",
            "is an MLflow app",
        ),
    ],
)
def test_a_bad_tracking_value_stops_synth_naming_the_key(
    context: dict[str, Any], value: object, expected: str
) -> None:
    context["environments"]["dev"]["tracking"] = value
    with pytest.raises(ConfigError) as caught:
        load_environments(context)
    message = str(caught.value)
    assert "'nova-sft.environments.dev'" in message
    assert "tracking" in message
    assert expected in message


def test_the_override_turns_one_environment_on_for_one_synth() -> None:
    project = read_cdk_json()
    changed = override_tracking(project, "sandbox=create")
    assert changed.environment("sandbox").creates_tracking_server
    assert not project.environment("sandbox").tracking_enabled  # the original is untouched
    assert changed.environment("dev") == project.environment("dev")
    assert override_tracking(project, None) is project


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("create", "write <environment>=<off|create|ARN>"),
        ("nowhere=create", "no environment 'nowhere'"),
        ("sandbox=maybe", 'tracking must be "off", "create" or the ARN'),
    ],
)
def test_a_bad_override_names_the_context_key(override: str, expected: str) -> None:
    with pytest.raises(ConfigError) as caught:
        override_tracking(read_cdk_json(), override)
    assert expected in str(caught.value)
    if "nowhere" not in override:
        assert TRACKING_OVERRIDE_CONTEXT in str(caught.value)

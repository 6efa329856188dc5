"""The environment config: cdk.json parses into frozen dataclasses; bad keys fail loudly."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from pipeline.config import (
    CDK_JSON,
    CONTEXT_KEY,
    ConfigError,
    EnvironmentConfig,
    load_environments,
    read_cdk_json,
)


@pytest.fixture
def context() -> dict[str, Any]:
    document = json.loads(CDK_JSON.read_text(encoding="utf-8"))
    return copy.deepcopy(document["context"][CONTEXT_KEY])


def test_the_repository_cdk_json_describes_four_environments() -> None:
    project = read_cdk_json()
    assert project.default_environment == "sandbox"
    assert set(project.environments) == {"sandbox", "dev", "staging", "prod"}
    assert project.environment("sandbox").account is None
    assert not project.environment("sandbox").termination_protection
    for name in ("dev", "staging", "prod"):
        env = project.environment(name)
        assert env.account is not None
        assert len(env.account) == 12
        assert env.termination_protection


def test_names_derive_from_the_environment() -> None:
    env = read_cdk_json().environment("dev")
    assert env.pipeline_name == "nova-sft-dev"
    assert env.model_package_group_name == "nova-sft-dev-checkpoints"


def test_config_is_frozen() -> None:
    env = read_cdk_json().environment("dev")
    with pytest.raises(dataclasses.FrozenInstanceError):
        env.region = "us-west-2"  # type: ignore[misc]


def test_unknown_key_names_the_key_and_the_place(context: dict[str, Any]) -> None:
    context["environments"]["dev"]["instance_tyep"] = "ml.p5.48xlarge"
    with pytest.raises(ConfigError) as err:
        load_environments(context)
    message = str(err.value)
    assert "nova-sft.environments.dev" in message
    assert "unknown key(s) instance_tyep" in message


def test_missing_key_is_named(context: dict[str, Any]) -> None:
    del context["environments"]["prod"]["region"]
    with pytest.raises(ConfigError, match=r"missing key\(s\) region"):
        load_environments(context)


def test_unknown_top_level_key_is_named(context: dict[str, Any]) -> None:
    context["enviroments"] = {}
    with pytest.raises(ConfigError, match=r"unknown key\(s\) enviroments"):
        load_environments(context)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("training_instance_count", True, "training_instance_count must be a int"),
        ("training_instance_count", 3, "training_instance_count must be one of"),
        ("termination_protection", 1, "termination_protection must be a bool"),
        ("region", "eu-west-1", "has no Nova 2 SFT training image"),
        ("account", "12345", "account must be 12 digits"),
        ("training_instance_type", "ml.g5.xlarge", "training_instance_type must be one of"),
        ("log_retention_days", 10, "log_retention_days must be one of"),
        ("max_runtime_seconds", 60, "max_runtime_seconds must be between"),
    ],
)
def test_bad_values_are_rejected(
    context: dict[str, Any], key: str, value: object, expected: str
) -> None:
    context["environments"]["staging"][key] = value
    with pytest.raises(ConfigError, match=expected):
        load_environments(context)


def test_protected_environment_must_name_its_account(context: dict[str, Any]) -> None:
    context["environments"]["sandbox"]["termination_protection"] = True
    with pytest.raises(ConfigError, match="must name its account"):
        load_environments(context)


def test_default_environment_must_exist(context: dict[str, Any]) -> None:
    context["default_environment"] = "qa"
    with pytest.raises(ConfigError, match="not one of the environments"):
        load_environments(context)


def test_unknown_environment_lists_the_known_ones() -> None:
    with pytest.raises(ConfigError, match="known environments: dev, prod, sandbox, staging"):
        read_cdk_json().environment("qa")


def test_every_dataclass_field_is_a_config_key(context: dict[str, Any]) -> None:
    keys = {f.name for f in dataclasses.fields(EnvironmentConfig)} - {"name"}
    assert set(context["environments"]["dev"]) == keys


def test_missing_cdk_json_says_where_to_run(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="run the command from the project's root"):
        read_cdk_json(tmp_path / "cdk.json")


@pytest.mark.parametrize("text", ["[]", '{"app": "python app.py"}', '{"context": []}'])
def test_cdk_json_without_a_context_object_is_a_config_error(tmp_path: Path, text: str) -> None:
    path = tmp_path / "cdk.json"
    path.write_text(text, encoding="utf-8")

    with pytest.raises(ConfigError, match='must hold a JSON object with a "context" object'):
        read_cdk_json(path)


TOOLCHAIN: dict[str, Any] = {
    "account": "444444444444",
    "region": "us-east-1",
    "connection_arn": (
        "arn:aws:codeconnections:us-east-1:444444444444:connection/0a1b2c3d-0000-1111-2222-333344445555"
    ),
    "repository": "example-org/nova-sft-pipeline",
    "branch": "main",
    "stages": ["dev", "staging", "prod"],
    "manual_approval_before": ["prod"],
}


def test_a_toolchain_parses_in_stage_order(context: dict[str, Any]) -> None:
    context["toolchain"] = copy.deepcopy(TOOLCHAIN)
    toolchain = load_environments(context).toolchain
    assert toolchain is not None
    assert toolchain.stages == ("dev", "staging", "prod")
    assert toolchain.manual_approval_before == ("prod",)
    assert toolchain.account == "444444444444"
    assert toolchain.pipeline_name == "nova-sft-toolchain"


def test_without_a_toolchain_every_environment_is_deployed_by_hand(
    context: dict[str, Any],
) -> None:
    context.pop("toolchain", None)
    assert load_environments(context).toolchain is None


def test_a_misspelt_toolchain_key_is_named_with_the_optional_one(context: dict[str, Any]) -> None:
    context["toolchian"] = copy.deepcopy(TOOLCHAIN)
    with pytest.raises(ConfigError, match=r"unknown key\(s\) toolchian .*optional: toolchain"):
        load_environments(context)


def test_an_unknown_toolchain_key_is_named(context: dict[str, Any]) -> None:
    context["toolchain"] = {**TOOLCHAIN, "approvals": ["prod"]}
    with pytest.raises(ConfigError, match=r"'nova-sft.toolchain': unknown key\(s\) approvals"):
        load_environments(context)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("stages", ["dev", "qa"], "stage 'qa' is not an environment; known: dev, prod"),
        ("stages", ["sandbox", "prod"], "stage 'sandbox' must name its account"),
        ("stages", ["dev", "dev"], "stages must not repeat an environment"),
        ("stages", [], "stages must name at least one environment"),
        ("stages", "dev", "stages must be a list of environment names"),
        ("manual_approval_before", ["qa"], "manual_approval_before names 'qa'"),
        ("connection_arn", "arn:aws:s3:::bucket", "connection_arn must be the ARN of a CodeStar"),
        ("repository", "nova-sft-pipeline", "repository must be owner/name"),
        ("account", "4444", "account must be 12 digits"),
        ("region", "US East", "region must be an AWS region"),
        ("branch", "", "branch must be a str"),
    ],
)
def test_bad_toolchain_values_are_rejected(
    context: dict[str, Any], key: str, value: object, expected: str
) -> None:
    context["toolchain"] = {**TOOLCHAIN, key: value}
    with pytest.raises(ConfigError, match=expected) as raised:
        load_environments(context)
    assert str(raised.value).startswith("cdk.json context 'nova-sft.toolchain'")

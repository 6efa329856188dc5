"""Building the definition stays offline, quiet and deterministic (`pipeline.offline_sdk`)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest

from pipeline import offline_sdk
from pipeline.definition import (
    build_pipeline,
    definition_json,
)
from tests.pipeline import test_definition as unit


@pytest.fixture(scope="module")
def definition() -> dict[str, Any]:
    return unit.built_definition()


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
    outside = unit._built_text()
    # The builder keeps one SDK session per region; this build makes its own inside the sandbox.
    offline_sdk.offline_session.cache_clear()
    first = definition_json(build_pipeline(env=unit.ENV, **unit.INPUTS))
    second = definition_json(build_pipeline(env=unit.ENV, **unit.INPUTS))
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
    definition_json(build_pipeline(env=unit.ENV, **unit.INPUTS))
    assert reports == []
    # The recorder sits where the SDK reports from: without the opt-out the same build reports.
    monkeypatch.setattr(offline_sdk, "SDK_CONFIG", {"SchemaVersion": "1.0", "SageMaker": {}})
    definition_json(build_pipeline(env=unit.ENV, **unit.INPUTS))
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
    offline_sdk.offline_session.cache_clear()  # a session made while the file is there
    assert unit.build() == definition


def test_building_leaves_boto3_and_the_process_as_it_found_them() -> None:
    import sys

    import boto3

    hook = sys.excepthook
    default = boto3.DEFAULT_SESSION
    build_pipeline(env=unit.ENV, **unit.INPUTS)
    assert boto3.DEFAULT_SESSION is default
    assert sys.excepthook is hook

"""Fixtures of the operator command tests: the project's cdk.json for the local endpoint, and a
record of every AWS call a command makes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import botocore.endpoint
import pytest

from tests.pipeline.commands.helpers import write_cdk_json


@pytest.fixture
def cdk_json(tmp_path: Path) -> Path:
    """cdk.json with dev in the local endpoint's default account (`write_cdk_json`)."""
    return write_cdk_json(tmp_path)


@pytest.fixture
def aws_calls(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every AWS request sent from now on, as "<service>.<Operation>" (e.g. "sts.
    GetCallerIdentity"), in order; the requests still go to the endpoint."""
    calls: list[str] = []
    send = botocore.endpoint.Endpoint.make_request

    def record(self: Any, operation_model: Any, request_dict: Any) -> Any:
        calls.append(f"{operation_model.service_model.service_name}.{operation_model.name}")
        return send(self, operation_model, request_dict)

    monkeypatch.setattr(botocore.endpoint.Endpoint, "make_request", record)
    return calls

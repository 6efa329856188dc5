"""`definition`: an environment's pipeline definition with placeholders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from pipeline.step_names import REGISTER_STEPS
from tests.pipeline.commands.helpers import run_cli


def parameter_defaults(document: dict[str, object]) -> dict[str, object]:
    parameters = document["Parameters"]
    assert isinstance(parameters, list)
    return {p["Name"]: p.get("DefaultValue") for p in parameters}


def test_definition_prints_the_environments_definition_with_placeholders(
    cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_cli(capsys, "definition", "--env", "prod", "--cdk-json", str(cdk_json))
    assert (status, err) == (0, "")
    document = json.loads(out)
    # prod's own configuration: 8 instances and a 5-day limit (dev has 4 and 1 day).
    defaults = parameter_defaults(document)
    assert defaults["TrainingInstanceCount"] == 8
    assert defaults["MaxRuntimeSeconds"] == 432000
    assert "<TrainingRole.Arn>" in out
    assert "<PrepareFunction.Arn>" in out
    assert "nova-sft-prod-checkpoints" in out
    # prod tracks experiments: its prepare step and every register step name its server.
    assert out.count("<MlflowTrackingServer.Arn>") == 1 + len(REGISTER_STEPS)


def test_definition_unknown_environment_exits_2(
    cdk_json: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, out, err = run_cli(capsys, "definition", "--env", "qa", "--cdk-json", str(cdk_json))
    assert (status, out) == (2, "")
    assert err.startswith("python -m pipeline: usage error: --env: no environment 'qa'")
    assert err.count("\n") == 1
